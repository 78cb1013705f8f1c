/**
 * The index snapshot: on a clean `close()` the store writes its index (key, size, recency) in LRU
 * order to one file, and the next `open` loads it instead of stat-ing every block file. `open`
 * deletes the snapshot before using the store, so after a crash (or any session that did not
 * close) there is none and the store falls back to the full scan, which is always right. Any
 * doubt about the file (version, shape, count) also means a full scan.
 *
 *   swarmpack-store-index 1 <count>
 *   <key> <size> <mtime ms>           one line per block, least recently used first
 */
import { readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import { MAX_BLOCK_SIZE } from '../block.js'
import { syncDir, writeFileAtomic } from './atomic.js'
import { errnoOf } from './errors.js'
import { isBlockKey } from './keys.js'

const log = logger('swarmpack:store')

export const SNAPSHOT_FILE = 'index.snapshot'
const MAGIC = 'swarmpack-store-index 1'
const LINES_PER_CHUNK = 4096

export interface SnapshotEntry {
  key: string
  size: number
  mtime: number
}

export async function writeSnapshot (dir: string, entries: SnapshotEntry[], fsync: boolean): Promise<void> {
  const encoder = new TextEncoder()
  function * chunks (): Generator<Uint8Array> {
    yield encoder.encode(`${MAGIC} ${entries.length}\n`)
    for (let i = 0; i < entries.length; i += LINES_PER_CHUNK) {
      yield encoder.encode(entries.slice(i, i + LINES_PER_CHUNK).map(e => `${e.key} ${e.size} ${Math.round(e.mtime)}\n`).join(''))
    }
  }
  await writeFileAtomic(join(dir, SNAPSHOT_FILE), chunks(), { fsync })
}

/**
 * Reads and deletes the snapshot. Returns its entries, or undefined when there is none or it
 * can't be trusted (then the caller scans).
 */
export async function takeSnapshot (dir: string): Promise<SnapshotEntry[] | undefined> {
  const path = join(dir, SNAPSHOT_FILE)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') log('cannot read %s: %s', path, (err as Error).message)
    return undefined
  }
  const entries = parse(text)
  // gone before the store is used: a crash from here on leaves no snapshot, so the next open scans
  await unlink(path).catch(() => {})
  await syncDir(dir)
  if (entries === undefined) log('ignoring an invalid index snapshot; scanning')
  return entries
}

/**
 * Walks the text line by line with indexOf instead of split('\n') and split(' '): the split
 * arrays and line strings (~250 bytes a block) lived through the whole parse, were promoted to the
 * old generation and stayed as garbage until a major GC, a dozen MiB for 50k blocks that an unpack
 * right after open would add to its peak.
 */
function parse (text: string): SnapshotEntry[] | undefined {
  let nl = text.indexOf('\n')
  if (nl < 0 || !text.startsWith(MAGIC + ' ')) return undefined
  const expected = Number(text.slice(MAGIC.length + 1, nl))
  if (!Number.isSafeInteger(expected) || expected < 0) return undefined
  const out: SnapshotEntry[] = []
  for (let start = nl + 1; start < text.length; start = nl + 1) {
    nl = text.indexOf('\n', start)
    if (nl < 0) nl = text.length
    if (nl === start) continue
    const s1 = text.indexOf(' ', start)
    const s2 = s1 < 0 || s1 > nl ? -1 : text.indexOf(' ', s1 + 1)
    if (s2 < 0 || s2 > nl || text.lastIndexOf(' ', nl - 1) !== s2) return undefined
    const key = text.slice(start, s1)
    const size = Number(text.slice(s1 + 1, s2))
    const mtime = Number(text.slice(s2 + 1, nl))
    if (s2 === s1 + 1 || nl === s2 + 1 || !isBlockKey(key) || !Number.isSafeInteger(size) || size < 0 || size > MAX_BLOCK_SIZE || !Number.isFinite(mtime)) return undefined
    out.push({ key, size, mtime })
  }
  return expected === out.length ? out : undefined
}
