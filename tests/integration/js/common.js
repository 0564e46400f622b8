// Shared set-up for the kafkajs scripts that tests/integration/test_kafkajs.py runs.
// stdout carries exactly one JSON document (the script's result); kafkajs' own log
// lines go to stderr as JSON so a failing test can show what the client saw.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

function stderrLogger() {
  return ({ namespace, level, label, log }) => {
    const { message, ...extra } = log
    process.stderr.write(JSON.stringify({ level: label, namespace, message, ...extra }) + '\n')
  }
}

function client(bootstrap, clientId) {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.WARN, // KAFKAJS_LOG_LEVEL=debug overrides this
    logCreator: stderrLogger,
    connectionTimeout: 5000,
    requestTimeout: 10000,
    // Few retries: a broker problem must surface as a failure, not hide behind back-off.
    retry: { retries: 2, initialRetryTime: 100 },
  })
}

// Runs main(); prints its result as JSON, or the error on stderr with exit code 1.
function run(main) {
  main().then(
    (result) => {
      process.stdout.write(JSON.stringify(result) + '\n')
    },
    (err) => {
      process.stderr.write(`error: ${err && err.stack ? err.stack : err}\n`)
      process.exit(1)
    },
  )
}

module.exports = { client, run }
