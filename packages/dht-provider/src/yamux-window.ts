/**
 * Fewer yamux window updates. @chainsafe/libp2p-yamux 8 answers every data frame it receives with
 * a window update: a 12-byte frame that noise encrypts and the socket writes on its own, and that
 * the sender decrypts and parses. Bitswap sends many small messages (a 1 + 20 swarm, ~3 per block
 * per peer), and those updates were ~5 % of the swarm's CPU (A/B in docs/benchmarks/swarm.md).
 * The yamux spec leaves the timing to the receiver; like go-yamux and rust-yamux, streams of
 * this muxer send an update once half of the receive window is used up.
 *
 * The muxer class offers no hook, so the wrapper replaces `sendWindowUpdate` on each stream the
 * muxers of this node create (not on the class: other libp2p nodes in the process keep theirs).
 * It relies on yamux 8's stream fields; `test/yamux-window.test.ts` checks the effect, and shows
 * when an upstream fix makes the wrapper unnecessary.
 */
import type { StreamMuxerFactory } from '@libp2p/interface'

/** The yamux 8 stream fields the threshold reads (TypeScript-private there). */
interface YamuxStreamFields {
  state: number
  recvWindow: number
  recvWindowCapacity: number
  sendWindowUpdate: () => void
}

/** StreamState.SYNSent and StreamState.Established in yamux 8: the states in which an update carries no flags. */
const SYN_SENT = 1
const ESTABLISHED = 3

function lazyUpdates (stream: YamuxStreamFields): void {
  if (typeof stream.sendWindowUpdate !== 'function' || typeof stream.recvWindow !== 'number') return
  const send = stream.sendWindowUpdate.bind(stream)
  stream.sendWindowUpdate = () => {
    // an update that must carry SYN or ACK, or a paused stream (yamux's own bookkeeping), goes as before
    if ((stream.state === SYN_SENT || stream.state === ESTABLISHED) && stream.recvWindow - stream.recvWindowCapacity < stream.recvWindow / 2) return
    send()
  }
}

/**
 * Wraps a yamux muxer factory (`yamux(init)`) so that its streams send a window update once half
 * the receive window is used, not after every frame. Another muxer, or a yamux version without
 * the fields, is left as it is.
 */
export function withHalfWindowUpdates<C> (factory: (components: C) => StreamMuxerFactory): (components: C) => StreamMuxerFactory {
  return (components: C) => {
    const inner = factory(components)
    const create = inner.createStreamMuxer.bind(inner)
    inner.createStreamMuxer = (maConn) => {
      const muxer = create(maConn)
      const m = muxer as unknown as { _newStream?: (...args: unknown[]) => YamuxStreamFields }
      if (typeof m._newStream === 'function') {
        const newStream = m._newStream.bind(muxer)
        m._newStream = (...args: unknown[]) => {
          const stream = newStream(...args)
          lazyUpdates(stream)
          return stream
        }
      }
      return muxer
    }
    return inner
  }
}
