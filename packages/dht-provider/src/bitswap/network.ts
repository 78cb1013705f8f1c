/**
 * Streams for Bitswap: messages travel on one-way streams. We read every inbound stream as a
 * sequence of varint-length-prefixed messages (refusing any over the cap) and send on one
 * outbound stream per peer, reopened when it dies and closed when idle. Backpressure both ways:
 * reading pauses while decoded messages wait to be handled; writing waits for the stream's drain
 * whenever `send()` reports a full buffer (see drain.ts: not `onDrain()`).
 */
import { logger } from '@libp2p/logger'
import { LengthPrefixedDecoder } from '@libp2p/utils'
import { BITSWAP_PROTOCOL, DEFAULT_MAX_INCOMING_MESSAGE_SIZE, MAX_MESSAGE_SIZE, MAX_QUEUED_MESSAGES_PER_PEER, PAUSED_READ_BUFFER_LIMIT, MAX_INBOUND_STREAMS_PER_CONNECTION, MAX_OUTBOUND_STREAMS_PER_CONNECTION, OUTBOUND_STREAM_IDLE_MS, SEND_TIMEOUT_MS } from './constants.js'
import { drained } from '../drain.js'
import { frameLength } from './framing.js'
import { decodeMessage, splitMessages } from './wire.js'
import type { Message, OutgoingContent } from './wire.js'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'

const log = logger('swarmpack:bitswap:network')

export interface NetworkHandlers {
  /** Called for each decoded message, in order per stream; the next waits for the returned promise. */
  onMessage(peer: PeerId, message: Message): Promise<void>
  /** A stream carried something that is not a valid message (oversized, malformed). */
  onProtocolViolation(peer: PeerId, reason: string): void
  onPeerDisconnected(peer: PeerId): void
  /** Whether to refuse streams from and to this peer. */
  isBanned(peer: PeerId): boolean
}

interface Outbound {
  stream?: Stream
  /** Sends to this peer are serialized through this chain. */
  tail: Promise<void>
  idleTimer?: ReturnType<typeof setTimeout>
}

/** Messages from one peer waiting to be handled, across all its inbound streams. */
interface InboundQueue {
  chain: Promise<void>
  queued: number
  streams: Set<Stream>
}

export class BitswapNetwork {
  private readonly libp2p: Libp2p
  private readonly handlers: NetworkHandlers
  private readonly maxMessageSize: number
  private readonly maxIncomingMessageSize: number
  private readonly outbound = new Map<string, Outbound>()
  private readonly inbound = new Set<Stream>()
  private readonly inboundQueues = new Map<string, InboundQueue>()
  /** Messages (frames) sent and received, for stats: in a swarm their count, not their bytes, sets the CPU cost. */
  messagesSent = 0
  messagesReceived = 0
  private running = false
  private readonly onPeerDisconnect = (evt: CustomEvent<PeerId>): void => {
    this.dropOutbound(evt.detail)
    this.handlers.onPeerDisconnected(evt.detail)
  }

  constructor (libp2p: Libp2p, handlers: NetworkHandlers, options: { maxMessageSize?: number, maxIncomingMessageSize?: number } = {}) {
    this.libp2p = libp2p
    this.handlers = handlers
    this.maxMessageSize = options.maxMessageSize ?? MAX_MESSAGE_SIZE
    this.maxIncomingMessageSize = options.maxIncomingMessageSize ?? DEFAULT_MAX_INCOMING_MESSAGE_SIZE
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    await this.libp2p.handle(BITSWAP_PROTOCOL, (stream, connection) => { this.onStream(stream, connection) }, {
      maxInboundStreams: MAX_INBOUND_STREAMS_PER_CONNECTION,
      maxOutboundStreams: MAX_OUTBOUND_STREAMS_PER_CONNECTION
    })
    // the last connection to a peer closed (a registrar topology would also report peers that
    // merely do not list bitswap after identify, though they may still send us wants)
    this.libp2p.addEventListener('peer:disconnect', this.onPeerDisconnect)
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.libp2p.removeEventListener('peer:disconnect', this.onPeerDisconnect)
    await this.libp2p.unhandle(BITSWAP_PROTOCOL).catch(() => {})
    for (const key of [...this.outbound.keys()]) this.dropOutboundKey(key)
    for (const stream of this.inbound) stream.abort(new Error('bitswap stopped'))
    this.inbound.clear()
    this.inboundQueues.clear()
  }

  /**
   * Sends content to a peer, split into messages under the cap, on the peer's outbound stream.
   * Resolves once every message was accepted by the stream (after draining when it pushed back);
   * rejects if the peer cannot be reached.
   */
  async send (peer: PeerId, content: OutgoingContent, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (!this.running) throw new Error('bitswap network is not running')
    if (this.handlers.isBanned(peer)) throw new Error('peer is banned')
    const key = peer.toString()
    let out = this.outbound.get(key)
    if (out === undefined) {
      out = { tail: Promise.resolve() }
      this.outbound.set(key, out)
    }
    const entry = out
    const job = entry.tail.then(async () => { await this.sendNow(peer, entry, content, options) })
    entry.tail = job.catch(() => {})
    return job
  }

