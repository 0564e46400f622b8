// kafkajs over SASL_SSL: node secure.js BOOTSTRAP MECHANISM USER PASSWORD CA_PEM TOPIC COUNT
// Produces COUNT messages kjs-0.. to partition 0 of TOPIC and prints
// {"produced": COUNT, "brokers": [ports Metadata named]}; test_security_clients.py
// reads them back. MECHANISM is kafkajs' spelling: plain, scram-sha-256, scram-sha-512.
'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')
const { run } = require('./common')

const [bootstrap, mechanism, username, password, caPath, topic, countText] =
  process.argv.slice(2)
const count = Number(countText)

run(async () => {
  const kafka = new Kafka({
    clientId: 'kafkajs-secure',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    connectionTimeout: 5000,
    requestTimeout: 10000,
    retry: { retries: 2, initialRetryTime: 100 },
    ssl: { ca: [fs.readFileSync(caPath, 'utf-8')] },
    sasl: { mechanism, username, password },
  })
  const admin = kafka.admin()
  await admin.connect()
  const cluster = await admin.describeCluster()
  await admin.disconnect()
  const producer = kafka.producer({ allowAutoTopicCreation: true })
  await producer.connect()
  const messages = []
  for (let i = 0; i < count; i++) messages.push({ value: `kjs-${i}`, partition: 0 })
  await producer.send({ topic, messages })
  await producer.disconnect()
  return { produced: count, brokers: cluster.brokers.map((b) => b.port) }
})
