/**
 * Mirror health: each mirror keeps a small record of how it behaved lately. A mirror that fails
 * (network errors, bad status, timeouts, too slow) rests for a cool-down that doubles with every
 * consecutive failure, or for as long as its `Retry-After` said (capped); nothing is sent to a
 * resting mirror. When it wakes, one request (the probe) checks whether it is back while the
 * others wait for its answer, so a recovering mirror is not hit by every block at once. Requests
 * that were already in flight when it failed report the same outage and do not lengthen the
 * cool-down. A mirror that serves bad data is ranked last for a long time (it is not resting: it
 * is still asked when nobody else can answer). A slow mirror is ranked after the fast ones.
 */

export interface HealthOptions {
  /** First cool-down after a failure, in ms (doubles with each consecutive failure). */
  baseCooldownMs?: number
  /** Longest cool-down, in ms. */
  maxCooldownMs?: number
  /** Cool-down after a mirror served bytes that do not match their CID, in ms. */
  badDataCooldownMs?: number
  /** A mirror whose average latency exceeds this (ms) is ranked after faster mirrors. */
  slowMs?: number
}

export interface MirrorHealthSnapshot {
  url: string
  healthy: boolean
  consecutiveFailures: number
  failures: number
  successes: number
  badData: number
  /** Exponentially weighted average time to first byte, ms (undefined before the first success). */
  latencyMs: number | undefined
  /** Epoch ms until which the mirror is ranked last. */
  downUntil: number
  /** Epoch ms of the first failure of the current run of failures (undefined when it last answered well). */
  failingSince: number | undefined
}

export class MirrorHealth {
  readonly url: string
  readonly preference: number
  consecutiveFailures = 0
  failures = 0
  successes = 0
  badData = 0
  latencyMs: number | undefined
  downUntil = 0
  /** Bad data is not forgiven by the next good answer: its cool-down runs its course. */
  badUntil = 0
  /** Whether the mirror answers CAR requests (learned from its first answer). */
  supportsCar: boolean | undefined
  /** Start of the current run of failures; the retry budget is measured from here. */
  failingSince: number | undefined
  /** When the last failure was recorded (requests started before it do not escalate the cool-down). */
  private lastFailureAt = 0
  /** The request checking whether a mirror that failed is back; others wait for it. */
  probe: Promise<void> | undefined
  private readonly opts: Required<HealthOptions>

  constructor (url: string, preference: number, opts: Required<HealthOptions>) {
    this.url = url
    this.preference = preference
    this.opts = opts
  }

  isDown (now = Date.now()): boolean {
    return this.until() > now
  }

  /** Epoch ms until which the mirror ranks last. */
  until (): number {
    return Math.max(this.downUntil, this.badUntil)
  }

  /** Resting after failures or a Retry-After: no request goes to it before `downUntil`. */
  isResting (now = Date.now()): boolean {
    return this.downUntil > now
  }

  isSlow (): boolean {
    return this.latencyMs !== undefined && this.latencyMs > this.opts.slowMs
  }

  recordSuccess (latencyMs: number): void {
    this.successes++
    this.consecutiveFailures = 0
    this.downUntil = 0
    this.failingSince = undefined
    this.latencyMs = this.latencyMs === undefined ? latencyMs : this.latencyMs * 0.8 + latencyMs * 0.2
  }

  /**
   * Records an answer that is not a success (a 404): the server is up, so a run of failures that
   * ended before the request started is over. Not counted as a success (latency, successes).
   */
  recordAnswer (startedAt = Date.now()): void {
    if (this.consecutiveFailures === 0 || startedAt < this.lastFailureAt) return
    this.consecutiveFailures = 0
    this.downUntil = 0
    this.failingSince = undefined
  }

  /**
   * Records a failure of a request started at `startedAt`. `retryAfterMs` (already capped) replaces
   * the doubling cool-down: the server knows when it expects to be back.
   */
  recordFailure (startedAt = Date.now(), retryAfterMs?: number): void {
    const now = Date.now()
    this.failures++
    this.failingSince ??= now
    if (this.consecutiveFailures === 0 || startedAt >= this.lastFailureAt) this.consecutiveFailures++
    this.lastFailureAt = now
    const cooldown = retryAfterMs ?? Math.min(this.opts.maxCooldownMs, this.opts.baseCooldownMs * 2 ** (this.consecutiveFailures - 1))
    this.downUntil = Math.max(this.downUntil, now + cooldown)
  }

  recordBadData (): void {
    this.badData++
    this.failures++
    this.consecutiveFailures++
    this.badUntil = Math.max(this.badUntil, Date.now() + this.opts.badDataCooldownMs)
  }

  /** Records a timeout: counts as a failure and pushes the latency estimate up. */
  recordTimeout (timeoutMs: number, startedAt = Date.now()): void {
    this.latencyMs = this.latencyMs === undefined ? timeoutMs : this.latencyMs * 0.5 + timeoutMs * 0.5
    this.recordFailure(startedAt)
  }

  snapshot (): MirrorHealthSnapshot {
    return {
      url: this.url,
      healthy: !this.isDown(),
      consecutiveFailures: this.consecutiveFailures,
      failures: this.failures,
      successes: this.successes,
      badData: this.badData,
      latencyMs: this.latencyMs,
      downUntil: this.until(),
      failingSince: this.failingSince
    }
  }
}

export const DEFAULT_HEALTH: Required<HealthOptions> = {
  baseCooldownMs: 1000,
  maxCooldownMs: 60_000,
  badDataCooldownMs: 5 * 60_000,
  slowMs: 2000
}

/**
 * Orders mirrors for one request: healthy before down, fast before slow, then by the order of
 * preference the user gave. Down mirrors are ordered by when they come back.
 */
export function rankMirrors (mirrors: readonly MirrorHealth[], now = Date.now()): MirrorHealth[] {
  return [...mirrors].sort((a, b) => {
    const ad = a.isDown(now)
    const bd = b.isDown(now)
    if (ad !== bd) return ad ? 1 : -1
    if (ad && bd && a.until() !== b.until()) return a.until() - b.until()
    const as = a.isSlow()
    const bs = b.isSlow()
    if (as !== bs) return as ? 1 : -1
    return a.preference - b.preference
  })
}
