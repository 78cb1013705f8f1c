/**
 * Model-based check of the blockstore contract: random sequences of put/get/has/delete/getAll and
 * reopen, applied to FsBlockstore and to blockstore-core's MemoryBlockstore (the reference
 * implementation of the same interface); both must answer alike at every step.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { MemoryBlockstore } from 'blockstore-core/memory'
import fc from 'fast-check'
import { FsBlockstore } from '../src/store/index.js'
import { rawCid, type Block } from '../src/block.js'
import { tempDir } from './fixtures/blocks.js'

const POOL: Block[] = Array.from({ length: 8 }, (_, i) => {
  const bytes = new Uint8Array(50 + i * 37).fill(i + 1)
  return { cid: rawCid(bytes), bytes }
})

type Op =
  | { kind: 'put' | 'get' | 'has' | 'delete', i: number }
  | { kind: 'all' | 'reopen' }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constantFrom('put' as const, 'get' as const, 'has' as const, 'delete' as const), i: fc.nat(POOL.length - 1) }),
  fc.record({ kind: fc.constantFrom('all' as const, 'reopen' as const) })
)

async function bytesOf (gen: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<string> {
  const parts: Uint8Array[] = []
  for await (const p of gen) parts.push(p)
  return Buffer.concat(parts).toString('hex')
}

async function outcome (f: () => Promise<unknown>): Promise<string> {
  try {
    return `ok ${JSON.stringify(await f())}`
  } catch (err) {
    return `error ${(err as Error).name}`
  }
}

describe('FsBlockstore against the MemoryBlockstore model', () => {
  let dir: string
  let cleanup: () => Promise<void>
  before(async () => { ({ dir, cleanup } = await tempDir('swarmpack-model-')) })
  after(async () => { await cleanup() })

  it('answers like the reference store for random operation sequences', async () => {
    let run = 0
    await fc.assert(fc.asyncProperty(fc.array(opArb, { maxLength: 30 }), async (ops) => {
      const path = join(dir, String(run++))
      let store = await FsBlockstore.open(path, { fsync: false })
      const model = new MemoryBlockstore()
      try {
        for (const op of ops) {
          if (op.kind === 'reopen') {
            await store.close()
            store = await FsBlockstore.open(path, { fsync: false })
            continue
          }
          if (op.kind === 'all') {
            const list = async (s: { getAll: () => AsyncIterable<{ cid: { toString: () => string }, bytes: AsyncIterable<Uint8Array> | Iterable<Uint8Array> }> | Iterable<{ cid: { toString: () => string }, bytes: AsyncIterable<Uint8Array> | Iterable<Uint8Array> }> }): Promise<string[]> => {
              const out: string[] = []
              for await (const p of s.getAll()) out.push(`${p.cid.toString()}=${await bytesOf(p.bytes)}`)
              return out.sort()
            }
            assert.deepEqual(await list(store), await list(model))
            continue
          }
          if (!('i' in op)) continue
          const { cid, bytes } = POOL[op.i]
          const kind = op.kind
          const run = async (s: FsBlockstore | MemoryBlockstore): Promise<string> => {
            switch (kind) {
              case 'put': return await outcome(async () => (await s.put(cid, bytes)).toString())
              case 'get': return await outcome(async () => await bytesOf(s.get(cid)))
              case 'has': return await outcome(async () => await s.has(cid))
              default: return await outcome(async () => { await s.delete(cid) })
            }
          }
          assert.equal(await run(store), await run(model), `${op.kind} ${op.i}`)
        }
        let count = 0
        for await (const _ of model.getAll()) count++
        assert.equal(store.stats().blocks, count)
      } finally {
        await store.close()
      }
    }), { numRuns: 40 })
  })
})
