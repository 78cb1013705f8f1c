/**
 * Mirror health: each mirror keeps a small record of how it behaved lately. A mirror that fails
 * (network errors, bad status, timeouts) is put on a cool-down that doubles with every consecutive
 * failure; one that serves bad data gets a long cool-down at once. A slow mirror (latency well
 * above its peers) is ranked after the fast ones. Mirrors on cool-down are still tried, last, so
 * a set of mirrors that are all "down" keeps working and a mirror that comes back recovers as soon
 * as it answers correctly once.
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

  isSlow (): boolean {
    return this.latencyMs !== undefined && this.latencyMs > this.opts.slowMs
  }

  recordSuccess (latencyMs: number): void {
    this.successes++
    this.consecutiveFailures = 0
    this.downUntil = 0
    this.latencyMs = this.latencyMs === undefined ? latencyMs : this.latencyMs * 0.8 + latencyMs * 0.2
  }

  recordFailure (): void {
    this.failures++
    this.consecutiveFailures++
    const cooldown = Math.min(this.opts.maxCooldownMs, this.opts.baseCooldownMs * 2 ** (this.consecutiveFailures - 1))
    this.downUntil = Math.max(this.downUntil, Date.now() + cooldown)
  }

  recordBadData (): void {
    this.badData++
    this.failures++
    this.consecutiveFailures++
    this.badUntil = Math.max(this.badUntil, Date.now() + this.opts.badDataCooldownMs)
  }

  /** Records a timeout: counts as a failure and pushes the latency estimate up. */
  recordTimeout (timeoutMs: number): void {
    this.latencyMs = this.latencyMs === undefined ? timeoutMs : this.latencyMs * 0.5 + timeoutMs * 0.5
    this.recordFailure()
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
      downUntil: this.until()
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
