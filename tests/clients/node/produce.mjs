// Sends records to a topic with KafkaJS, in the order given, and says what it sent.
//
//   node produce.mjs --bootstrap 127.0.0.1:9092 --topic events [--compression gzip] [--batch 500]
//
// Standard input: one JSON object per line, {"key": string|null, "value": string|null}. Every
// send waits for all replicas (acks -1). Prints {"sent": n, "keys": {key: count}} and exits 0.
import { CompressionTypes, Partitioners } from 'kafkajs'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { kafka, run } from './client.mjs'

const CODECS = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP }  // KafkaJS itself has only these

run(async () => {
  const { values: args } = parseArgs({ options: {
    bootstrap: { type: 'string' }, topic: { type: 'string' },
    compression: { type: 'string', default: 'none' }, batch: { type: 'string', default: '500' },
  } })
  if (!args.bootstrap || !args.topic || !(args.compression in CODECS)) {
    throw new Error(`usage: --bootstrap HOST:PORT --topic NAME [--compression ${Object.keys(CODECS).join('|')}]`)
  }
  const records = []
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim()) records.push(JSON.parse(line))
  }
  // the Java client's partitioner (murmur2 of the key), named so KafkaJS does not warn about its default
  const producer = kafka(args.bootstrap, 'gumbeld-tests-producer').producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  const keys = {}
  try {
    const size = Number(args.batch)
    for (let start = 0; start < records.length; start += size) {
      const messages = records.slice(start, start + size)
      await producer.send({ topic: args.topic, acks: -1, compression: CODECS[args.compression], messages })
      for (const { key } of messages) keys[key] = (keys[key] || 0) + 1
    }
  } finally {
    await producer.disconnect()
  }
  process.stdout.write(JSON.stringify({ sent: records.length, keys }) + '\n')
})
