// The KafkaJS client both scripts use: its log goes to stderr, so stdout holds only their JSON lines
// (KAFKAJS_LOG_LEVEL=DEBUG logs every request).
import { Kafka, logLevel } from 'kafkajs'

export function kafka(bootstrap, clientId) {
  return new Kafka({
    clientId,
    brokers: bootstrap.split(','),
    logLevel: process.env.KAFKAJS_LOG_LEVEL ? logLevel[process.env.KAFKAJS_LOG_LEVEL] : logLevel.WARN,
    logCreator: () => ({ namespace, log }) => process.stderr.write(`${namespace}: ${JSON.stringify(log)}\n`),
    retry: { retries: 5, initialRetryTime: 100 },
  })
}

// Runs main(); any error ends the process with status 1 and the error on stderr.
export function run(main) {
  main().then(() => process.exit(0), (error) => {
    process.stderr.write(`${error.stack || error}\n`)
    process.exit(1)
  })
}

export function text(buffer) {
  return buffer === null || buffer === undefined ? null : buffer.toString('utf8')
}
