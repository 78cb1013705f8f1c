/**
 * Long response bodies (CAR streams) without a Readable in between: undici's `dispatch` hands each
 * body chunk to our handler, which queues it for one async iterator. Past `highWaterMark` queued
 * bytes the socket is paused until the consumer catches up, so memory stays bounded and a slow
 * consumer slows the server down. This skips the Readable stream and its async iterator per chunk,
 * a measurable share of the client's CPU on a 100 MiB CAR.
 */
import type { Dispatcher } from 'undici'
import { mapError, type ExchangeOptions, type OpenResponse } from './request.js'

type Controller = Dispatcher.DispatchController

/** The body of a streamed response: an async iterable of chunks with `destroy` and `dump`. */
export class BodyQueue implements AsyncIterable<Uint8Array> {
  private chunks: Uint8Array[] = []
  private queued = 0
  private ended = false
  private error: Error | undefined
  private wake: (() => void) | undefined
  private dumping: { limit: number, seen: number, resolve: () => void } | undefined
  controller: Controller | undefined

  constructor (private readonly highWaterMark: number) {}

  /** From the handler: a body chunk. */
  push (chunk: Uint8Array): void {
    if (this.ended) return
    if (this.dumping !== undefined) {
      this.dumping.seen += chunk.byteLength
      if (this.dumping.seen > this.dumping.limit) this.destroy()
      return
    }
    this.chunks.push(chunk)
    this.queued += chunk.byteLength
    if (this.queued > this.highWaterMark && this.controller !== undefined && !this.controller.paused) this.controller.pause()
    this.notify()
  }

  /** From the handler: the body is complete. */
  end (): void {
    this.ended = true
    this.dumping?.resolve()
    this.notify()
  }

  /** From the handler: the exchange failed. */
  fail (err: Error): void {
    if (this.ended) return
    this.error ??= err
    this.dumping?.resolve()
    this.notify()
  }

  private notify (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  async next (): Promise<IteratorResult<Uint8Array>> {
    while (true) {
      const chunk = this.chunks.shift()
      if (chunk !== undefined) {
        this.queued -= chunk.byteLength
        if (this.controller?.paused === true && this.queued <= this.highWaterMark / 2) this.controller.resume()
        return { done: false, value: chunk }
      }
      if (this.error !== undefined) throw this.error
      if (this.ended) return { done: true, value: undefined }
      await new Promise<void>(resolve => { this.wake = resolve })
    }
  }

  [Symbol.asyncIterator] (): AsyncIterator<Uint8Array> {
    return {
      next: async () => await this.next(),
      return: async () => { this.destroy(); return { done: true, value: undefined } }
    }
  }

  /** Stops the exchange (closing the connection if the body is not complete) and drops what is queued. */
  destroy (err?: Error): void {
    if (!this.ended && this.error === undefined) {
      this.error = err ?? new Error('body discarded')
      const c = this.controller
      if (c !== undefined && !c.aborted) c.abort(this.error)
    }
    this.chunks = []
    this.queued = 0
    this.dumping?.resolve()
    this.notify()
  }

  /** Errors surface through iteration; this exists for `discard`. */
  on (_event: 'error', _listener: (err: Error) => void): this { return this }

  /** Reads and drops up to `limit` more bytes so the connection can be reused, else closes it. */
  async dump (opts: { limit: number } = { limit: 64 * 1024 }): Promise<void> {
    if (this.ended || this.error !== undefined) return
    const seen = this.queued
    this.chunks = []
    this.queued = 0
    if (seen > opts.limit) { this.destroy(); return }
    await new Promise<void>(resolve => {
      this.dumping = { limit: opts.limit, seen, resolve }
      if (this.controller?.paused === true) this.controller.resume()
    })
  }
}

/**
 * Opens a GET and resolves with the status and headers once they arrive; the body comes through a
 * BodyQueue. Same timeouts and error mapping as `open` in request.ts (idle deadline for the
 * headers and between body chunks, the caller's signal).
 */
export async function openStream (url: string, opts: ExchangeOptions & { highWaterMark: number }): Promise<OpenResponse> {
  const body = new BodyQueue(opts.highWaterMark)
  const state = { timedOut: false }
  const signal = opts.signal
  let settled = false
  let onAbort: (() => void) | undefined
  const cleanup = (): void => { if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort) }
  return await new Promise<OpenResponse>((resolve, reject) => {
    const u = new URL(url)
    const failed = (err: Error): void => {
      const mapped = mapError(err, state, signal, opts.source, opts.timeoutMs)
      if (!settled) { settled = true; cleanup(); reject(mapped) } else body.fail(mapped)
    }
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart (controller) {
        body.controller = controller
        if (signal?.aborted === true) controller.abort(signal.reason)
      },
      onResponseStart (_controller, statusCode, headers) {
        if (statusCode < 200 && statusCode !== 0) return // 1xx: the real answer follows
        settled = true
        resolve({ status: statusCode, headers, body: body as unknown as OpenResponse['body'], done: cleanup })
      },
      onResponseData (_controller, chunk) { body.push(chunk) },
      onResponseEnd () { if (!settled) failed(new Error('response ended before its headers')); else body.end() },
      onResponseError (_controller, err) { failed(err) }
    }
    if (signal !== undefined) {
      onAbort = () => { const c = body.controller; if (c !== undefined && !c.aborted) c.abort(signal.reason) }
      signal.addEventListener('abort', onAbort, { once: true })
    }
    try {
      opts.dispatcher.dispatch({
        origin: u.origin,
        path: `${u.pathname}${u.search}`,
        method: 'GET',
        headers: opts.headers,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs
      }, handler)
    } catch (err) {
      failed(err as Error)
    }
  })
}
