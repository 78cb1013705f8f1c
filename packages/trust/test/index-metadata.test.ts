/**
 * Catalog metadata in index entries (description, categories, tags): carried through signing and
 * verified reading, optional (older entries without it still read), bounded like every other field.
 */
import '@swarmpack/core/polyfill'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { encodeCborBlock, isSwarmpackError, rawCid } from '@swarmpack/core'
import { buildIndex, generateSigningKey, openIndexRoot, openShard, MAX_ENTRY_DESCRIPTION, MAX_ENTRY_LABELS, type IndexEntry, type IndexSlot } from '../src/index.js'

const entry = (extra: Partial<IndexEntry> = {}): IndexEntry => ({
  release: rawCid(new Uint8Array([1])),
  size: 100,
  variants: { 'linux-x64': { manifest: rawCid(new Uint8Array([2])), size: 5000 } },
  dependencies: { dep: '^1.0.0' },
  ...extra
})
const malformed = (e: unknown): boolean => isSwarmpackError(e, 'ERR_TRUST_MALFORMED')

describe('index entry metadata', () => {
  it('round-trips description, categories and tags, and reads entries without them', async () => {
    const key = await generateSigningKey()
    const entries = new Map<string, Map<string, IndexSlot>>([
      ['web', new Map([['1.0.0', entry({ description: 'a web server', categories: ['net'], tags: ['http', 'server'] })]])],
      ['plain', new Map([['2.0.0', entry()]])]
    ])
    const built = await buildIndex(key, { indexer: 'main', version: 1, issued: 1, expires: 2, entries, shards: 1 })
    assert.equal(openIndexRoot(built.index.bytes).releases, 2)
    const shard = openShard(built.shards[0].bytes, 0, 1)
    const web = shard.get('web')?.get('1.0.0') as IndexEntry
    assert.equal(web.description, 'a web server')
    assert.deepEqual(web.categories, ['net'])
    assert.deepEqual(web.tags, ['http', 'server'])
    const plain = shard.get('plain')?.get('2.0.0') as IndexEntry
    assert.equal('description' in plain, false)
  })

  it('refuses metadata out of bounds when building and when reading', async () => {
    const key = await generateSigningKey()
    const one = (e: IndexEntry): Map<string, Map<string, IndexSlot>> => new Map([['web', new Map([['1.0.0', e]])]])
    const build = async (e: IndexEntry): Promise<unknown> => buildIndex(key, { indexer: 'main', version: 1, issued: 1, expires: 2, entries: one(e) })
    await assert.rejects(build(entry({ description: 'x'.repeat(MAX_ENTRY_DESCRIPTION + 1) })), malformed)
    await assert.rejects(build(entry({ description: '' })), malformed)
    await assert.rejects(build(entry({ tags: Array.from({ length: MAX_ENTRY_LABELS + 1 }, (_, i) => `t${i}`) })), malformed)
    await assert.rejects(build(entry({ tags: ['x'.repeat(65)] })), malformed)
    await assert.rejects(build(entry({ categories: ['a', 'a'] })), malformed)
    await assert.rejects(build(entry({ categories: [''] })), malformed)
    // a shard someone else wrote, with a bad field, is refused on reading
    const bad = encodeCborBlock({ type: 'swarmpack/index-shard@1', bucket: 0, of: 1, entries: { web: { '1.0.0': { ...entry(), tags: [7] } } } })
    assert.throws(() => openShard(bad.bytes, 0, 1), malformed)
    const unknown = encodeCborBlock({ type: 'swarmpack/index-shard@1', bucket: 0, of: 1, entries: { web: { '1.0.0': { ...entry(), homepage: 'x' } } } })
    assert.throws(() => openShard(unknown.bytes, 0, 1), malformed)
  })
})
