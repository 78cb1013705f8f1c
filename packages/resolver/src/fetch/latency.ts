/**
 * Per-source block latency, to decide when a block has been outstanding long enough to hedge:
 * an exponentially weighted mean and mean deviation (as TCP's RTO estimator), so the deadline
 * follows a source that slows down without being thrown by one slow block.
 */
export interface LatencyOptions {
  /** Deadline used until enough samples arrived (ms). */
  initialMs: number
  /** Never hedge sooner than this (ms). */
  minMs?: number
  /** Never wait longer than this (ms). */
  maxMs: number
}

const WARMUP_SAMPLES = 8

export class LatencyTracker {
  private mean = 0
  private dev = 0
  private samples = 0

  constructor (private readonly opts: LatencyOptions) {}

  record (ms: number): void {
    if (this.samples === 0) {
      this.mean = ms
      this.dev = ms / 2
    } else {
      this.dev = 0.75 * this.dev + 0.25 * Math.abs(ms - this.mean)
      this.mean = 0.875 * this.mean + 0.125 * ms
    }
    this.samples++
  }

  get count (): number {
    return this.samples
  }

  /** Typical latency (ms), or undefined before the first sample. */
  get estimate (): number | undefined {
    return this.samples === 0 ? undefined : this.mean
  }

  /** How long a block may be outstanding at this source before another is asked too. */
  hedgeDeadline (): number {
    const min = this.opts.minMs ?? 50
    if (this.samples < WARMUP_SAMPLES) return this.opts.initialMs
    return Math.min(this.opts.maxMs, Math.max(min, this.mean + 4 * this.dev))
  }
}
