/**
 * A worker thread answering requests in order: what pack's chunk worker and the SHA-256 worker
 * share. Each request is posted with its buffers transferred; replies resolve the oldest pending
 * request. Failures are typed: the worker failing, sending an unreadable message or exiting early
 * rejects every pending request with the owner's error code, an abort with ERR_ABORTED; either way
 * the worker is terminated, and `close()` resolves only once the thread has exited.
 */
import { CoreErrorCode, SwarmpackError } from './errors.js'
import type { Logger } from '@libp2p/logger'
import type { Worker } from 'node:worker_threads'

export interface WorkerChannelInit {
  /** Error code for a worker that fails or exits early (ERR_PACK_WORKER, ERR_HASH_WORKER). */
  errorCode: string
  /** How errors name the worker ("pack's chunk worker") and its requests ("pieces"). */
  name: string
  requests: string
  log: Logger
  /** Aborting rejects pending requests with ERR_ABORTED and terminates the worker. */
  signal?: AbortSignal
  /** Called once when the thread has exited (the owners count live workers for tests). */
  onExit?: () => void
}

export class WorkerChannel<Reply> {
  readonly #worker: Worker
  readonly #init: WorkerChannelInit
  readonly #exited: Promise<void>
  readonly #pending: Array<{ resolve: (r: Reply) => void, reject: (e: unknown) => void }> = []
  readonly #onAbort = (): void => { this.#fail(new SwarmpackError(CoreErrorCode.ABORTED, 'the operation was aborted', { cause: this.#init.signal?.reason })) }
  #error: unknown
  #closed = false
  #online = false

  constructor (worker: Worker, init: WorkerChannelInit) {
    this.#worker = worker
    this.#init = init
    const { log, name, requests, errorCode } = init
    log('started worker %d', worker.threadId)
    worker.once('online', () => { this.#online = true })
    this.#exited = new Promise(resolve => {
      worker.once('exit', code => {
        init.onExit?.()
        log('worker %d exited (%d)', worker.threadId, code)
        if (!this.#closed) this.#fail(new SwarmpackError(errorCode, `${name} exited with code ${code} while ${this.#pending.length} ${requests} were pending`, { details: { exitCode: code, pending: this.#pending.length } }))
        resolve()
      })
    })
    worker.on('message', (reply: Reply) => { this.#pending.shift()?.resolve(reply) })
    worker.on('error', err => {
      this.#fail(new SwarmpackError(errorCode, `${name} failed: ${err.message}`, { cause: err }))
    })
    worker.on('messageerror', err => {
      this.#fail(new SwarmpackError(errorCode, `${name} sent a message that could not be read: ${err.message}`, { cause: err }))
    })
    init.signal?.addEventListener('abort', this.#onAbort, { once: true })
    if (init.signal?.aborted === true) this.#onAbort()
  }

  /** True once the thread runs (before that a request waits for its start). */
  get online (): boolean { return this.#online }

  /** Requests sent and not yet answered. */
  get pending (): number { return this.#pending.length }

  /** Posts `message` (transferring `transfer`) and resolves with its reply, in request order. */
  async request (message: unknown, transfer: ArrayBuffer[]): Promise<Reply> {
    if (this.#error !== undefined) throw this.#error
    const reply = new Promise<Reply>((resolve, reject) => { this.#pending.push({ resolve, reject }) })
    this.#worker.postMessage(message, transfer)
    return await reply
  }

  /** Rejects everything pending with `err` and stops the worker (once; later failures are ignored). */
  #fail (err: unknown): void {
    if (this.#error !== undefined) return
    this.#error = err
    if ((err as SwarmpackError).code !== CoreErrorCode.ABORTED) this.#init.log.error('%s', (err as Error).message)
    for (const p of this.#pending.splice(0)) p.reject(err)
    void this.#worker.terminate()
  }

  /** Terminates the worker and resolves once it has exited. Idempotent. */
  async close (): Promise<void> {
    this.#closed = true
    this.#init.signal?.removeEventListener('abort', this.#onAbort)
    if (this.#error === undefined) this.#error = new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, `${this.#init.name} is closed`)
    for (const p of this.#pending.splice(0)) p.reject(this.#error)
    await this.#worker.terminate()
    await this.#exited
  }
}
