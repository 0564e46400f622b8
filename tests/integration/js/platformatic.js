// @platformatic/kafka (a pure-JavaScript client that names topics by id in Fetch v13+):
// create a topic, produce COUNT keyed messages with a header, consume them all in a
// consumer group with autocommit, close (leaving the group), then read the group's
// committed offsets with the admin client.
//
// Usage: node platformatic.js BOOTSTRAP TOPIC GROUP COUNT
// Prints: {"created": bool, "produced": [{partition, offset}], "messages": [...],
//          "committed": [{partition, offset}]}
'use strict'

const {
  Admin,
  Consumer,
  Producer,
  stringDeserializers,
  stringSerializers,
} = require('@platformatic/kafka')

const DEADLINE_MS = 30000

function withDeadline(promise, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), DEADLINE_MS)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

async function main() {
  const [bootstrap, topic, groupId, countArg] = process.argv.slice(2)
  if (!bootstrap || !topic || !groupId || !countArg) {
    throw new Error('usage: platformatic.js BOOTSTRAP TOPIC GROUP COUNT')
  }
  const count = Number(countArg)
  const brokers = [bootstrap]
  const out = { created: false, produced: [], messages: [], committed: [] }

  const admin = new Admin({ clientId: 'tidelog-plt-admin', bootstrapBrokers: brokers })
  try {
    await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 })
    out.created = true
  } finally {
    await admin.close()
  }

  const producer = new Producer({
    clientId: 'tidelog-plt-producer',
    bootstrapBrokers: brokers,
    serializers: stringSerializers,
  })
  try {
    for (let i = 0; i < count; i++) {
      const result = await producer.send({
        messages: [
          { topic, key: `key-${i % 5}`, value: `value-${i}`, headers: { app: 'platformatic' } },
        ],
      })
      for (const o of result.offsets || []) {
        out.produced.push({ partition: o.partition, offset: Number(o.offset) })
      }
    }
  } finally {
    await producer.close()
  }

  const consumer = new Consumer({
    groupId,
    clientId: 'tidelog-plt-consumer',
    bootstrapBrokers: brokers,
    deserializers: stringDeserializers,
  })
  try {
    const stream = await consumer.consume({
      autocommit: true,
      topics: [topic],
      mode: 'earliest',
      sessionTimeout: 10000,
      heartbeatInterval: 500,
    })
    const all = new Promise((resolve, reject) => {
      stream.on('error', reject)
      stream.on('data', (message) => {
        out.messages.push({
          partition: message.partition,
          offset: Number(message.offset),
          key: message.key,
          value: message.value,
          app: message.headers.get('app'),
        })
        message.commit()
        if (out.messages.length >= count) resolve()
      })
    })
    await withDeadline(all, `${out.messages.length} of ${count} messages`)
    await stream.close()
  } finally {
    await consumer.close(true)
  }

  const admin2 = new Admin({ clientId: 'tidelog-plt-admin2', bootstrapBrokers: brokers })
  try {
    const offsets = await admin2.listConsumerGroupOffsets({ groups: [groupId] })
    out.committed = JSON.parse(JSON.stringify(offsets, (_, v) => (typeof v === 'bigint' ? Number(v) : v)))
  } finally {
    await admin2.close()
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err)
  if (err && err.errors) console.error(JSON.stringify(err.errors, null, 1))
  process.exit(1)
})
