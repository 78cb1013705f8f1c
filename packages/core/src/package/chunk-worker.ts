/**
 * pack's chunk worker (a node:worker_threads entry): finds chunk boundaries and hashes each chunk
 * with SHA-256, off the main thread, so the main thread only builds CIDs and writes to the store.
 *
 * Protocol (see chunk-hasher.ts): `workerData` is the ChunkerParams. Each message is
 * `{ bytes, final }`, the next piece of the current file (its ArrayBuffer transferred here), with
 * `final` on the file's last piece. Each reply is `{ bytes, lengths, digests }`: the bytes holding
 * the chunks cut so far (the same memory, transferred back), their lengths in order, and their
 * digests (32 bytes each). The bytes after the last cut (< maxSize) are kept here as the start of
 * the next chunk; a piece may leave room in front of its bytes (its byteOffset) to prepend them
 * without copying the piece.
 */
import * as crypto from 'node:crypto'
import { parentPort, workerData } from 'node:worker_threads'
import { BoundaryCutter } from '../chunker/fastcdc.js'
import type { ChunkerParams } from '../chunker/fastcdc.js'

export interface ChunkRequest { bytes: Uint8Array, final: boolean }
export interface ChunkReply { bytes: Uint8Array, lengths: Uint32Array, digests: Uint8Array }

const DIGEST = 32
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
  const digests = new Uint8Array(DIGEST * lengths.length)
  let pos = 0
  for (let i = 0; i < lengths.length; i++) {
    digests.set(sha256(data.subarray(pos, pos + lengths[i])), i * DIGEST)
    pos += lengths[i]
  }
  carried = data.length - pos
  carry.set(data.subarray(pos), 0)
  const out = data.subarray(0, pos)
  const reply: ChunkReply = { bytes: out, lengths, digests }
  parentPort?.postMessage(reply, [out.buffer as ArrayBuffer, lengths.buffer, digests.buffer])
}

parentPort?.on('message', handle)
