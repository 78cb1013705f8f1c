/**
 * Per-source timing, to decide when a block has waited long enough at one source to be asked of
 * another. Block latencies have heavy tails (Bitswap sends blocks in batches; a busy host pauses),
 * so the hedge deadline comes from a high quantile of the recent latencies, not from a mean: only
 * blocks later than nearly all their peers are hedged. The delivery rate (blocks per second,
 * smoothed) tells how fast a queue in front of the source drains.
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
const WINDOW = 256
/** Quantile of recent latencies a block must exceed (times SLACK) to be hedged. */
const QUANTILE = 0.99
const SLACK = 1.5
/** Recompute the quantile after this many new samples (sorting 256 numbers each time is wasteful). */
const REFRESH_EVERY = 16

export class LatencyTracker {
  private readonly ring = new Float64Array(WINDOW)
  private samples = 0
  private mean = 0
  private deadline: number
  /** Smoothed interval between deliveries (ms), for the delivery rate. */
  private interval = 0
  private lastAt = 0

  constructor (private readonly opts: LatencyOptions) {
    this.deadline = opts.initialMs
  }

  record (ms: number, now = Date.now()): void {
    this.ring[this.samples % WINDOW] = ms
    this.samples++
    this.mean = this.samples === 1 ? ms : 0.875 * this.mean + 0.125 * ms
    if (this.lastAt > 0) {
      const gap = now - this.lastAt
      this.interval = this.interval === 0 ? gap : 0.95 * this.interval + 0.05 * gap
    }
    this.lastAt = now
    if (this.samples >= WARMUP_SAMPLES && (this.samples === WARMUP_SAMPLES || this.samples % REFRESH_EVERY === 0)) {
      const n = Math.min(this.samples, WINDOW)
      const sorted = Array.from(this.ring.subarray(0, n)).sort((a, b) => a - b)
      const q = sorted[Math.min(n - 1, Math.floor(n * QUANTILE))]
      this.deadline = Math.min(this.opts.maxMs, Math.max(this.opts.minMs ?? 50, q * SLACK))
    }
  }

  get count (): number {
    return this.samples
  }

  /** Typical latency (ms), or undefined before the first sample. */
  get estimate (): number | undefined {
    return this.samples === 0 ? undefined : this.mean
  }

  /** Blocks per ms this source has been delivering lately (undefined until it delivered twice). */
  get rate (): number | undefined {
    return this.interval > 0 ? 1 / this.interval : undefined
  }

  /** How long a block may be outstanding at this source before another is asked too. */
  hedgeDeadline (): number {
    return this.deadline
  }
}
