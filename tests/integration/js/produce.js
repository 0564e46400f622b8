// kafkajs as admin and producer: create a topic, produce keyed messages with headers
// in several send() calls to one partition, then list the offsets.
//
// Usage: node produce.js BOOTSTRAP TOPIC [--partitions N] [--partition P] [--count N]
//                        [--per-send N] [--compression none|gzip] [--idempotent]
// Prints: {"created", "createdAgain", "partitions", "sent", "offsets"}
'use strict'

const { CompressionTypes, Partitioners } = require('kafkajs')
const { client, run } = require('./common')

function parseArgs(argv) {
  const [bootstrap, topic, ...rest] = argv
  const opts = { bootstrap, topic, partitions: 1, partition: 0, count: 10, perSend: 10 }
  opts.compression = 'none'
  opts.idempotent = false
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i]
    if (flag === '--idempotent') opts.idempotent = true
    else if (flag === '--partitions') opts.partitions = Number(rest[++i])
    else if (flag === '--partition') opts.partition = Number(rest[++i])
    else if (flag === '--count') opts.count = Number(rest[++i])
    else if (flag === '--per-send') opts.perSend = Number(rest[++i])
    else if (flag === '--compression') opts.compression = rest[++i]
    else throw new Error(`unknown argument ${flag}`)
  }
  if (!bootstrap || !topic) throw new Error('usage: produce.js BOOTSTRAP TOPIC [options]')
  return opts
}

const CODECS = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP }

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  const kafka = client(opts.bootstrap, 'tidelog-kafkajs-produce')
  const admin = kafka.admin()
  await admin.connect()
  const result = {}
  try {
    const spec = { topic: opts.topic, numPartitions: opts.partitions, replicationFactor: 1 }
    result.created = await admin.createTopics({ topics: [spec], waitForLeaders: true })
    result.createdAgain = await admin.createTopics({ topics: [spec], waitForLeaders: true })
    const meta = await admin.fetchTopicMetadata({ topics: [opts.topic] })
    result.partitions = meta.topics[0].partitions
      .map((p) => ({ partitionId: p.partitionId, leader: p.leader, errorCode: p.partitionErrorCode }))
      .sort((a, b) => a.partitionId - b.partitionId)

    const producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      idempotent: opts.idempotent,
      maxInFlightRequests: opts.idempotent ? 1 : undefined,
      allowAutoTopicCreation: false,
    })
    await producer.connect()
    result.sent = []
    try {
      for (let start = 0; start < opts.count; start += opts.perSend) {
        const messages = []
        for (let i = start; i < Math.min(start + opts.perSend, opts.count); i++) {
          messages.push({
            partition: opts.partition,
            key: `key-${i % 5}`,
            value: `value-${i}`,
            headers: { trace: `t${i}`, app: 'kafkajs' },
          })
        }
        const metadata = await producer.send({
          topic: opts.topic,
          acks: -1,
          compression: CODECS[opts.compression],
          messages,
        })
        result.sent.push(
          ...metadata.map((m) => ({
            partition: m.partition,
            errorCode: m.errorCode,
            baseOffset: m.baseOffset,
          })),
        )
      }
    } finally {
      await producer.disconnect()
    }
    result.offsets = (await admin.fetchTopicOffsets(opts.topic)).sort(
      (a, b) => a.partition - b.partition,
    )
  } finally {
    await admin.disconnect()
  }
  return result
}

run(main)
