/**
 * One HTTP exchange with one mirror: a timeout covering the whole exchange, the call's abort,
 * status mapping to typed errors (with `Retry-After`), identity encoding asked for and anything else
 * decoded, and a capped body read. Nothing here decides whether bytes are good; the CID does.
 */
import { CoreErrorCode, SwarmpackError } from '@swarmpack/core'
import { request, type Dispatcher } from 'undici'
import { discard, readCapped, tooLarge } from './body.js'
import { CallSignal } from './call-signal.js'
import { decodeBody } from './encoding.js'
import { HttpErrorCode } from './errors.js'

export interface ExchangeOptions {
  dispatcher: Dispatcher
  method?: 'GET' | 'HEAD'
  headers: Record<string, string>
  /** Whole-exchange deadline for `fetchCapped`; idle deadline (headers, then between body chunks) for `openStream`. */
  timeoutMs: number
  /** The call this request belongs to (one abort listener per call); else `signal` is used. */
  call?: CallSignal
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

/** Ask servers not to compress: blocks are hashed, and compressed bytes cost CPU on both ends. */
const ACCEPT_ENCODING = 'identity'

/** Longest `Retry-After` honoured by default, ms: a server asking for more is retried after this. */
export const DEFAULT_MAX_RETRY_AFTER_MS = 30_000

/** A call's cancel hook and a timer, linked into one controller; remembers which fired. */
class Deadline {
  readonly controller = new AbortController()
  timedOut = false
  private timer: NodeJS.Timeout | undefined
  private readonly off: () => void

  constructor (call: CallSignal, timeoutMs: number | undefined) {
    this.off = call.onCancel(reason => { this.controller.abort(reason) })
    if (timeoutMs !== undefined) {
      this.timer = setTimeout(() => { this.timedOut = true; this.controller.abort(new Error('timeout')) }, timeoutMs)
      this.timer.unref?.()
    }
  }

  clear (): void {
    clearTimeout(this.timer)
    this.off()
  }
}

/** Turns whatever undici threw into a typed error. */
export function mapError (err: unknown, deadline: { timedOut: boolean }, call: CallSignal, source: string, timeoutMs: number): SwarmpackError {
  if (err instanceof SwarmpackError) return err
  if (call.aborted) return call.error()
  const code = (err as { code?: string })?.code
  if (deadline.timedOut || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new SwarmpackError(HttpErrorCode.TIMEOUT, `${source} did not answer within ${timeoutMs} ms`, { cause: err, details: { source } })
  }
  return new SwarmpackError(HttpErrorCode.NETWORK, `request to ${source} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err, details: { source, code } })
}

/**
 * `Retry-After` (RFC 9110 §10.2.3) in ms from now: delay-seconds or an HTTP-date, capped at `max`.
 * Undefined when absent or unreadable.
 */
export function parseRetryAfter (value: string | string[] | undefined, max: number, now = Date.now()): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim()
  if (v === undefined || v === '') return undefined
  let ms: number
  if (/^\d+$/.test(v)) ms = Number(v) * 1000
  else {
    const at = Date.parse(v)
    if (Number.isNaN(at)) return undefined
    ms = at - now
  }
  return Math.min(Math.max(0, ms), max)
}

export function statusError (status: number, url: string, source: string, headers?: OpenResponse['headers'], maxRetryAfterMs = DEFAULT_MAX_RETRY_AFTER_MS): SwarmpackError {
  if (status === 404 || status === 410) {
    return new SwarmpackError(CoreErrorCode.NOT_FOUND, `${url} not found (${status})`, { details: { source, status } })
  }
  const retryAfterMs = status === 429 || status >= 500 ? parseRetryAfter(headers?.['retry-after'], maxRetryAfterMs) : undefined
  return new SwarmpackError(HttpErrorCode.BAD_STATUS, `${url} answered ${status}${retryAfterMs !== undefined ? ` (retry after ${retryAfterMs} ms)` : ''}`, { details: { source, status, retryAfterMs } })
}

/** The headers every request sends: the caller's, and identity encoding unless the caller set one. */
export function requestHeaders (headers: Record<string, string>): Record<string, string> {
  return 'accept-encoding' in headers ? headers : { ...headers, 'accept-encoding': ACCEPT_ENCODING }
}

/**
 * GET (or HEAD) a URL and read the body whole (decoded if the server compressed it anyway), never
 * more than `cap` bytes, all within `timeoutMs`. Non-2xx statuses become typed errors (404/410:
 * ERR_NOT_FOUND; 429/5xx carry `details.retryAfterMs` when the server sent `Retry-After`).
 */
export async function fetchCapped (url: string, cap: number, opts: ExchangeOptions & { maxRetryAfterMs?: number }): Promise<{ status: number, headers: OpenResponse['headers'], bytes: Uint8Array }> {
  const call = opts.call ?? new CallSignal(opts.signal)
  const deadline = new Deadline(call, opts.timeoutMs)
  try {
    const res = await request(url, {
      dispatcher: opts.dispatcher,
      method: opts.method ?? 'GET',
      headers: requestHeaders(opts.headers),
      signal: deadline.controller.signal,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs
    })
    if (res.statusCode < 200 || res.statusCode > 299) {
      discard(res.body, true)
      throw statusError(res.statusCode, url, opts.source, res.headers, opts.maxRetryAfterMs)
    }
    const encoded = res.headers['content-encoding'] !== undefined && res.headers['content-encoding'] !== 'identity'
    const declared = Number(res.headers['content-length'])
    if (opts.method !== 'HEAD' && !encoded && Number.isFinite(declared) && declared > cap) {
      discard(res.body)
      throw tooLarge(opts.source, cap)
    }
    if (opts.method === 'HEAD') {
      discard(res.body, true)
      return { status: res.statusCode, headers: res.headers, bytes: new Uint8Array(0) }
    }
    const body = decodeBody(res.body, res.headers['content-encoding'], opts.source)
    const bytes = await readCapped(body, cap, opts.source)
    return { status: res.statusCode, headers: res.headers, bytes }
  } catch (err) {
    throw mapError(err, deadline, call, opts.source, opts.timeoutMs)
  } finally {
    deadline.clear()
    if (opts.call === undefined) call.dispose()
  }
}
