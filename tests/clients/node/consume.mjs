// Reads a topic from its beginning with a KafkaJS consumer (a fresh group) up to given end offsets.
//
//   node consume.mjs --bootstrap 127.0.0.1:9092 --topic learned --ends '{"0": 57}' [--timeout 30]
//
// --ends: partition → end offset (exclusive); the reader stops when every partition got there.
// Prints one JSON object per record, {partition, offset, key, value, headers}, with a null key or
// value (a tombstone) as null, and exits 0; past --timeout seconds it exits 1 saying what is short.
import { parseArgs } from 'node:util'
import { kafka, run, text } from './client.mjs'

run(async () => {
  const { values: args } = parseArgs({ options: {
    bootstrap: { type: 'string' }, topic: { type: 'string' }, ends: { type: 'string' },
    timeout: { type: 'string', default: '30' },
  } })
  if (!args.bootstrap || !args.topic || !args.ends) {
    throw new Error('usage: --bootstrap HOST:PORT --topic NAME --ends \'{"PARTITION": END}\'')
  }
  const short = new Map(Object.entries(JSON.parse(args.ends)).map(([p, end]) => [Number(p), Number(end)])
    .filter(([, end]) => end > 0))
  // KafkaJS reads only in a group; a short rebalance timeout keeps the join quick (the broker may
  // wait for other members that long before it answers)
  const consumer = kafka(args.bootstrap, 'gumbeld-tests-consumer').consumer({
    groupId: `gumbeld-tests-${process.pid}-${Date.now()}`, maxWaitTimeInMs: 200,
    sessionTimeout: 6000, rebalanceTimeout: 2000,
  })
  await consumer.connect()
  try {
    await consumer.subscribe({ topic: args.topic, fromBeginning: true })
    let finished
    const done = new Promise((resolve) => { finished = resolve })
    if (short.size === 0) finished()
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const offset = Number(message.offset)
        if (!short.has(partition) || offset >= short.get(partition)) return
        const headers = Object.fromEntries(Object.entries(message.headers || {}).map(([k, v]) => [k, text(v)]))
        process.stdout.write(JSON.stringify({ partition, offset, key: text(message.key), value: text(message.value),
          headers }) + '\n')
        if (offset + 1 >= short.get(partition)) short.delete(partition)
        if (short.size === 0) finished()
      },
    })
    let timer
    const timeout = new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out; short of their end: ${JSON.stringify([...short])}`)),
        Number(args.timeout) * 1000)
    })
    await Promise.race([done, timeout]).finally(() => clearTimeout(timer))
  } finally {
    await consumer.disconnect()
  }
})
