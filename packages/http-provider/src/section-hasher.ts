/**
 * Hashing a CAR's sections, in order, on this thread or in core's SHA-256 worker. With the worker,
 * sections are copied (one memcpy) into batches of about BATCH_BYTES, each batch's buffer moved to
 * the worker and back, so the hashing of one batch overlaps the parsing, the reading and the
 * storing of the next ones. Sections come out in arrival order either way; each carries its digest
 * when the worker computed it (recorded in core's hash-once memo too), and none when it is left to
 * the caller's in-thread check. Nothing here decides that a block is good: the caller compares.
 *
 * Bounded: at most MAX_BATCHES_IN_FLIGHT batches wait for the worker; past that `take` waits for
 * the oldest. The worker is started at most once per stream and always terminated by `close()`.
 */
import { Sha256Worker, workerPays } from '@swarmpack/core'
import { logger } from '@libp2p/logger'
import type { RawCarSection } from './car-reader.js'
import type { CallSignal } from './call-signal.js'

const log = logger('swarmpack:http:hash')

/** Bytes per worker batch: ~50 sections of core's chunks, ~100 messages per 100 MiB. */
const BATCH_BYTES = 1024 * 1024
/** Batches sent to the worker and not yet taken (memory: this many times BATCH_BYTES). */
const MAX_BATCHES_IN_FLIGHT = 4

/**
 * Bytes of a CAR (announced, or seen so far) from which `auto` starts the worker. Starting one costs
 * ~40 ms of another thread here (the main thread hashes meanwhile); it then takes ~1.7 ms of
 * SHA-256 per MiB off the main thread.
 */
export const HASH_WORKER_THRESHOLD = 16 * 1024 * 1024

/** `true`: always a worker; `false`: never; `'auto'`: from HASH_WORKER_THRESHOLD bytes if a core is free. */
export type HashWorkerMode = boolean | 'auto'

/**
 * Whether `auto` uses the worker: a large enough CAR, and a core likely free; core's `workerPays`
 * (pack's rule for its chunk worker) with this module's threshold.
 */
export function hashWorkerPays (bytes: number, load1?: number, cores?: number): boolean {
  return workerPays(bytes, load1, cores, HASH_WORKER_THRESHOLD)
}

/** A section whose hash is known (`digest`) or left to the caller (`digest` undefined). */
export interface HashedSection extends RawCarSection {
  digest?: Uint8Array
}

interface Pending {
  settled: boolean
  sections: HashedSection[] | Promise<HashedSection[]>
}

export class SectionHasher {
  #worker: Sha256Worker | undefined
  #started = false
  #batched = false
  #seen = 0
  readonly #queue: Pending[] = []
  #buf: Buffer | undefined
  #used = 0
  #ranges: number[] = []
  #cids: Uint8Array[] = []
  readonly #offCancel: () => void
  readonly #abort = new AbortController()

  /** `expectedBytes`: the CAR's announced length, if any. */
  constructor (private readonly mode: HashWorkerMode, call: CallSignal, expectedBytes = 0) {
    this.#offCancel = call.onCancel(reason => { this.#abort.abort(reason) })
    this.#maybeStart(expectedBytes)
  }

  /** Whether a worker was started for this stream (for stats and tests). */
  get usedWorker (): boolean { return this.#started }

  #maybeStart (bytes: number): void {
    if (this.#started || this.mode === false) return
    if (this.mode === 'auto' && !hashWorkerPays(bytes)) return
    this.#started = true
    this.#worker = new Sha256Worker({ signal: this.#abort.signal })
  }

  /** Takes in the sections parsed from one chunk (views into it; block bytes are copied if batched). */
  add (sections: RawCarSection[], chunkBytes: number): void {
    this.#seen += chunkBytes
    this.#maybeStart(this.#seen)
    // `auto`: until the worker runs, this thread hashes (the caller does); from then on, the
    // worker. `true`: the worker from the first section (batches wait for it to start).
    if (!this.#batched && (this.#worker === undefined || (this.mode === 'auto' && !this.#worker.online))) {
      if (sections.length > 0) this.#queue.push({ settled: true, sections: sections.slice() })
      return
    }
    this.#batched = true
    for (const s of sections) {
      const n = s.bytes.byteLength
      if (this.#buf !== undefined && this.#used + n > this.#buf.byteLength) this.#submit()
      // Unzeroed: every byte handed out is written from a section first.
      this.#buf ??= Buffer.allocUnsafeSlow(Math.max(BATCH_BYTES, n))
      this.#buf.set(s.bytes, this.#used)
      this.#ranges.push(this.#used, n)
      this.#cids.push(s.cidBytes)
      this.#used += n
    }
  }

  #submit (): void {
    const buf = this.#buf
    if (buf === undefined || this.#ranges.length === 0) return
    const cids = this.#cids
    const pending: Pending = { settled: false, sections: [] }
    const hashed = (this.#worker as Sha256Worker).hashRanges(buf, Uint32Array.from(this.#ranges)).then(ranges => {
      pending.settled = true
      return ranges.map((r, i) => ({ cidBytes: cids[i], bytes: r.bytes, digest: r.digest }))
    })
    hashed.catch(() => {}) // surfaces through `take`; not unhandled if the stream ends first
    pending.sections = hashed
    this.#queue.push(pending)
    this.#buf = undefined
    this.#used = 0
    this.#ranges = []
    this.#cids = []
  }

  /**
   * Moves the sections ready, in order, to `out`: those hashed already, waiting for the oldest
   * batch only while too many are in flight. With `flush` (the stream ended) waits for all.
   */
  async take (out: HashedSection[], flush = false): Promise<void> {
    if (flush) this.#submit()
    while (this.#queue.length > 0) {
      const head = this.#queue[0]
      if (!head.settled && !flush && this.#queue.length <= MAX_BATCHES_IN_FLIGHT) return
      const sections = await head.sections
      this.#queue.shift()
      for (let i = 0; i < sections.length; i++) out.push(sections[i])
    }
  }

  /** Terminates the worker, if any (idempotent); batches still pending are dropped. */
  async close (): Promise<void> {
    this.#offCancel()
    this.#queue.length = 0
    const worker = this.#worker
    this.#worker = undefined
    if (worker !== undefined) {
      await worker.close()
      log('hash worker closed')
    }
  }
}
