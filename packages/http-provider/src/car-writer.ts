/**
 * Writing CARv1 streams: the header and block sections, encoded on the fly so a whole DAG never
 * sits in memory. The walker yields a DAG's blocks depth-first (the order gateways use for
 * `order=dfs`), each block once.
 */
import { blockLinks, encodeCborBlock, IDENTITY_CODE, RAW_CODEC } from '@swarmpack/core'
import type { Blockstore } from 'interface-blockstore'
import { varint } from 'multiformats'
import type { CID } from 'multiformats/cid'

/** A cheap map key for a CID: its bytes as a latin1 string. */
function cidKey (cid: CID): string {
  const b = cid.bytes
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')
}

export function carHeader (roots: CID[]): Uint8Array {
  const body = encodeCborBlock({ version: 1, roots }).bytes
  const out = new Uint8Array(varint.encodingLength(body.byteLength) + body.byteLength)
  varint.encodeTo(body.byteLength, out, 0)
  out.set(body, varint.encodingLength(body.byteLength))
  return out
}

/** The bytes that precede a block in a CAR section: the section length and the CID. */
export function carSectionPrefix (cid: CID, blockLength: number): Uint8Array {
  const cidBytes = cid.bytes
  const length = cidBytes.byteLength + blockLength
  const lenBytes = varint.encodingLength(length)
  const out = new Uint8Array(lenBytes + cidBytes.byteLength)
  varint.encodeTo(length, out, 0)
  out.set(cidBytes, lenBytes)
  return out
}

/** A store that can also return a block whole (core's FsBlockstore), skipping the chunk generator. */
interface WholeBlockReader {
  getBytes: (cid: CID, options?: { signal?: AbortSignal }) => Promise<Uint8Array>
}

/** Reads one block from an interface-blockstore v7 store (which yields the bytes in chunks). */
export async function readBlock (store: Blockstore, cid: CID, signal?: AbortSignal): Promise<Uint8Array> {
  if (cid.multihash.code === IDENTITY_CODE) return cid.multihash.digest
  const whole = (store as Partial<WholeBlockReader>).getBytes
  if (typeof whole === 'function') return await whole.call(store, cid, { signal })
  const chunks: Uint8Array[] = []
  let total = 0
  for await (const chunk of store.get(cid, { signal })) { chunks.push(chunk); total += chunk.byteLength }
  if (chunks.length === 1) return chunks[0]
  const out = new Uint8Array(total)
  let offset = 0
  for (const c of chunks) { out.set(c, offset); offset += c.byteLength }
  return out
}

/**
 * Yields the blocks of the DAG under `root`, depth-first, each once. With `scope: 'block'` only
 * the root. Runs of raw leaves on top of the stack are read `readAhead` at a time (they have no
 * links, so the order stays exactly depth-first). Memory: the set of CIDs already sent, the stack
 * of links still to visit, and at most `readAhead` blocks.
 */
export async function * walkDag (store: Blockstore, root: CID, scope: 'block' | 'all', signal?: AbortSignal, readAhead = 8): AsyncGenerator<{ cid: CID, bytes: Uint8Array }> {
  const seen = new Set<string>()
  const stack: CID[] = [root]
  while (stack.length > 0) {
    const cid = stack.pop() as CID
    const key = cidKey(cid)
    if (seen.has(key)) continue
    seen.add(key)
    if (cid.code === RAW_CODEC) {
      // Gather the run of raw leaves that follows and read them concurrently.
      const run: CID[] = [cid]
      while (run.length < readAhead && stack.length > 0 && stack[stack.length - 1].code === RAW_CODEC) {
        const next = stack.pop() as CID
        const k = cidKey(next)
        if (seen.has(k)) continue
        seen.add(k)
        run.push(next)
      }
      const blocks = await Promise.all(run.map(async c => await readBlock(store, c, signal)))
      for (let i = 0; i < run.length; i++) yield { cid: run[i], bytes: blocks[i] }
      continue
    }
    const bytes = await readBlock(store, cid, signal)
    yield { cid, bytes }
    if (scope === 'all') {
      const links = blockLinks(cid, bytes)
      for (let i = links.length - 1; i >= 0; i--) if (!seen.has(cidKey(links[i]))) stack.push(links[i])
    }
  }
}
