/**
 * A byte-rate limit for background I/O (scrub): callers report what they read and wait as long
 * as it takes to stay under `bytesPerSec` on average, so a scrub of a large store never starves
 * the host's own disk use. Waits are timers that an AbortSignal cuts short (ref'd: someone awaits
 * them; the schedules that start a scrub are the unref'd part).
 */
import { throwIfAborted } from '@swarmpack/core'

export class Throttle {
  private readonly started = Date.now()
  private bytes = 0
  /** Milliseconds spent waiting, for the report. */
  waitedMs = 0

  constructor (readonly bytesPerSec: number) {}

  /** Accounts `n` bytes just read; resolves once the average rate is back under the limit. */
  async take (n: number, signal?: AbortSignal): Promise<void> {
    this.bytes += n
    const due = this.started + (this.bytes / this.bytesPerSec) * 1000
    const wait = due - Date.now()
    // sub-5 ms waits are not worth a timer: they even out over the next reads
    if (wait < 5) return
    this.waitedMs += wait
    await sleep(wait, signal)
  }
}

/** An abortable sleep. */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal)
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer)
      try { throwIfAborted(signal) } catch (err) { reject(err) }
    }
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
