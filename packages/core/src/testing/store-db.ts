/**
 * Test-only (`@swarmpack/core/testing`, not part of the public API): behind-the-store's-back access
 * to a closed FsBlockstore's index and segment files, for tests that damage it (flipped bytes, cut
 * records, lost index entries) the way a disk fault or an outside edit would.
 */
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { openStoreDb, type IndexValue, type StoreDb } from '../store/db.js'
import { SEGMENTS_DIR, SegmentLog, recordHeader, recordLength, segmentName } from '../store/segments.js'

async function withDb<T> (dir: string, fn: (db: StoreDb, log: SegmentLog) => Promise<T> | T): Promise<T> {
  const db = await openStoreDb(dir)
  const log = await SegmentLog.open(dir, { durable: false })
  try {
    const out = await fn(db, log)
    await db.env.flushed
    return out
  } finally {
    await log.close()
    await db.env.close()
  }
}

function entryOf (db: StoreDb, dir: string, key: string): IndexValue {
  const value = db.index.get(key)
  if (value === undefined) throw new Error(`no block ${key} in ${dir}`)
  return value
}

/** Writes `bytes` at `at` of the segment file `seg`. */
async function writeAt (dir: string, seg: number, at: number, bytes: Uint8Array): Promise<void> {
  const fh = await open(join(dir, SEGMENTS_DIR, segmentName(seg)), 'r+')
  try { await fh.write(bytes, 0, bytes.byteLength, at) } finally { await fh.close() }
}

/** Every indexed block's bytes as its record holds them, by store key (unreadable records left out). */
export async function rawBlocks (dir: string): Promise<Map<string, Uint8Array>> {
  return await withDb(dir, (db, log) => {
    const out = new Map<string, Uint8Array>()
    for (const { key, value: [size, , seg, off] } of db.index.getRange()) {
      const bytes = log.read({ seg, off }, key, size)
      if (typeof bytes !== 'string') out.set(key, new Uint8Array(bytes))
    }
    return out
  })
}

export async function rawIndex (dir: string): Promise<Map<string, IndexValue>> {
  return await withDb(dir, db => new Map([...db.index.getRange()].map(({ key, value }) => [key, value])))
}

/**
 * Rewrites a block's record in place with other bytes, of the same or a smaller size (the index
 * entry stays as it was, so a smaller record no longer matches it).
 */
export async function writeRawBlock (dir: string, key: string, bytes: Uint8Array): Promise<void> {
  await withDb(dir, async db => {
    const [size, , seg, off] = entryOf(db, dir, key)
    if (bytes.byteLength > size) throw new Error('writeRawBlock: the new bytes must fit the old record')
    await writeAt(dir, seg, off, Buffer.concat([recordHeader(key, bytes.byteLength), bytes]))
  })
}

/** Wipes a block's record (its header zeroed): the index entry stays, pointing at nothing valid. */
export async function removeRawBlock (dir: string, key: string): Promise<void> {
  await withDb(dir, async db => {
    const [, , seg, off] = entryOf(db, dir, key)
    await writeAt(dir, seg, off, new Uint8Array(recordLength(key, 0)))
  })
}

export async function removeRawIndexEntry (dir: string, key: string): Promise<void> {
  await withDb(dir, async db => { await db.index.remove(key) })
}

/** Flips one byte of a stored block (the index entry stays as it was): a disk fault the hash catches. The store must be closed. */
export async function corruptRawBlock (dir: string, key: string, at = 0): Promise<void> {
  await withDb(dir, async (db, log) => {
    const [size, , seg, off] = entryOf(db, dir, key)
    const bytes = log.read({ seg, off }, key, size)
    if (typeof bytes === 'string') throw new Error(`block ${key} in ${dir} is unreadable: ${bytes}`)
    const flipped = new Uint8Array([bytes[at] ^ 0xff])
    await writeAt(dir, seg, off + recordLength(key, 0) + at, flipped)
  })
}
