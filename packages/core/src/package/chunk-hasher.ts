/**
 * The main thread's side of pack's chunk worker (chunk-worker.ts): one worker thread per pack,
 * fed a file's pieces in order, replying in order with the chunks cut and their SHA-256 digests.
 * The caller bounds the pieces in flight (each holds its own ArrayBuffer, transferred both ways).
 * Failures are typed: the worker failing or exiting early rejects every pending piece with
 * ERR_PACK_WORKER, an abort with ERR_ABORTED; either way the worker is terminated, and `close()`
 * (always called by pack) resolves only once the thread has exited.
 */
import { Worker } from 'node:worker_threads'
import { logger } from '@libp2p/logger'
import type { ChunkerParams } from '../chunker/index.js'
import { CoreErrorCode, SwarmpackError } from '../errors.js'
import type { ChunkReply, ChunkRequest } from './chunk-protocol.js'
import { PackageErrorCode } from './errors.js'

const log = logger('swarmpack:pack:worker')

export type { ChunkReply }

/**
 * The worker script next to this module. From the TypeScript sources (tests and benchmarks run
 * through tsx) a worker does not inherit tsx's loader, so it is registered in the worker first.
 */
const defaultWorkerUrl = new URL(import.meta.url.endsWith('.ts') ? './chunk-worker.ts' : './chunk-worker.js', import.meta.url)

function spawn (url: URL, params: ChunkerParams): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData: params })
  const tsx = import.meta.resolve('tsx/esm/api')
  return new Worker(`import(${JSON.stringify(tsx)}).then(m => { m.register(); return import(${JSON.stringify(url.href)}) })`, { eval: true, workerData: params })
}

let live = 0
/** Chunk workers started and not yet exited, in this process (for tests: none may outlive pack). */
export function liveChunkWorkers (): number { return live }

export interface ChunkHasherInit {
  params: ChunkerParams
  signal?: AbortSignal
  /** Another worker script speaking the same protocol (tests use failing ones). */
  workerUrl?: URL
}

export class ChunkHasher {
  readonly #worker: Worker
  readonly #exited: Promise<void>
  readonly #pending: Array<{ resolve: (r: ChunkReply) => void, reject: (e: unknown) => void }> = []
  readonly #signal?: AbortSignal
  readonly #onAbort = (): void => { this.#fail(new SwarmpackError(CoreErrorCode.ABORTED, 'the operation was aborted', { cause: this.#signal?.reason })) }
  #error: unknown
  #closed = false

  constructor (init: ChunkHasherInit) {
    this.#signal = init.signal
    const worker = this.#worker = spawn(init.workerUrl ?? defaultWorkerUrl, init.params)
    live++
    log('started worker %d', worker.threadId)
    this.#exited = new Promise(resolve => {
      worker.once('exit', code => {
        live--
        log('worker %d exited (%d)', worker.threadId, code)
        if (!this.#closed) this.#fail(new SwarmpackError(PackageErrorCode.WORKER, `pack's chunk worker exited with code ${code} while ${this.#pending.length} pieces were pending`, { details: { exitCode: code, pending: this.#pending.length } }))
        resolve()
      })
    })
    worker.on('message', (reply: ChunkReply) => { this.#pending.shift()?.resolve(reply) })
    worker.on('error', err => {
      this.#fail(new SwarmpackError(PackageErrorCode.WORKER, `pack's chunk worker failed: ${err.message}`, { cause: err }))
    })
    worker.on('messageerror', err => {
      this.#fail(new SwarmpackError(PackageErrorCode.WORKER, `pack's chunk worker sent a message that could not be read: ${err.message}`, { cause: err }))
    })
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true })
    if (this.#signal?.aborted === true) this.#onAbort()
  }

  /**
   * Sends the next piece of the current file (`final` on its last piece; an empty final piece is
   * allowed). The piece's ArrayBuffer is transferred: it is unusable here afterwards. Resolves
   * with the chunks cut so far, in order.
   */
  async submit (bytes: Uint8Array, final: boolean): Promise<ChunkReply> {
    if (this.#error !== undefined) throw this.#error
    const reply = new Promise<ChunkReply>((resolve, reject) => { this.#pending.push({ resolve, reject }) })
    const request: ChunkRequest = { bytes, final }
    this.#worker.postMessage(request, [bytes.buffer as ArrayBuffer])
    return await reply
  }

  /** Rejects everything pending with `err` and stops the worker (once; later failures are ignored). */
  #fail (err: unknown): void {
    if (this.#error !== undefined) return
    this.#error = err
    log.error('%s', (err as Error).message)
    for (const p of this.#pending.splice(0)) p.reject(err)
    void this.#worker.terminate()
  }

  /** Terminates the worker and resolves once it has exited. Idempotent. */
  async close (): Promise<void> {
    this.#closed = true
    this.#signal?.removeEventListener('abort', this.#onAbort)
    if (this.#error === undefined) this.#error = new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, 'the chunk hasher is closed')
    for (const p of this.#pending.splice(0)) p.reject(this.#error)
    await this.#worker.terminate()
    await this.#exited
  }
}
