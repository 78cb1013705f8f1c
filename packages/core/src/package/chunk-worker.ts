/**
 * pack's chunk worker (a node:worker_threads entry): finds chunk boundaries and hashes each chunk
 * with SHA-256, off the main thread, so the main thread only builds CIDs and writes to the store.
 * Messages: chunk-protocol.ts. The bytes after the last cut of a piece are carried to the next
 * piece (piece-cutter.ts), in the room the piece leaves in front of its bytes.
 */
import * as crypto from 'node:crypto'
import { parentPort, workerData } from 'node:worker_threads'
import type { ChunkerParams } from '../chunker/fastcdc.js'
import { CID_BYTES, CID_PREFIX } from './chunk-protocol.js'
import type { ChunkReply, ChunkRequest } from './chunk-protocol.js'
import { PieceCutter } from './piece-cutter.js'

const sha256: (bytes: Uint8Array) => Uint8Array = typeof crypto.hash === 'function'
  ? bytes => crypto.hash('sha256', bytes, 'buffer')
  : bytes => crypto.createHash('sha256').update(bytes).digest()

const cutter = new PieceCutter(workerData as ChunkerParams)

function handle ({ bytes, final }: ChunkRequest): void {
  const { data, lengths: cut } = cutter.cut(bytes, final)
  const lengths = Uint32Array.from(cut)
  const cids = new Uint8Array(CID_BYTES * lengths.length)
  let pos = 0
  for (let i = 0; i < lengths.length; i++) {
    cids.set(CID_PREFIX, i * CID_BYTES)
    cids.set(sha256(data.subarray(pos, pos + lengths[i])), i * CID_BYTES + CID_PREFIX.length)
    pos += lengths[i]
  }
  const reply: ChunkReply = { bytes: data, lengths, cids }
  parentPort?.postMessage(reply, [data.buffer as ArrayBuffer, lengths.buffer, cids.buffer])
}

parentPort?.on('message', handle)
