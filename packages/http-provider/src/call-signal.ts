/**
 * One abort listener per call. A call (`get`, `getMany`, `getDag`) may have dozens of requests and
 * waits in flight; if each listened on the caller's AbortSignal itself, Node would warn
 * (`MaxListenersExceededWarning`) past ten. Instead the call listens once and the requests and
 * waits register a cancel function here. The call can also cancel them itself (a consumer that
 * stops iterating `getDag` early).
 */
import { CoreErrorCode, SwarmpackError } from '@swarmpack/core'

export class CallSignal {
  private readonly cancels = new Set<(reason: unknown) => void>()
  private cancelled: { reason: unknown } | undefined
  private readonly onAbort = (): void => { this.cancel(this.signal?.reason) }

  constructor (readonly signal?: AbortSignal) {
    if (signal?.aborted === true) this.cancelled = { reason: signal.reason }
    else signal?.addEventListener('abort', this.onAbort, { once: true })
  }

  get aborted (): boolean {
    return this.cancelled !== undefined
  }

  get reason (): unknown {
    return this.cancelled?.reason
  }

  error (): SwarmpackError {
    return new SwarmpackError(CoreErrorCode.ABORTED, 'the operation was aborted', { cause: this.reason })
  }

  throwIfAborted (): void {
    if (this.aborted) throw this.error()
  }

  /** Runs `cancel` when the call is aborted (at once if it already is). Returns the unregister function. */
  onCancel (cancel: (reason: unknown) => void): () => void {
    if (this.cancelled !== undefined) { cancel(this.cancelled.reason); return () => {} }
    this.cancels.add(cancel)
    return () => { this.cancels.delete(cancel) }
  }

  /** Cancels everything registered; later registrations are cancelled at once. */
  cancel (reason: unknown = new Error('the call ended')): void {
    if (this.cancelled !== undefined) return
    this.cancelled = { reason }
    this.signal?.removeEventListener('abort', this.onAbort)
    for (const c of [...this.cancels]) c(reason)
    this.cancels.clear()
  }

  /** Resolves after `ms`, or rejects with ERR_ABORTED when the call is aborted first. */
  async sleep (ms: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const off = this.onCancel(() => { clearTimeout(t); reject(this.error()) })
      const t = setTimeout(() => { off(); resolve() }, Math.max(0, ms))
    })
  }

  /** Waits for `p` (whose rejection is ignored), or rejects with ERR_ABORTED when the call is aborted first. */
  async wait (p: Promise<unknown>): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const off = this.onCancel(() => { reject(this.error()) })
      p.then(() => { off(); resolve() }, () => { off(); resolve() })
    })
  }

  /** Removes the listener from the caller's signal. */
  dispose (): void {
    this.signal?.removeEventListener('abort', this.onAbort)
    this.cancels.clear()
  }
}
