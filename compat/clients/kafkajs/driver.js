// Driver for KafkaJS: `node driver.js` with NODE_PATH pointing at the node_modules that
// scripts/install-compat-clients installs from package-lock.json. One JSON request per line on
// stdin, one JSON reply per line on stdout (compat/session.py); KafkaJS's logs go to stderr.
//
// KafkaJS ships gzip only. Snappy comes from kafkajs-snappy; LZ4 (lz4js) and zstd
// (@bokuweb/zstd-wasm) are wired in below through KafkaJS's codec interface, all pure
// JavaScript or WebAssembly, so nothing needs a native build. KafkaJS has no assign(): every
// consumer joins a group, so "consume" uses a throwaway group that never commits.
'use strict'

const fs = require('fs')
const path = require('path')
const readline = require('readline')
const {
  Kafka, logLevel, CompressionTypes, CompressionCodecs, ConfigResourceTypes, Partitioners
} = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const lz4 = require('lz4js')
const zstd = require('@bokuweb/zstd-wasm')

const zstdReady = zstd.init()
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  async compress (encoder) { return Buffer.from(lz4.compress(encoder.buffer)) },
  async decompress (buffer) { return Buffer.from(lz4.decompress(buffer)) }
})
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress (encoder) { await zstdReady; return Buffer.from(zstd.compress(encoder.buffer, 3)) },
  async decompress (buffer) { await zstdReady; return Buffer.from(zstd.decompress(buffer)) }
})

const CODECS = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD
}

const b64 = (buf) => (buf === null || buf === undefined ? null : Buffer.from(buf).toString('base64'))
const unb64 = (text) => (text === null ? null : Buffer.from(text, 'base64'))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function headersIn (pairs) {
  // KafkaJS headers are an object; a repeated key becomes an array (keys stay grouped).
  const out = {}
  for (const [key, value] of pairs) {
    const v = unb64(value)
    if (key in out) out[key] = [].concat(out[key], [v])
    else out[key] = v
  }
  return out
}

function headersOut (headers) {
  const pairs = []
  for (const [key, value] of Object.entries(headers || {})) {
    for (const v of Array.isArray(value) ? value : [value]) pairs.push([key, b64(v)])
  }
  return pairs
}

function recordOut (partition, message, extra) {
  return {
    partition,
    offset: Number(message.offset),
    key: b64(message.key),
    value: b64(message.value),
    headers: headersOut(message.headers),
    timestamp: Number(message.timestamp),
    ...extra
  }
}

function messageIn (r) {
  const message = { key: unb64(r.key), value: unb64(r.value), headers: headersIn(r.headers) }
  if (r.partition !== null) message.partition = r.partition
  if (r.timestamp !== null) message.timestamp = String(r.timestamp)
  return message
}

class Driver {
  constructor () {
    this.kafka = null
    this.timeoutMs = 30000
    this.members = []
    this.pending = []
    this.adminClient = null
    this.groupTopic = null
  }

  async version () {
    // Read package.json files directly: some packages do not export theirs.
    const v = (name) => {
      for (const dir of (process.env.NODE_PATH || '').split(path.delimiter)) {
        const file = path.join(dir, name, 'package.json')
        if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')).version
      }
      return 'unknown'
    }
    return {
      version: `kafkajs ${v('kafkajs')} (kafkajs-snappy ${v('kafkajs-snappy')}, lz4js ${v('lz4js')}, ` +
        `@bokuweb/zstd-wasm ${v('@bokuweb/zstd-wasm')})`
    }
  }

  async init (a) {
    this.timeoutMs = a.timeout_ms
    this.kafka = new Kafka({
      clientId: a.client_id,
      brokers: a.bootstrap.split(','),
      logLevel: logLevel.WARN,
      retry: { retries: 3 },
      logCreator: () => ({ namespace, level, log }) => {
        process.stderr.write(`${new Date().toISOString()} ${level} ${namespace}: ${log.message} ${JSON.stringify(log)}\n`)
      }
    })
    return {}
  }

  async admin () {
    if (this.adminClient === null) {
      this.adminClient = this.kafka.admin()
      await this.adminClient.connect()
    }
    return this.adminClient
  }

