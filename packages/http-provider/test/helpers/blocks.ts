/**
 * Test DAGs shaped like packages: a dag-cbor root listing files, each file a dag-cbor node listing
 * raw chunks. Bytes are random, so every run exercises real hashing.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { encodeCborBlock, mirrorBlockPath, rawCid, MIRROR_DESCRIPTOR, PROBE_CID, type Block } from '@swarmpack/core'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

export interface TestDag {
  root: CID
  /** Every block of the DAG, root first. */
  blocks: Block[]
  totalBytes: number
}

export function makeDag (opts: { files: number, chunksPerFile: number, chunkSize: number }): TestDag {
  const chunks: Block[] = []
  const fileNodes: Block[] = []
  for (let f = 0; f < opts.files; f++) {
    const fileChunks: CID[] = []
    for (let c = 0; c < opts.chunksPerFile; c++) {
      const bytes = new Uint8Array(randomBytes(opts.chunkSize))
      const cid = rawCid(bytes)
      chunks.push({ cid, bytes })
      fileChunks.push(cid)
    }
    fileNodes.push(encodeCborBlock({ path: `file-${f}.bin`, chunks: fileChunks }))
  }
  const root = encodeCborBlock({ name: 'test-package', version: '1.0.0', files: fileNodes.map(n => n.cid) })
  const blocks = [root, ...fileNodes, ...chunks]
  return { root: root.cid, blocks, totalBytes: blocks.reduce((n, b) => n + b.bytes.byteLength, 0) }
}

/** Writes blocks in the static mirror layout (what core's exportMirror produces). */
export async function writeMirrorDir (dir: string, blocks: Iterable<Block>): Promise<void> {
  await mkdir(join(dir, 'ipfs'), { recursive: true })
  await writeFile(join(dir, MIRROR_DESCRIPTOR), JSON.stringify({ layout: 1 }))
  await writeFile(join(dir, 'ipfs', PROBE_CID), new Uint8Array(0))
  for (const b of blocks) await writeFile(join(dir, mirrorBlockPath(b.cid)), b.bytes)
}

export async function putAll (store: Blockstore, blocks: Iterable<Block>): Promise<void> {
  for (const b of blocks) await store.put(b.cid, b.bytes)
}
