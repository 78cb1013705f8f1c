/**
 * SHA-256 off the calling thread: a worker thread that hashes batches of byte ranges, so a receive
 * path (the HTTP provider's CAR reader) can parse and store while the hashing runs on another core.
 * A batch is one buffer, transferred to the worker and back (moved, never copied); each range comes
 * back as a view of that memory with its digest, recorded in core's hash-once memo, so the block
 * store trusts that hash instead of hashing the bytes again (see digest-memo.ts: the worker hashed
 * this very memory, and no other code could write to it while it was away).
 *
 * Replies come in request order. Failures are typed: the worker failing or exiting early rejects
 * every pending batch with ERR_HASH_WORKER, an abort with ERR_ABORTED; either way the worker is
 * terminated, and `close()` (which every user must call) resolves only once the thread has exited.
 */
import { Worker } from 'node:worker_threads'
import { logger } from '@libp2p/logger'
import { rememberSha256 } from '../digest-memo.js'
import { WorkerChannel } from '../worker-channel.js'
import { SHA256_BYTES, type HashReply, type HashRequest } from './protocol.js'

const log = logger('swarmpack:hash:worker')

export const HashErrorCode = {
  /** The SHA-256 worker thread failed or exited while batches were pending. */
  WORKER: 'ERR_HASH_WORKER'
} as const

export type HashErrorCode = typeof HashErrorCode[keyof typeof HashErrorCode]

/** One hashed range: a view of the batch's memory and its SHA-256 digest. */
export interface HashedRange {
  bytes: Uint8Array
  digest: Uint8Array
}

export interface Sha256WorkerInit {
  /** Aborting rejects pending batches with ERR_ABORTED and terminates the worker. */
  signal?: AbortSignal
  /** Another worker script (plain JavaScript) speaking the same protocol: tests use failing ones. */
  workerUrl?: URL
}

/**
 * The worker's whole program (protocol.ts): plain JavaScript run with `eval`, so the thread starts
 * without loading a module graph or a TypeScript loader (from sources, tsx costs ~300 ms per start).
 * crypto.hash (Node >= 20.12) is a one-shot call without a Hash object per range.
 */
const THREAD_SOURCE = `
const crypto = require('node:crypto')
const { parentPort } = require('node:worker_threads')
const sha256 = typeof crypto.hash === 'function'
  ? b => crypto.hash('sha256', b, 'buffer')
  : b => crypto.createHash('sha256').update(b).digest()
parentPort.on('message', ({ bytes, ranges }) => {
  const n = ranges.length >> 1
  const digests = new Uint8Array(n * ${SHA256_BYTES})
  for (let i = 0; i < n; i++) {
    const off = ranges[2 * i]
    digests.set(sha256(bytes.subarray(off, off + ranges[2 * i + 1])), i * ${SHA256_BYTES})
  }
  parentPort.postMessage({ bytes, ranges, digests }, [bytes.buffer, ranges.buffer, digests.buffer])
})
`

function startThread (url?: URL): Worker {
  return url === undefined ? new Worker(THREAD_SOURCE, { eval: true }) : new Worker(url)
}

let live = 0
/** SHA-256 workers started and not yet exited in this process (tests check none outlives its user). */
export function liveSha256Workers (): number { return live }

export class Sha256Worker {
  readonly #channel: WorkerChannel<HashReply>

  constructor (init: Sha256WorkerInit = {}) {
    live++
    this.#channel = new WorkerChannel(startThread(init.workerUrl), {
      errorCode: HashErrorCode.WORKER,
      name: 'the SHA-256 worker',
      requests: 'batches',
      log,
      ...(init.signal !== undefined ? { signal: init.signal } : {}),
      onExit: () => { live-- }
    })
  }

  /** True once the thread runs (before that a batch waits for its start, ~30-60 ms here). */
  get online (): boolean { return this.#channel.online }

  /** Batches sent and not yet answered. */
  get pending (): number { return this.#channel.pending }

  /**
   * Hashes `ranges` of `bytes`: pairs of (offset, length) relative to `bytes`. The whole
   * ArrayBuffer behind `bytes` is transferred: it is unusable here afterwards (give each batch a
   * buffer of its own). Resolves, in request order, with a view and the digest of each range; each
   * view is recorded in the hash-once memo, so `verifyBlock` and the block store use that digest.
   */
  async hashRanges (bytes: Uint8Array, ranges: Uint32Array): Promise<HashedRange[]> {
    const request: HashRequest = { bytes, ranges }
    const r = await this.#channel.request(request, [bytes.buffer as ArrayBuffer, ranges.buffer as ArrayBuffer])
    const out: HashedRange[] = new Array(r.ranges.length >> 1)
    for (let i = 0; i < out.length; i++) {
      const view = r.bytes.subarray(r.ranges[2 * i], r.ranges[2 * i] + r.ranges[2 * i + 1])
      const digest = r.digests.subarray(i * SHA256_BYTES, (i + 1) * SHA256_BYTES)
      rememberSha256(view, digest)
      out[i] = { bytes: view, digest }
    }
    return out
  }

  /** Terminates the worker and resolves once it has exited. Idempotent. */
  async close (): Promise<void> {
    await this.#channel.close()
  }
}
