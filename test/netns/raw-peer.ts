/**
 * A baseline peer for the distribution benchmark: a plain js-libp2p node with the transport,
 * encryption and muxer our peer uses (TCP, noise, yamux with the same options and window
 * updates as createSwarmpackPeer; no DHT, identify or ping) and one tiny protocol, `/swarmpack-bench/stripe/1.0.0`,
 * that runs the optimal swarming schedule from memory: the seed holds S bytes in memory, split
 * into N stripes, and streams stripe i to downloader i; each downloader forwards the bytes of its
 * stripe, as they arrive, to every other downloader. Receivers count bytes and discard them.
 * Nothing is hashed, stored or asked for: it shows what the libp2p stack alone costs in time and
 * CPU in the same topology (test/netns/raw-striped.ts runs it).
 *
 *   raw-peer.ts [--listen <ma>] [--report-ms 500] [--chunk-bytes 262144]
 *
 * Events: ready {peerId, multiaddrs}, traffic {t, sent, received, cpuMs} every report-ms (socket
 * bytes, like peer.ts), dialed {addr}, prepared {streams}, sent {bytes, ms, at} (seed),
 * stripe {bytes, at} (a downloader has all of its stripe from the seed), done {bytes, ms, at,
 * fromSeed} (a downloader has S bytes), totals {sent, received, payloadReceived, fromSeed},
 * error {command, code, message}.
 * Commands:
 * - `dial <ma>`: connect (the mesh is made before the start, as the distribution run does);
 * - `seed <S> <ma>...`: open one stream to each downloader (stripe i goes to the i-th);
 * - `expect <S> <seedPeerId> <ma>...`: open one stream to each other downloader, forward what
 *   the seed sends on to them, report `done` once S bytes in all have arrived;
 * - `go` (seed): send the stripes;
 * - `totals`: socket and payload bytes so far (event totals); `quit`.
 */
import '@swarmpack/core/polyfill'
import { randomFillSync } from 'node:crypto'
import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { TrafficCounter, withHalfWindowUpdates } from '@swarmpack/dht-provider'
import { createLibp2p } from 'libp2p'
import type { Stream } from '@libp2p/interface'
import { emit, readCommands } from './commands.js'

const STRIPE_PROTOCOL = '/swarmpack-bench/stripe/1.0.0'

const { values } = parseArgs({
  options: {
    listen: { type: 'string', multiple: true },
    'report-ms': { type: 'string', default: '500' },
    // Bitswap's messages carry blocks of up to 1 MiB, split by yamux into 64 KiB frames; 256 KiB writes sit in between
    'chunk-bytes': { type: 'string', default: String(256 * 1024) },
    json: { type: 'boolean' }
  }
})
const out = emit
const t0 = Date.now()
const chunkBytes = Number(values['chunk-bytes'])
// a stream that takes nothing for this long is broken: fail rather than hang
const DRAIN_TIMEOUT_MS = 60_000
/**
 * Bytes a forward stream may hold unsent before reading the stripe pauses: as Bitswap hands a peer
 * up to 4 MiB before waiting for its stream to drain, so one slow receiver does not idle the
 * forwards to all the others at once.
 */
const FORWARD_BUFFER_BYTES = 4 * 1024 * 1024

const traffic = new TrafficCounter()
const node = await createLibp2p({
  addresses: { listen: values.listen ?? ['/ip4/0.0.0.0/tcp/4001'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  // as createSwarmpackPeer configures yamux (its defaults otherwise: 64 KiB frames, windows up to
  // 16 MiB), with the same fewer window updates, so the baseline is the best this stack does
  streamMuxers: [withHalfWindowUpdates(yamux({ enableKeepAlive: true, keepAliveInterval: 90_000 }))],
  // every peer of the lab swarm shares one subnet, as peer.ts sets it
  connectionManager: { maxConnections: 200, inboundConnectionThreshold: 1000 },
  // our peer pings every 15 min: never within a run; here no ping protocol at all
  connectionMonitor: { enabled: false },
  metrics: traffic.metrics()
})

/** What a downloader was told by `expect`. */
interface Expectation {
  total: number
  seedPeer: string
  forward: Stream[]
}
let expectation: Expectation | undefined
let received = 0
let fromSeed = 0
let doneSent = false
let outbound: Stream[] = []
let payload: Uint8Array | undefined

function counted (n: number): void {
  received += n
  const want = expectation?.total
  if (want === undefined || doneSent) return
  if (received > want) {
    doneSent = true
    out({ event: 'error', command: 'expect', code: 'ERR_TOO_MANY_BYTES', message: `received ${received} bytes, expected ${want}` })
  } else if (received === want) {
    doneSent = true
    out({ event: 'done', bytes: received, fromSeed, at: Date.now(), ms: Date.now() - t0 })
  }
}

/**
 * The stream's next `drain` event. Not `stream.onDrain()`: in @libp2p/utils 7.4 its promise is
 * made once and never renewed, so after a stream's first drain it resolves at once even while the
 * stream still needs draining (checked: a writer awaiting it buffered 62 of 64 MiB).
 */
async function nextDrain (stream: Stream): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      clearTimeout(timer)
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onDrain = (): void => { done() }
    const onClose = (evt: Event): void => { done((evt as Event & { error?: Error }).error ?? new Error('stream closed while waiting to drain')) }
    const timer = setTimeout(() => { done(new Error(`stream did not drain within ${DRAIN_TIMEOUT_MS} ms`)) }, DRAIN_TIMEOUT_MS)
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
  })
}

