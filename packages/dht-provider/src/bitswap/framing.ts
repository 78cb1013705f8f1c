/**
 * The length prefix of a Bitswap frame (an unsigned varint before each protobuf message), read for
 * `LengthPrefixedDecoder` from @libp2p/utils.
 *
 * The decoder asks for the length after every chunk a stream delivers and treats a thrown
 * RangeError as "not all here yet". Its default reader throws a fresh RangeError each time, and
 * a chunk that ends exactly at a message boundary (the common case) ends with such a throw: the
 * error's stack capture was 2.9 % of a 1 + 20 swarm's CPU. This reader throws one shared instance.
 */
import type { Uint8ArrayList } from 'uint8arraylist'

/** Thrown, never shown: the decoder catches it and waits for more bytes. */
const PREFIX_INCOMPLETE = new RangeError('length prefix not complete yet')

/** A prefix longer than this is no length we would accept (2^56 > any message cap). */
const MAX_PREFIX_BYTES = 8

/**
 * The frame length at the start of `buf`, or the shared RangeError when its prefix has not all
 * arrived. An overlong prefix reads as Infinity, which the decoder rejects as too large.
 */
export function frameLength (buf: Uint8ArrayList): number {
  const end = Math.min(buf.byteLength, MAX_PREFIX_BYTES)
  let value = 0
  for (let i = 0; i < end; i++) {
    const b = buf.get(i)
    value += (b & 0x7f) * 2 ** (7 * i)
    if (b < 0x80) return value
  }
  if (end < MAX_PREFIX_BYTES) throw PREFIX_INCOMPLETE
  return Infinity
}
