/**
 * Waiting for a libp2p 3 stream to drain after `send()` returned false. `stream.onDrain()` in
 * @libp2p/utils 7.4.1 keeps the promise of the stream's first drain and returns it, already
 * resolved, on every later call: after one drain it never waits again, and a writer using it
 * queues everything in the stream's buffer (61.8 of 64 MiB in a loopback check). The `drain`
 * event is dispatched every time, so we wait for that, or for the stream's close, or the signal.
 */
import type { Stream } from '@libp2p/interface'

export async function drained (stream: Stream, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
    }
    const onDrain = (): void => { cleanup(); resolve() }
    const onClose = (evt: Event): void => { cleanup(); reject((evt as Event & { error?: Error }).error ?? new Error('stream closed while waiting for it to drain')) }
    const onAbort = (): void => { cleanup(); reject(signal?.reason) }
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort)
  })
}