  // ------------------------------------------------------------------ produce

  async sendAll (send, topic, records, compression) {
    const metadata = await send({ topic, acks: -1, compression, messages: records.map(messageIn) })
    const next = {}
    for (const m of metadata) next[m.partition] = Number(m.baseOffset)
    // One batch per partition, in order: each record's offset follows from its partition's base.
    return records.every((r) => r.partition !== null)
      ? records.map((r) => [r.partition, next[r.partition]++])
      : null
  }

  async produce (a) {
    const producer = this.kafka.producer({
      idempotent: a.idempotent,
      maxInFlightRequests: a.idempotent ? 1 : undefined,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner
    })
    await producer.connect()
    try {
      const send = (request) => producer.send(request)
      return { offsets: await this.sendAll(send, a.topic, a.records, CODECS[a.compression]) }
    } finally {
      await producer.disconnect()
    }
  }

  async transaction (a) {
    const producer = this.kafka.producer({
      transactionalId: a.transactional_id,
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner
    })
    await producer.connect()
    try {
      for (const txn of a.transactions) {
        const t = await producer.transaction()
        await this.sendAll((request) => t.send(request), a.topic, txn.records, CompressionTypes.None)
        if (txn.commit) await t.commit()
        else await t.abort()
      }
    } finally {
      await producer.disconnect()
    }
    return {}
  }

  // ------------------------------------------------------------------ consume

