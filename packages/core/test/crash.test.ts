import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { open, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import { verifyBlock } from '../src/block.js'
import { isSwarmpackError } from '../src/errors.js'
import { FsBlockstore, StoreErrorCode } from '../src/store/index.js'
import { loadDurableEnds, openStoreDb } from '../src/store/db.js'
import { SEGMENTS_DIR, recordLength, segmentName } from '../src/store/segments.js'
import { tempDir } from './fixtures/blocks.js'

const writer = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url))
const batchWriter = fileURLToPath(new URL('./fixtures/batch-writer.ts', import.meta.url))

/** Runs batch-writer.ts until it has stored `count` blocks, SIGKILLs it and returns their CIDs. */
async function putBatchAndKill (dir: string, count: number): Promise<string[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=swarmpack-src', batchWriter, dir, String(count)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<void>(resolve => child.once('exit', () => { resolve() }))
  const stored: string[] = []
  let out = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`batch-writer stored ${stored.length} of ${count} blocks in 60 s`)) }, 60_000)
    child.once('error', reject)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`batch-writer exited early with ${code}`)) })
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const lines = out.split('\n')
      out = lines.pop() ?? ''
      for (const line of lines) {
        if (line.startsWith('ok ')) stored.push(line.slice(3))
        if (line === 'done') { clearTimeout(timer); resolve() }
      }
    })
  })
  child.kill('SIGKILL')
  await exited
  return stored
}

/** The index's entries past their segment's recorded durable end: store key -> [size, seg, off]. */
async function pastDurableEnd (dir: string): Promise<Map<string, [number, number, number]>> {
  const sizes = new Map<number, number>()
  for (const name of await readdir(join(dir, SEGMENTS_DIR))) sizes.set(Number(name.slice(0, 8)), (await stat(join(dir, SEGMENTS_DIR, name))).size)
  const db = await openStoreDb(dir)
  try {
    const ends = loadDurableEnds(db, sizes)
    const out = new Map<string, [number, number, number]>()
    for (const { key, value: [size, , seg, off] } of db.index.getRange()) {
      if (off + recordLength(key, size) > (ends.get(seg) ?? 0)) out.set(key, [size, seg, off])
    }
    return out
  } finally {
    await db.env.close()
  }
}

interface Killed { confirmed: string[], unconfirmed: string[], lockedWhileAlive: boolean }

/**
 * Starts the writer, lets it confirm `atLeast` puts, checks that a second opener is refused, then
 * SIGKILLs it after a random moment: with 16 puts in flight it is always in the middle of a batch
 * (`unconfirmed` proves it).
 */
async function writeAndKill (dir: string, atLeast: number, mode: 'sync' | 'nosync'): Promise<Killed> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=swarmpack-src', writer, dir, mode], { stdio: ['ignore', 'pipe', 'inherit'] })
  const queued = new Set<string>()
  const confirmed: string[] = []
  let buffer = ''
  const exited = new Promise<void>(resolve => child.once('exit', () => { resolve() }))
  const read = (chunk: Buffer): void => {
    buffer += chunk.toString()
    const lines = buffer.split('\n')
    buffer = lines.pop() ?? ''
    for (const line of lines) {
      const [kind, cid] = line.split(' ')
      if (kind === 'q') queued.add(cid)
      else { queued.delete(cid); confirmed.push(cid) }
    }
  }
  child.stdout.on('data', read)
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => { reject(new Error(`writer exited early with ${code}`)) })
    const check = (): void => { if (confirmed.length >= atLeast) { child.stdout.off('data', check); resolve() } }
    child.stdout.on('data', check)
  })
  // a live writer holds the lock
  const lockedWhileAlive = await FsBlockstore.open(dir).then(async s => { await s.close(); return false }, (err: unknown) => isSwarmpackError(err, StoreErrorCode.STORE_LOCKED))
  await new Promise(resolve => setTimeout(resolve, Math.random() * 200))
  // kill while puts are in flight as far as this side has read: a batch resolves all its puts in
  // one turn, so the output read so far can end just after a batch's confirmations
  await new Promise<void>((resolve, reject) => {
    if (queued.size > 0) { resolve(); return }
    const timer = setTimeout(() => { reject(new Error('the writer queued no put for 30 s')) }, 30_000)
    const check = (): void => { if (queued.size > 0) { clearTimeout(timer); child.stdout.off('data', check); resolve() } }
    child.stdout.on('data', check)
  })
  child.kill('SIGKILL')
  await exited // reaped: its pid no longer holds the lock
  return { confirmed, unconfirmed: [...queued], lockedWhileAlive }
}