/** Writes a chunk, respecting backpressure: waits for the stream to drain when its buffer is full. */
async function sendChunk (stream: Stream, chunk: Uint8Array): Promise<void> {
  if (!stream.send(chunk)) await nextDrain(stream)
}

await node.handle(STRIPE_PROTOCOL, (stream, connection) => {
  const remote = connection.remotePeer.toString()
  // a stream from the seed is held (paused) while a forward stream drains: up to a whole stripe may wait
  stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, 32 * 1024 * 1024)
  /** Forward streams that pushed back, and the wait for them (reading is paused meanwhile). */
  const full = new Set<Stream>()
  let draining: Promise<void> | undefined
  const drain = async (): Promise<void> => {
    try {
      while (full.size > 0) {
        const waitFor = [...full]
        full.clear()
        await Promise.all(waitFor.map(async (s) => {
          while (s.writeBufferLength > FORWARD_BUFFER_BYTES) await nextDrain(s)
        }))
      }
      if (stream.readStatus === 'paused') stream.resume()
    } catch (err) {
      out({ event: 'error', command: 'expect', code: 'ERR_FORWARD', message: (err as Error).message })
      stream.abort(err as Error)
    } finally {
      draining = undefined
    }
  }
  stream.addEventListener('message', (evt) => {
    const n = evt.data.byteLength
    const forward = expectation !== undefined && remote === expectation.seedPeer ? expectation.forward : undefined
    if (forward !== undefined) {
      fromSeed += n
      // the same bytes to every other downloader, in the order they came
      for (const s of forward) if (!s.send(evt.data) && s.writeBufferLength > FORWARD_BUFFER_BYTES) full.add(s)
      if (full.size > 0 && draining === undefined) {
        stream.pause()
        draining = drain()
      }
    }
    counted(n)
  })
  stream.addEventListener('end', () => {
    const forward = expectation !== undefined && remote === expectation.seedPeer ? expectation.forward : undefined
    if (forward === undefined) return
    out({ event: 'stripe', bytes: fromSeed, at: Date.now() })
    // the whole stripe was read and handed on: close the forward streams once they have flushed it
    void Promise.resolve(draining)
      .then(async () => { await Promise.all(forward.map(async s => s.close({ signal: AbortSignal.timeout(DRAIN_TIMEOUT_MS) }))) })
      .catch((err: Error) => { out({ event: 'error', command: 'expect', code: 'ERR_FORWARD_CLOSE', message: err.message }) })
  })
}, { maxInboundStreams: 32, maxOutboundStreams: 32 })

out({ event: 'ready', peerId: node.peerId.toString(), multiaddrs: node.getMultiaddrs().map(String), ms: Date.now() - t0 })

const report = Number(values['report-ms'])
if (report > 0) {
  setInterval(() => {
    const tr = traffic.totals()
    const cpu = process.cpuUsage()
    out({ event: 'traffic', t: Date.now(), sent: tr.sent, received: tr.received, cpuMs: Math.round((cpu.user + cpu.system) / 1000), payloadReceived: received })
  }, report).unref()
}

async function openStreams (addrs: string[]): Promise<Stream[]> {
  return Promise.all(addrs.map(async a => node.dialProtocol(multiaddr(a), STRIPE_PROTOCOL, { signal: AbortSignal.timeout(60_000) })))
}

/** Stripe i of S bytes split N ways: [floor(i·S/N), floor((i+1)·S/N)). */
function stripe (total: number, n: number, i: number): [number, number] {
  return [Math.floor(i * total / n), Math.floor((i + 1) * total / n)]
}

async function sendStripes (): Promise<number> {
  const bytes = payload!
  const n = outbound.length
  let sent = 0
  await Promise.all(outbound.map(async (s, i) => {
    const [from, to] = stripe(bytes.byteLength, n, i)
    for (let off = from; off < to; off += chunkBytes) {
      const chunk = bytes.subarray(off, Math.min(to, off + chunkBytes))
      sent += chunk.byteLength
      await sendChunk(s, chunk)
    }
    await s.close({ signal: AbortSignal.timeout(DRAIN_TIMEOUT_MS) })
  }))
  return sent
}

async function run (cmd: string, args: string[]): Promise<void> {
  if (cmd === 'dial') {
    await node.dial(multiaddr(args[0]), { signal: AbortSignal.timeout(60_000) })
    out({ event: 'dialed', addr: args[0] })
  } else if (cmd === 'seed') {
    // the package, filled once and held in memory
    payload = randomFillSync(new Uint8Array(Number(args[0])))
    outbound = await openStreams(args.slice(1))
    out({ event: 'prepared', streams: outbound.length })
  } else if (cmd === 'expect') {
    const forward = await openStreams(args.slice(2))
    expectation = { total: Number(args[0]), seedPeer: args[1], forward }
    counted(0)
    out({ event: 'prepared', streams: forward.length })
  } else if (cmd === 'go') {
    const started = Date.now()
    const bytes = await sendStripes()
    out({ event: 'sent', bytes, ms: Date.now() - started, at: Date.now() })
  } else if (cmd === 'totals') {
    const tr = traffic.totals()
    out({ event: 'totals', sent: tr.sent, received: tr.received, payloadReceived: received, fromSeed })
  } else {
    throw new Error(`unknown command ${cmd}`)
  }
}

readCommands(run, async () => {
  const tr = traffic.totals()
  out({ event: 'stopping', sent: tr.sent, received: tr.received, payloadReceived: received })
  try { await node.stop() } catch {}
})