  private async sendNow (peer: PeerId, out: Outbound, content: OutgoingContent, options: { signal?: AbortSignal }): Promise<void> {
    if (out.idleTimer !== undefined) clearTimeout(out.idleTimer)
    for (const frame of splitMessages(content, this.maxMessageSize, { lengthPrefixed: true })) {
      // one retry on a fresh stream: the remote may have closed an idle one just now
      for (let attempt = 0; ; attempt++) {
        try {
          const stream = await this.outboundStream(peer, out, options)
          log.trace('sending %d bytes to %p', frame.byteLength, peer)
          // length and message in one buffer, one send: one muxer frame, one encryption, one
          // socket write (and one window update back) per message
          this.messagesSent++
          if (!stream.send(frame)) {
            // a peer that stops reading without closing must not hold this queue forever
            const timeout = AbortSignal.timeout(SEND_TIMEOUT_MS)
            await drained(stream, options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout]))
          }
          break
        } catch (err) {
          if (out.stream !== undefined) { out.stream.abort(err as Error); out.stream = undefined }
          if (attempt >= 1 || options.signal?.aborted === true || !this.running) throw err
        }
      }
    }
    out.idleTimer = setTimeout(() => {
      const stream = out.stream
      out.stream = undefined
      if (stream !== undefined) stream.close().catch(err => { stream.abort(err) })
    }, OUTBOUND_STREAM_IDLE_MS)
    out.idleTimer.unref?.()
  }

  private async outboundStream (peer: PeerId, out: Outbound, options: { signal?: AbortSignal }): Promise<Stream> {
    const current = out.stream
    if (current !== undefined && current.status === 'open' && current.writeStatus === 'writable') return current
    out.stream = undefined
    // libp2p 3 negotiates every new stream in full (one round trip; its `negotiateFully: false`
    // is not implemented), so this stream is kept and reused for every message to the peer
    const stream = await this.libp2p.dialProtocol(peer, BITSWAP_PROTOCOL, { signal: options.signal })
    // one-way: we never read what comes back on our own stream
    stream.closeRead().catch(() => {})
    out.stream = stream
    return stream
  }

  private dropOutbound (peer: PeerId): void {
    this.dropOutboundKey(peer.toString())
  }

  private dropOutboundKey (key: string): void {
    const out = this.outbound.get(key)
    if (out === undefined) return
    if (out.idleTimer !== undefined) clearTimeout(out.idleTimer)
    out.stream?.abort(new Error('bitswap peer gone'))
    out.stream = undefined
    this.outbound.delete(key)
  }

  /**
   * Reads one inbound stream: frames, decodes and hands messages over. All streams of a peer share
   * one queue (Helia opens a stream per message, so this also keeps its messages in order); when
   * the queue is full every stream of that peer is paused until it empties.
   */
  private onStream (stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer
    if (!this.running || this.handlers.isBanned(peer)) {
      stream.abort(new Error('refused'))
      return
    }
    this.inbound.add(stream)
    // one-way: nothing goes back on a stream the remote opened
    stream.close().catch(() => {})
    stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, PAUSED_READ_BUFFER_LIMIT)
    // the frame length is checked as soon as its prefix is read; the buffer may also hold what
    // accumulated during a pause, handed over in one piece on resume
    const decoder = new LengthPrefixedDecoder({ maxDataLength: this.maxIncomingMessageSize, maxBufferSize: stream.maxReadBufferLength + this.maxIncomingMessageSize, lengthDecoder: frameLength })
    const key = peer.toString()
    let queue = this.inboundQueues.get(key)
    if (queue === undefined) {
      queue = { chain: Promise.resolve(), queued: 0, streams: new Set() }
      this.inboundQueues.set(key, queue)
    }
    const q = queue
    q.streams.add(stream)
    if (q.queued >= MAX_QUEUED_MESSAGES_PER_PEER) stream.pause()
    let failed = false

    const fail = (reason: string, err: unknown): void => {
      if (failed) return
      failed = true
      log('resetting stream from %p: %s %s', peer, reason, (err as Error)?.message ?? '')
      stream.abort(new Error(reason))
      this.handlers.onProtocolViolation(peer, reason)
    }

    log.trace('inbound stream from %p', peer)
    stream.addEventListener('message', (evt) => {
      if (failed) return
      let frames
      try {
        frames = [...decoder.decode(evt.data)]
      } catch (err) {
        fail('oversized or malformed frame', err)
        return
      }
      for (const frame of frames) {
        let message: Message
        try {
          // read across the chunks the stream delivered: blocks are views of them (one that
          // straddles two is copied), not of a copy of the whole message
          message = decodeMessage(frame)
        } catch (err) {
          fail('malformed protobuf', err)
          return
        }
        this.messagesReceived++
        q.queued++
        if (q.queued === MAX_QUEUED_MESSAGES_PER_PEER) {
          for (const s of q.streams) if (s.readStatus === 'readable') s.pause()
        }
        q.chain = q.chain.then(async () => {
          try {
            await this.handlers.onMessage(peer, message)
          } catch (err) {
            log.error('handling message from %p failed: %e', peer, err)
          } finally {
            q.queued--
            if (q.queued < MAX_QUEUED_MESSAGES_PER_PEER) {
              for (const s of q.streams) if (s.readStatus === 'paused') s.resume()
            }
          }
        })
      }
    })
    stream.addEventListener('close', () => {
      this.inbound.delete(stream)
      q.streams.delete(stream)
      if (q.streams.size === 0 && q.queued === 0 && this.inboundQueues.get(key) === q) this.inboundQueues.delete(key)
    })
  }
}
