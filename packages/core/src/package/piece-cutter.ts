/**
 * Content-defined cuts over a file read in pieces, without copying the pieces: the bytes after the
 * last cut of a piece (fewer than maxSize) are kept and put in front of the next piece, in the
 * room its reader left there (its byteOffset), so a chunk is always one view into one piece's
 * buffer. Used by pack's chunk worker and by pack on the calling thread. No imports but the
 * chunker: the worker loads only this, the protocol and the chunker.
 */
import { BoundaryCutter } from '../chunker/fastcdc.js'
import type { ChunkerParams } from '../chunker/fastcdc.js'

export class PieceCutter {
  readonly #cutter: BoundaryCutter
  readonly #carry: Uint8Array
  #carried = 0

  constructor (params: ChunkerParams) {
    this.#cutter = new BoundaryCutter(params)
    this.#carry = new Uint8Array(params.maxSize)
  }

  /** Bytes a piece should leave free in front of it (its reader's headroom). */
  get headroom (): number { return this.#carry.length }

  /**
   * Cuts the carried bytes followed by `bytes` (the next piece of the file; `final` on its last).
   * Returns the bytes of the chunks cut, in one view (in `bytes`' buffer when it left room in front
   * for the carried bytes, else a copy), and their lengths; the rest is carried to the next piece.
   */
  cut (bytes: Uint8Array, final: boolean): { data: Uint8Array, lengths: number[] } {
    const data = this.#join(bytes)
    const lengths = this.#cutter.lengths(data, final)
    let pos = 0
    for (const n of lengths) pos += n
    this.#carried = data.length - pos
    this.#carry.set(data.subarray(pos), 0)
    return { data: data.subarray(0, pos), lengths }
  }

  /** The carried bytes followed by `bytes`: in the room in front of them when there is enough. */
  #join (bytes: Uint8Array): Uint8Array {
    const carried = this.#carried
    if (carried === 0) return bytes
    let data: Uint8Array
    if (bytes.byteOffset >= carried) {
      data = new Uint8Array(bytes.buffer, bytes.byteOffset - carried, carried + bytes.length)
    } else {
      data = new Uint8Array(carried + bytes.length)
      data.set(bytes, carried)
    }
    data.set(this.#carry.subarray(0, carried), 0)
    return data
  }
}
