import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import { verifyBlock } from '../src/block.js'
import { isSwarmpackError } from '../src/errors.js'
import { FsBlockstore, StoreErrorCode } from '../src/store/index.js'
import { tempDir } from './fixtures/blocks.js'

const writer = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url))

/**
 * Starts the writer and lets it store `atLeast` blocks. Then freezes it (SIGSTOP) at random moments
 * until it is caught with a temp file open, i.e. in the middle of a block write, and SIGKILLs it there.
 */
async function writeAndKill (dir: string, atLeast: number): Promise<{ confirmed: string[], midWrite: boolean, lockedWhileAlive: boolean }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=swarmpack-src', writer, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
  const confirmed: string[] = []
  let buffer = ''
  const exited = new Promise<void>(resolve => child.once('exit', () => { resolve() }))
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => { reject(new Error(`writer exited early with ${code}`)) })
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString()
      const lines = buffer.split('\n')
      buffer = lines.pop() ?? ''
      confirmed.push(...lines)
      if (confirmed.length >= atLeast) resolve()
    })
  })
  // a live writer holds the lock
  const lockedWhileAlive = await FsBlockstore.open(dir).then(async s => { await s.close(); return false }, (err: unknown) => isSwarmpackError(err, StoreErrorCode.STORE_LOCKED))
  let midWrite = false
  for (let attempt = 0; attempt < 400 && !midWrite; attempt++) {
    await new Promise(resolve => setTimeout(resolve, Math.random() * 3))
    child.kill('SIGSTOP')
    midWrite = (await listFiles(dir)).temps.length > 0
    if (!midWrite) child.kill('SIGCONT')
  }
  child.kill('SIGKILL')
  await exited // reaped: its pid no longer holds the lock
  return { confirmed, midWrite, lockedWhileAlive }
}

async function listFiles (dir: string): Promise<{ blocks: string[], temps: string[] }> {
  const blocks: string[] = []
  const temps: string[] = []
  for (const shard of await readdir(join(dir, 'blocks'))) {
    for (const name of await readdir(join(dir, 'blocks', shard))) {
      (name.startsWith('.') ? temps : blocks).push(join(dir, 'blocks', shard, name))
    }
  }
  return { blocks, temps }
}

describe('crash during block writes', () => {
  let dir: string
  let cleanup: () => Promise<void>
  before(async () => { ({ dir, cleanup } = await tempDir('swarmpack-crash-')) })
  after(async () => { await cleanup() })

  it('leaves only whole, verifiable blocks; temp files are swept and accounting is right on reopen', async () => {
    const path = join(dir, 'store')
    const { confirmed, midWrite, lockedWhileAlive } = await writeAndKill(path, 3)
    assert.ok(lockedWhileAlive, 'a second opener must be refused while the writer lives')
    assert.ok(midWrite, 'never caught the writer mid-write; the test did not exercise a partial write')
    assert.ok((await listFiles(path)).temps.length > 0)

    const store = await FsBlockstore.open(path)
    const { blocks, temps } = await listFiles(path)
    assert.deepEqual(temps, [])
    let bytes = 0
    for (const file of blocks) {
      const content = await readFile(file)
      verifyBlock(CID.parse(file.slice(file.lastIndexOf('/') + 1)), content)
      bytes += content.byteLength
    }
    assert.deepEqual(store.stats(), { bytes, blocks: blocks.length, maxSize: Infinity, pins: 0 })
    // every put that returned before the kill is there
    for (const cid of confirmed) assert.equal(store.has(CID.parse(cid)), true)
    assert.deepEqual((await store.verify()).corrupt, [])
    await store.close()
  })
})