  async consume (a) {
    const consumer = this.kafka.consumer({
      groupId: a.group,
      readUncommitted: a.isolation === 'read_uncommitted',
      heartbeatInterval: 100,
      maxWaitTimeInMs: 200
    })
    const got = []
    await consumer.connect()
    try {
      const fromTimestamp = a.from_timestamp !== null
      await consumer.subscribe({ topic: a.topic, fromBeginning: !fromTimestamp })
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          if (a.partitions.includes(partition) && got.length < a.count) got.push(recordOut(partition, message))
        }
      })
      if (fromTimestamp) {
        const found = await (await this.admin()).fetchTopicOffsetsByTimestamp(a.topic, a.from_timestamp)
        for (const { partition, offset } of found) consumer.seek({ topic: a.topic, partition, offset })
      }
      const deadline = Date.now() + a.timeout_ms
      while (got.length < a.count && Date.now() < deadline) await sleep(20)
    } finally {
      await consumer.disconnect()
    }
    return { records: got.slice(0, a.count) }
  }

  async offset_for_time (a) {
    const found = await (await this.admin()).fetchTopicOffsetsByTimestamp(a.topic, a.timestamp)
    const hit = found.find((p) => p.partition === a.partition)
    const offset = hit === undefined ? -1 : Number(hit.offset)
    return { offset: offset < 0 ? null : offset }
  }

  // ------------------------------------------------------------------ groups

  async group_join (a) {
    const meta = await (await this.admin()).fetchTopicMetadata({ topics: [a.topic] })
    const every = meta.topics[0].partitions.map((p) => p.partitionId).sort((x, y) => x - y)
    const assigned = []
    this.groupTopic = a.topic
    for (let i = 0; i < a.members; i++) {
      const consumer = this.kafka.consumer({
        groupId: a.group,
        heartbeatInterval: 100,
        sessionTimeout: 10000,
        maxWaitTimeInMs: 200
      })
      const member = { consumer, positions: {} }
      assigned.push([])
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        assigned[i] = (e.payload.memberAssignment[a.topic] || []).slice().sort((x, y) => x - y)
      })
      consumer.on(consumer.events.REBALANCING, () => { assigned[i] = [] })
      await consumer.connect()
      await consumer.subscribe({ topic: a.topic, fromBeginning: true })
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          member.positions[partition] = Number(message.offset) + 1
          this.pending.push(recordOut(partition, message, { member: i }))
        }
      })
      this.members.push(member)
    }
    const deadline = Date.now() + a.timeout_ms
    while (Date.now() < deadline) {
      const all = assigned.flat().sort((x, y) => x - y)
      if (assigned.every((p) => p.length > 0) && JSON.stringify(all) === JSON.stringify(every)) {
        return { assignments: assigned }
      }
      await sleep(20)
    }
    throw new Error(`group not stable: assignments ${JSON.stringify(assigned)}`)
  }

  async group_consume (a) {
    const deadline = Date.now() + a.timeout_ms
    while (this.pending.length < a.count && Date.now() < deadline) await sleep(20)
    const got = this.pending
    this.pending = []
    return { records: got }
  }

  async group_commit () {
    for (const { consumer, positions } of this.members) {
      const offsets = Object.entries(positions).map(([partition, offset]) => ({
        topic: this.groupTopic, partition: Number(partition), offset: String(offset)
      }))
      if (offsets.length > 0) await consumer.commitOffsets(offsets)
    }
    return {}
  }

  async group_close () {
    await Promise.all(this.members.map(({ consumer }) => consumer.disconnect()))
    this.members = []
    return {}
  }

  // ------------------------------------------------------------------ admin

  async create_topic (a) {
    const configEntries = Object.entries(a.configs).map(([name, value]) => ({ name, value }))
    const created = await (await this.admin()).createTopics({
      topics: [{ topic: a.topic, numPartitions: a.partitions, configEntries }],
      waitForLeaders: true
    })
    if (!created) throw new Error(`topic ${a.topic} was not created (it exists?)`)
    return {}
  }

  async describe_topic (a) {
    const meta = await (await this.admin()).fetchTopicMetadata({ topics: [a.topic] })
    return { partitions: meta.topics[0].partitions.length }
  }

  async describe_configs (a) {
    const found = await (await this.admin()).describeConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: a.topic, configNames: a.names }],
      includeSynonyms: false
    })
    const configs = {}
    for (const entry of found.resources[0].configEntries) configs[entry.configName] = entry.configValue
    return { configs }
  }

  async alter_configs (a) {
    const configEntries = Object.entries(a.configs).map(([name, value]) => ({ name, value }))
    await (await this.admin()).alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: a.topic, configEntries }]
    })
    return {}
  }

  async create_partitions (a) {
    await (await this.admin()).createPartitions({ topicPartitions: [{ topic: a.topic, count: a.count }] })
    return {}
  }

  async delete_records (a) {
    await (await this.admin()).deleteTopicRecords({
      topic: a.topic, partitions: [{ partition: a.partition, offset: String(a.offset) }]
    })
    return { low_watermark: null } // KafkaJS does not report it
  }

  async delete_topic (a) {
    await (await this.admin()).deleteTopics({ topics: [a.topic] })
    return {}
  }

  async list_groups () {
    const { groups } = await (await this.admin()).listGroups()
    return { groups: groups.map((g) => g.groupId) }
  }

  async describe_group (a) {
    const { groups } = await (await this.admin()).describeGroups([a.group])
    const group = groups[0]
    if (group.errorCode) throw new Error(`describeGroups error code ${group.errorCode}`)
    return { state: group.state, members: group.members.length }
  }

  async close () {
    await Promise.all(this.members.map(({ consumer }) => consumer.disconnect()))
    if (this.adminClient !== null) await this.adminClient.disconnect()
  }
}

function errorCode (err) {
  for (let e = err; e; e = e.cause || e.originalError) {
    if (e.type) return e.type
  }
  return err.name || null
}

async function main () {
  const driver = new Driver()
  const write = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    const request = JSON.parse(line)
    const op = request.op
    if (op === 'exit') {
      await driver.close()
      write({ ok: true })
      break
    }
    const handler = op !== 'close' && op !== 'admin' && op !== 'sendAll' && driver[op]
    if (typeof handler !== 'function') {
      write({ ok: false, error: `this driver has no op ${op}`, code: null })
      continue
    }
    try {
      write({ ok: true, result: (await handler.call(driver, request)) || {} })
    } catch (err) {
      process.stderr.write(`${err.stack || err}\n`)
      write({ ok: false, error: `${err.name}: ${err.message}`, code: errorCode(err) })
    }
  }
  process.exit(0)
}

main()
