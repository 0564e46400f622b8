// kafkajs' group consumer: subscribe, consumer.run with eachMessage until COUNT messages
// have arrived, let kafkajs commit them (autoCommit), leave the group, then read the
// group's committed offsets back with the admin client.
//
// Usage: node group_consume.js BOOTSTRAP TOPIC GROUP COUNT
// Prints: {"messages": [{partition, offset, value}], "assigned": [...], "committed": [...]}
'use strict'

const { client, run } = require('./common')

const DEADLINE_MS = 20000

async function main() {
  const [bootstrap, topic, groupId, countArg] = process.argv.slice(2)
  if (!bootstrap || !topic || !groupId || !countArg) {
    throw new Error('usage: group_consume.js BOOTSTRAP TOPIC GROUP COUNT')
  }
  const count = Number(countArg)
  const kafka = client(bootstrap, 'tidelog-kafkajs-group')
  const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500 })
  const out = { messages: [], assigned: [] }
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    out.assigned = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
  })
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    let done
    const all = new Promise((resolve) => {
      done = resolve
    })
    await consumer.run({
      autoCommit: true,
      eachMessage: async ({ partition, message }) => {
        out.messages.push({ partition, offset: message.offset, value: message.value.toString() })
        if (out.messages.length >= count) done()
      },
    })
    let timer
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`only ${out.messages.length} of ${count} messages`)),
        DEADLINE_MS,
      )
    })
    try {
      await Promise.race([all, timeout])
    } finally {
      clearTimeout(timer)
    }
  } finally {
    await consumer.disconnect() // commits what eachMessage resolved, then LeaveGroup
  }
  const admin = kafka.admin()
  await admin.connect()
  try {
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
    out.committed = offsets[0].partitions
      .map((p) => ({ partition: p.partition, offset: p.offset }))
      .sort((a, b) => a.partition - b.partition)
  } finally {
    await admin.disconnect()
  }
  return out
}

run(main)
