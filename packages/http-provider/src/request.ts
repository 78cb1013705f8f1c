/**
 * One HTTP exchange with one mirror: a timeout covering the whole exchange, the caller's
 * AbortSignal, status mapping to typed errors, and a capped body read. Nothing here decides
 * whether bytes are good; the CID does that in the provider.
 */
import { CoreErrorCode, SwarmpackError } from '@swarmpack/core'
import { request, type Dispatcher } from 'undici'
import { discard, readCapped, tooLarge } from './body.js'
import { HttpErrorCode } from './errors.js'

export interface ExchangeOptions {
  dispatcher: Dispatcher
  method?: 'GET' | 'HEAD'
  headers: Record<string, string>
  /** Whole-exchange deadline for `fetchCapped`; idle deadline (headers, then between body chunks) for `open`. */
  timeoutMs: number
  signal?: AbortSignal
  source: string
}

export interface OpenResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Dispatcher.ResponseData['body']
  /** Call when done with the body (clears the timer and listeners). */
  done: () => void
}

const STREAM_HIGH_WATER_MARK = 1024 * 1024

/** Links the caller's signal and a timer into one controller, and remembers which fired. */
class Deadline {
  readonly controller = new AbortController()
  timedOut = false
  private timer: NodeJS.Timeout | undefined
  private readonly onAbort = (): void => { this.controller.abort(this.signal?.reason) }

  constructor (private readonly signal: AbortSignal | undefined, timeoutMs: number | undefined) {
    if (signal?.aborted === true) this.controller.abort(signal.reason)
    signal?.addEventListener('abort', this.onAbort, { once: true })
    if (timeoutMs !== undefined) {
      this.timer = setTimeout(() => { this.timedOut = true; this.controller.abort(new Error('timeout')) }, timeoutMs)
      this.timer.unref?.()
    }
  }

  clear (): void {
    clearTimeout(this.timer)
    this.signal?.removeEventListener('abort', this.onAbort)
  }
}

/** Turns whatever undici threw into a typed error. */
export function mapError (err: unknown, deadline: { timedOut: boolean }, signal: AbortSignal | undefined, source: string, timeoutMs: number): SwarmpackError {
  if (err instanceof SwarmpackError) return err
  if (signal?.aborted === true) return new SwarmpackError(CoreErrorCode.ABORTED, 'the operation was aborted', { cause: signal.reason })
  const code = (err as { code?: string })?.code
  if (deadline.timedOut || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new SwarmpackError(HttpErrorCode.TIMEOUT, `${source} did not answer within ${timeoutMs} ms`, { cause: err, details: { source } })
  }
  return new SwarmpackError(HttpErrorCode.NETWORK, `request to ${source} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err, details: { source, code } })
}

export function statusError (status: number, url: string, source: string): SwarmpackError {
  if (status === 404 || status === 410) {
    return new SwarmpackError(CoreErrorCode.NOT_FOUND, `${url} not found (${status})`, { details: { source, status } })
  }
  return new SwarmpackError(HttpErrorCode.BAD_STATUS, `${url} answered ${status}`, { details: { source, status } })
}

/** undici options shared by every request: dispatcher, method, headers, abort and idle timeouts. */
function requestOptions (opts: ExchangeOptions, signal: AbortSignal) {
  return {
    dispatcher: opts.dispatcher,
    method: opts.method ?? 'GET',
    headers: opts.headers,
    signal,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs
  }
}

/**
 * Opens a request and returns the response with its body unread. The idle timeout applies to the
 * headers and to every gap between body chunks, so a long stream (a CAR) can run as long as it
 * keeps moving.
 */
export async function open (url: string, opts: ExchangeOptions): Promise<OpenResponse> {
  const deadline = new Deadline(opts.signal, undefined)
  try {
    const res = await request(url, {
      ...requestOptions(opts, deadline.controller.signal),
      // Long streams: buffer up to 1 MiB before pausing the socket, fewer pause/resume cycles.
      highWaterMark: STREAM_HIGH_WATER_MARK
    })
    return { status: res.statusCode, headers: res.headers, body: res.body, done: () => { deadline.clear() } }
  } catch (err) {
    deadline.clear()
    throw mapError(err, deadline, opts.signal, opts.source, opts.timeoutMs)
  }
}

/**
 * GET (or HEAD) a URL and read the body whole, never more than `cap` bytes, all within
 * `timeoutMs`. Non-2xx statuses become typed errors (404/410: ERR_NOT_FOUND).
 */
export async function fetchCapped (url: string, cap: number, opts: ExchangeOptions): Promise<{ status: number, headers: OpenResponse['headers'], bytes: Uint8Array }> {
  const deadline = new Deadline(opts.signal, opts.timeoutMs)
  try {
    const res = await request(url, requestOptions(opts, deadline.controller.signal))
    if (res.statusCode < 200 || res.statusCode > 299) {
      discard(res.body, true)
      throw statusError(res.statusCode, url, opts.source)
    }
    const declared = Number(res.headers['content-length'])
    if (opts.method !== 'HEAD' && Number.isFinite(declared) && declared > cap) {
      discard(res.body)
      throw tooLarge(opts.source, cap)
    }
    const bytes = opts.method === 'HEAD' ? new Uint8Array(0) : await readCapped(res.body, cap, opts.source)
    return { status: res.statusCode, headers: res.headers, bytes }
  } catch (err) {
    throw mapError(err, deadline, opts.signal, opts.source, opts.timeoutMs)
  } finally {
    deadline.clear()
  }
}