/** Reopens the store and checks it: every readable block verifies, accounting matches the contents, confirmed puts survived. */
async function checkAfterCrash (path: string, killed: Killed): Promise<void> {
  const store = await FsBlockstore.open(path)
  try {
    let bytes = 0
    let blocks = 0
    for await (const pair of store.getAll()) {
      const parts: Uint8Array[] = []
      for await (const p of pair.bytes) parts.push(p)
      const content = new Uint8Array(Buffer.concat(parts))
      verifyBlock(pair.cid, content)
      bytes += content.byteLength
      blocks++
    }
    assert.deepEqual(store.stats(), { bytes, blocks, maxSize: Infinity, pins: 0 })
    // every put that resolved before the kill is there
    for (const cid of killed.confirmed) assert.equal(store.has(CID.parse(cid)), true, `confirmed ${cid} lost`)
    const report = await store.verify()
    assert.deepEqual(report.corrupt, [])
    assert.deepEqual(store.stats(), { bytes, blocks, maxSize: Infinity, pins: 0 })
  } finally {
    await store.close()
  }
}

describe('crash during block writes', () => {
  let dir: string
  let cleanup: () => Promise<void>
  before(async () => { ({ dir, cleanup } = await tempDir('swarmpack-crash-')) })
  after(async () => { await cleanup() })

  it('SIGKILL mid-batch (fsync on): only whole, verifiable blocks; accounting right; confirmed puts kept', async () => {
    const path = join(dir, 'store')
    for (let round = 0; round < 3; round++) {
      const killed = await writeAndKill(path, 8 + round * 8, 'sync')
      assert.ok(killed.lockedWhileAlive, 'a second opener must be refused while the writer lives')
      assert.ok(killed.unconfirmed.length > 0, 'the writer had no put in flight; the kill did not hit a batch')
      await checkAfterCrash(path, killed)
    }
  })

  it('power loss between the segment sync and the index commit: an entry past the durable end whose bytes never reached the disk is dropped on open', async () => {
    const path = join(dir, 'unsynced')
    const stored = await putBatchAndKill(path, 8)
    assert.equal(stored.length, 8)
    // the index commit that recorded the segment's durable end ran beside the sync of these very
    // records: all of them lie past it, as after a power loss that kept the index commit but not
    // the data sync. Their pages are lost: zero the bodies of half of them, headers kept (the
    // header check alone would pass them), as if only the header's page had been written back.
    const unsynced = await pastDurableEnd(path)
    assert.equal(unsynced.size, 8, 'the last batch lies past the recorded durable end')
    const lost = new Set([...unsynced.keys()].filter((_, i) => i % 2 === 0))
    for (const key of lost) {
      const [size, seg, off] = unsynced.get(key) as [number, number, number]
      const fh = await open(join(path, SEGMENTS_DIR, segmentName(seg)), 'r+')
      try { await fh.write(new Uint8Array(size), 0, size, off + recordLength(key, 0)) } finally { await fh.close() }
    }
    const store = await FsBlockstore.open(path)
    try {
      assert.deepEqual(store.stats(), { bytes: 4 * 20_000, blocks: 4, maxSize: Infinity, pins: 0 })
      for (const cid of stored) {
        const key = CID.parse(cid).toString()
        assert.equal(store.has(CID.parse(cid)), !lost.has(key), `${cid}: lost ${lost.has(key)}`)
        if (!lost.has(key)) verifyBlock(CID.parse(cid), await store.getBytes(CID.parse(cid)))
      }
      assert.deepEqual((await store.verify()).corrupt, [])
    } finally {
      await store.close()
    }
    // a clean close recorded every byte as durable: nothing is checked on the next open
    assert.equal((await pastDurableEnd(path)).size, 0)
    const reopened = await FsBlockstore.open(path)
    assert.equal(reopened.stats().blocks, 4)
    await reopened.close()
  })

  it('SIGKILL mid-batch with fsync off: committed puts survive a process crash too', async () => {
    const path = join(dir, 'nosync')
    const killed = await writeAndKill(path, 8, 'nosync')
    assert.ok(killed.unconfirmed.length > 0)
    await checkAfterCrash(path, killed)
  })
})
