// kafkajs' admin client: create (with a config), describe configs, grow, list offsets
// (also by timestamp, after producing records with explicit timestamps), delete.
//
// Usage: node admin.js BOOTSTRAP TOPIC BASE_TIMESTAMP_MS
// Prints one JSON object; each field is the answer of one admin call.
'use strict'

const { ConfigResourceTypes, Partitioners } = require('kafkajs')
const { client, run } = require('./common')

async function main() {
  const [bootstrap, topic, baseArg] = process.argv.slice(2)
  if (!bootstrap || !topic || !baseArg) throw new Error('usage: admin.js BOOTSTRAP TOPIC BASE_MS')
  const base = Number(baseArg)
  const kafka = client(bootstrap, 'tidelog-kafkajs-admin')
  const admin = kafka.admin()
  await admin.connect()
  const out = {}
  try {
    out.created = await admin.createTopics({
      topics: [
        {
          topic,
          numPartitions: 2,
          replicationFactor: 3, // accepted: the object store is the replication
          configEntries: [{ name: 'retention.ms', value: '3600000' }],
        },
      ],
      waitForLeaders: true,
    })
    out.listed = (await admin.listTopics()).includes(topic)
    const configs = await admin.describeConfigs({
      resources: [
        { type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] },
      ],
      includeSynonyms: false,
    })
    out.configs = configs.resources.map((r) => ({
      errorCode: r.errorCode,
      entries: r.configEntries.map((e) => [e.configName, e.configValue]),
    }))
    await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] })
    const meta = await admin.fetchTopicMetadata({ topics: [topic] })
    out.partitionCount = meta.topics[0].partitions.length

    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
    await producer.connect()
    try {
      const messages = []
      for (let i = 0; i < 10; i++) {
        messages.push({ partition: 0, value: `v${i}`, timestamp: String(base + i * 1000) })
      }
      await producer.send({ topic, acks: -1, messages })
    } finally {
      await producer.disconnect()
    }
    const sortByPartition = (list) => list.sort((a, b) => a.partition - b.partition)
    out.offsets = sortByPartition(await admin.fetchTopicOffsets(topic))
    out.byTime = sortByPartition(await admin.fetchTopicOffsetsByTimestamp(topic, base + 4500))
    out.pastEnd = sortByPartition(await admin.fetchTopicOffsetsByTimestamp(topic, base + 99000))

    out.deleted = await admin.deleteTopics({ topics: [topic] }).then(() => true)
    out.listedAfterDelete = (await admin.listTopics()).includes(topic)
  } finally {
    await admin.disconnect()
  }
  return out
}

run(main)
