/**
 * pack's chunk worker (a node:worker_threads entry): finds chunk boundaries and hashes each chunk
 * with SHA-256, off the main thread, so the main thread only builds CIDs and writes to the store.
 * Messages: chunk-protocol.ts. The bytes after the last cut of a piece (< maxSize) are kept here as
 * the start of the next chunk; a piece may leave room in front of its bytes (its byteOffset) for
 * them, so they are prepended without copying the piece.
 */
import * as crypto from 'node:crypto'
import { parentPort, workerData } from 'node:worker_threads'
import { BoundaryCutter } from '../chunker/fastcdc.js'
import type { ChunkerParams } from '../chunker/fastcdc.js'
import { CID_BYTES, CID_PREFIX } from './chunk-protocol.js'
import type { ChunkReply, ChunkRequest } from './chunk-protocol.js'

const sha256: (bytes: Uint8Array) => Uint8Array = typeof crypto.hash === 'function'
  ? bytes => crypto.hash('sha256', bytes, 'buffer')
  : bytes => crypto.createHash('sha256').update(bytes).digest()

const params = workerData as ChunkerParams
const cutter = new BoundaryCutter(params)
const carry = new Uint8Array(params.maxSize)
let carried = 0

/** The carried bytes followed by `bytes`: in the room in front of them when there is enough. */
function join (bytes: Uint8Array): Uint8Array {
  if (carried === 0) return bytes
  let data: Uint8Array
  if (bytes.byteOffset >= carried) {
    data = new Uint8Array(bytes.buffer, bytes.byteOffset - carried, carried + bytes.length)
  } else {
    data = new Uint8Array(carried + bytes.length)
    data.set(bytes, carried)
  }
  data.set(carry.subarray(0, carried), 0)
  return data
}

function handle ({ bytes, final }: ChunkRequest): void {
  const data = join(bytes)
  const lengths = Uint32Array.from(cutter.lengths(data, final))
  const cids = new Uint8Array(CID_BYTES * lengths.length)
  let pos = 0
  for (let i = 0; i < lengths.length; i++) {
    cids.set(CID_PREFIX, i * CID_BYTES)
    cids.set(sha256(data.subarray(pos, pos + lengths[i])), i * CID_BYTES + CID_PREFIX.length)
    pos += lengths[i]
  }
  carried = data.length - pos
  carry.set(data.subarray(pos), 0)
  const out = data.subarray(0, pos)
  const reply: ChunkReply = { bytes: out, lengths, cids }
  parentPort?.postMessage(reply, [out.buffer as ArrayBuffer, lengths.buffer, cids.buffer])
}

parentPort?.on('message', handle)
