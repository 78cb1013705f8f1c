/**
 * Long response bodies (CAR streams) without a Readable in between: undici's `dispatch` hands each
 * body chunk to our handler, which queues it for one async iterator. Past `highWaterMark` queued
 * bytes the socket is paused until the consumer catches up, so memory stays bounded and a slow
 * consumer slows the server down. This skips the Readable stream and its async iterator per chunk,
 * a measurable share of the client's CPU on a 100 MiB CAR.
 */
import { SwarmpackError } from '@swarmpack/core'
import type { Dispatcher } from 'undici'
import { CallSignal } from './call-signal.js'
import { HttpErrorCode } from './errors.js'
import { mapError, requestHeaders, type ExchangeOptions, type OpenResponse } from './request.js'

type Controller = Dispatcher.DispatchController

/** The body of a streamed response: an async iterable of chunks with `destroy` and `dump`. */
export class BodyQueue implements AsyncIterable<Uint8Array> {
  private chunks: Uint8Array[] = []
  private queued = 0
  private ended = false
  private error: Error | undefined
  private wake: (() => void) | undefined
  private dumping: { limit: number, seen: number, resolve: () => void } | undefined
  /** Bytes received so far, and whether we paused the socket since the last rate check. */
  private received = 0
  private pausedSinceCheck = false
  private rateTimer: NodeJS.Timeout | undefined
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
    this.received += chunk.byteLength
    this.chunks.push(chunk)
    this.queued += chunk.byteLength
    if (this.queued > this.highWaterMark && this.controller !== undefined && !this.controller.paused) {
      this.controller.pause()
      this.pausedSinceCheck = true
    }
    this.notify()
  }

  /**
   * Calls `onSlow(bytes)` when fewer than `minBytesPerSecond` arrived over a window of `windowMs`
   * during which the socket was not paused by us.
   */
  watchRate (minBytesPerSecond: number, windowMs: number, onSlow: (bytes: number) => void): void {
    let last = this.received
    this.pausedSinceCheck = false
    this.rateTimer = setInterval(() => {
      const got = this.received - last
      last = this.received
      const paused = this.pausedSinceCheck || this.controller?.paused === true
      this.pausedSinceCheck = false
      if (!paused && got < minBytesPerSecond * windowMs / 1000) onSlow(got)
    }, windowMs)
    this.rateTimer.unref?.()
  }

  stopWatch (): void {
    clearInterval(this.rateTimer)
    this.rateTimer = undefined
  }

  /** From the handler: the body is complete. */
  end (): void {
    this.stopWatch()
    this.ended = true
    this.dumping?.resolve()
    this.notify()
  }

  /** From the handler: the exchange failed. */
  fail (err: Error): void {
    this.stopWatch()
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
    this.stopWatch()
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
 * BodyQueue. Deadlines: `timeoutMs` for the headers and between body chunks, and (when
 * `minBytesPerSecond` > 0) a minimum transfer rate checked every `rateWindowMs` once the body
 * flows, so a server that trickles a byte at a time cannot hold the call for ever. Windows in
 * which we paused the socket ourselves (a slow consumer) do not count.
 */
export async function openStream (url: string, opts: ExchangeOptions & { highWaterMark: number, minBytesPerSecond?: number, rateWindowMs?: number }): Promise<OpenResponse> {
  const body = new BodyQueue(opts.highWaterMark)
  const state = { timedOut: false }
  const call = opts.call ?? new CallSignal(opts.signal)
  let settled = false
  const off = call.onCancel(reason => { const c = body.controller; if (c !== undefined && !c.aborted) c.abort(reason as Error) })
  const cleanup = (): void => {
    off()
    body.stopWatch()
    if (opts.call === undefined) call.dispose()
  }
  return await new Promise<OpenResponse>((resolve, reject) => {
    const u = new URL(url)
    const failed = (err: Error): void => {
      const mapped = mapError(err, state, call, opts.source, opts.timeoutMs)
      if (!settled) { settled = true; cleanup(); reject(mapped) } else body.fail(mapped)
    }
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart (controller) {
        body.controller = controller
        if (call.aborted) controller.abort(call.reason as Error)
      },
      onResponseStart (_controller, statusCode, headers) {
        if (statusCode < 200 && statusCode !== 0) return // 1xx: the real answer follows
        settled = true
        const min = opts.minBytesPerSecond ?? 0
        const windowMs = opts.rateWindowMs ?? opts.timeoutMs
        if (min > 0 && statusCode >= 200 && statusCode <= 299) {
          body.watchRate(min, windowMs, got => {
            body.destroy(new SwarmpackError(HttpErrorCode.TIMEOUT, `${opts.source} sent ${got} bytes in ${windowMs} ms, below the minimum of ${min} bytes/s`, { details: { source: opts.source, minBytesPerSecond: min } }))
          })
        }
        resolve({ status: statusCode, headers, body: body as unknown as OpenResponse['body'], done: cleanup })
      },
      onResponseData (_controller, chunk) { body.push(chunk) },
      onResponseEnd () { if (!settled) failed(new Error('response ended before its headers')); else body.end() },
      onResponseError (_controller, err) { failed(err) }
    }
    try {
      opts.dispatcher.dispatch({
        origin: u.origin,
        path: `${u.pathname}${u.search}`,
        method: 'GET',
        headers: requestHeaders(opts.headers),
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs
      }, handler)
    } catch (err) {
      failed(err as Error)
    }
  })
}
