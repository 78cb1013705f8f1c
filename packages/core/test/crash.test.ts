import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import { verifyBlock } from '../src/block.js'
import { isSwarmpackError } from '../src/errors.js'
import { FsBlockstore, StoreErrorCode } from '../src/store/index.js'
import { tempDir } from './fixtures/blocks.js'

const writer = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url))

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

  it('SIGKILL mid-batch with fsync off: committed puts survive a process crash too', async () => {
    const path = join(dir, 'nosync')
    const killed = await writeAndKill(path, 8, 'nosync')
    assert.ok(killed.unconfirmed.length > 0)
    await checkAfterCrash(path, killed)
  })
})
