/**
 * Test-only (`@swarmpack/core/testing`, not part of the public API): behind-the-store's-back access to a closed FsBlockstore's database, for tests that damage it
 * (flipped bytes, truncated blocks, lost index entries) the way a disk fault or an outside edit would.
 */
import { openStoreDb, type IndexValue } from '../store/db.js'

async function withDb<T> (dir: string, fn: (db: Awaited<ReturnType<typeof openStoreDb>>) => Promise<T> | T): Promise<T> {
  const db = await openStoreDb(dir)
  try {
    const out = await fn(db)
    await db.env.flushed
    return out
  } finally {
    await db.env.close()
  }
}

/** Every block in the blocks table, by store key. */
export async function rawBlocks (dir: string): Promise<Map<string, Uint8Array>> {
  return await withDb(dir, db => new Map([...db.blocks.getRange()].map(({ key, value }) => [key, new Uint8Array(value)])))
}

export async function rawIndex (dir: string): Promise<Map<string, IndexValue>> {
  return await withDb(dir, db => new Map([...db.index.getRange()].map(({ key, value }) => [key, value])))
}

/** Overwrites a block's bytes (the index entry stays as it was). */
export async function writeRawBlock (dir: string, key: string, bytes: Uint8Array): Promise<void> {
  await withDb(dir, async db => { await db.blocks.put(key, bytes) })
}

export async function removeRawBlock (dir: string, key: string): Promise<void> {
  await withDb(dir, async db => { await db.blocks.remove(key) })
}

export async function removeRawIndexEntry (dir: string, key: string): Promise<void> {
  await withDb(dir, async db => { await db.index.remove(key) })
}

/** Flips one byte of a stored block (the index entry stays as it was): a disk fault the hash catches. The store must be closed. */
export async function corruptRawBlock (dir: string, key: string, at = 0): Promise<void> {
  await withDb(dir, async db => {
    const stored = db.blocks.get(key)
    if (stored === undefined) throw new Error(`no block ${key} in ${dir}`)
    const bytes = new Uint8Array(stored)
    bytes[at] ^= 0xff
    await db.blocks.put(key, bytes)
  })
}
