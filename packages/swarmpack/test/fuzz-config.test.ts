/**
 * Fuzzing the node's decoders of files and records it did not write itself: the deployment config
 * (JSONC text, then the schema), the lockfile (JSON, schema, closure, then the load order the node
 * computes from it) and index-head DHT records (the kad-dht validator and selector built on trust's
 * head envelope). Every input must end in a value or a SwarmpackError with an ERR_ code, within
 * 1 s of CPU. SWARMPACK_FUZZ_RUNS sets the inputs per decoder (1,000 here; 100,000 in bench/fuzz).
 */
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import fc from 'fast-check'
import { expectTypedOutcome as typed, mutatedBytes } from '@swarmpack/core/fuzzing'
import { rawCid } from '@swarmpack/core'
import { INDEX_HEAD_NAMESPACE, indexHeadKey } from '@swarmpack/dht-provider'
import { generateSigningKey, keyIdOf, signIndexHead } from '@swarmpack/trust'
import { parseConfig, parseConfigText } from '../src/config/load.js'
import { starterConfigText } from '../src/config/starter.js'
import { lockEntries, loadOrder, parseLock } from '../src/lock/format.js'
import { indexHeadDhtRecords } from '../src/heads/format.js'

const RUNS = Number(process.env.SWARMPACK_FUZZ_RUNS ?? 1000)


const mutated = (seed: Uint8Array): fc.Arbitrary<Uint8Array> => mutatedBytes(fc, seed)
/** Text mutations: the byte mutations above, read back as UTF-8 (invalid sequences included). */
const mutatedText = (s: string): fc.Arbitrary<string> => mutated(new TextEncoder().encode(s)).map(b => Buffer.from(b).toString('utf8'))

/** What the node does with a config file's text. */
function readConfig (text: string): void {
  parseConfig(parseConfigText(text, 'fuzz.json'), { file: 'fuzz.json' })
}
/** What the node does with a lockfile's text. */
function readLock (text: string): void {
  const lock = parseLock(text, 'fuzz.lock')
  loadOrder(lockEntries(lock).map(e => ({ name: e.name, deps: Object.keys(e.resolved) })))
}

const cid = rawCid(new Uint8Array([1])).toString()
const lockSeed = JSON.stringify({
  lockfileVersion: 1,
  configDigest: 'sha256:00',
  platform: 'linux-x64',
  modules: { a: '^1.0.0', '@s/b': { range: '~2', variant: 'cuda' } },
  indexes: [{ id: 'main', version: 7, root: cid }],
  packages: {
    'a@1.1.0': { variant: 'any', release: cid, manifest: cid, size: 10, dependencies: { '@s/b': '^2' }, resolved: { '@s/b': '2.0.0' } },
    '@s/b@2.0.0': { variant: 'linux-x64+cuda', release: cid, manifest: cid, size: 20, dependencies: { a: '^1' }, resolved: { a: '1.1.0' } }
  }
}, null, 2)

/** JSON-ish values with the keys the schemas know, so the fuzzer gets past the first check. */
const known = ['version', 'platform', 'modules', 'indexers', 'trust', 'sources', 'sharing', 'network', 'cache', 'generations', 'hooks', 'id', 'keys', 'heads',
  'publishers', 'pattern', 'roots', 'range', 'variant', 'mirrors', 'url', 'listen', 'maxSize', 'keep', 'timeoutMs', 'lockfileVersion', 'configDigest',
  'indexes', 'packages', 'root', 'release', 'manifest', 'size', 'dependencies', 'resolved', 'a@1.0.0', 'a',
  'mode', 'mdns', 'intervalMs', 'relay', 'client', 'server', 'maxReservations', 'unlimited', 'dcutr', 'autonat', 'upnp']
const jsonish = fc.letrec(tie => ({
  node: fc.oneof({ depthSize: 'small' },
    fc.integer(), fc.double(), fc.string({ maxLength: 12 }), fc.boolean(), fc.constant(null), fc.constant(cid), fc.constant('^1.0.0'), fc.constant('1.0.0'),
    fc.array(tie('node'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...known), fc.string({ maxLength: 6 })), tie('node'), { maxKeys: 6 }))
})).node

describe('fuzz: deployment config and lockfile', () => {
  it('the seeds parse', () => {
    readConfig(starterConfigText())
    readLock(lockSeed)
  })

  it(`config: mutated starter text, arbitrary JSON and random text (${RUNS} inputs each)`, async () => {
    await fc.assert(fc.asyncProperty(mutatedText(starterConfigText()), async t => { await typed('config', () => readConfig(t)) }), { numRuns: RUNS })
    await fc.assert(fc.asyncProperty(jsonish, async v => { await typed('config', () => readConfig(JSON.stringify(v) ?? 'null')) }), { numRuns: RUNS })
    await fc.assert(fc.asyncProperty(fc.string({ maxLength: 200 }), async t => { await typed('config', () => readConfig(t)) }), { numRuns: RUNS })
  })

  it(`lockfile: mutated seed, arbitrary JSON and random text (${RUNS} inputs each)`, async () => {
    await fc.assert(fc.asyncProperty(mutatedText(lockSeed), async t => { await typed('lock', () => readLock(t)) }), { numRuns: RUNS })
    await fc.assert(fc.asyncProperty(jsonish, async v => { await typed('lock', () => readLock(JSON.stringify(v) ?? 'null')) }), { numRuns: RUNS })
    await fc.assert(fc.asyncProperty(fc.string({ maxLength: 200 }), async t => { await typed('lock', () => readLock(t)) }), { numRuns: RUNS })
  })
})

describe('fuzz: index-head DHT records', () => {
  let key: Uint8Array
  let head: Uint8Array
  before(async () => {
    const signer = await generateSigningKey()
    const now = Date.now()
    head = (await signIndexHead(signer, { indexer: 'main', version: 4, index: rawCid(new Uint8Array([2])), issued: now - 1000, expires: now + 3_600_000 })).bytes
    key = indexHeadKey(keyIdOf(signer))
  })

  it(`the validator and selector on mutated heads and keys, random bytes (${RUNS} inputs each)`, async () => {
    const records = indexHeadDhtRecords()
    const validate = records.validators[INDEX_HEAD_NAMESPACE]
    const select = records.selectors[INDEX_HEAD_NAMESPACE]
    await validate(key, head)
    await fc.assert(fc.asyncProperty(mutated(head), async v => { await typed('head record', async () => validate(key, v)) }), { numRuns: RUNS })
    await fc.assert(fc.asyncProperty(mutated(key), async k => { await typed('head key', async () => validate(k, head)) }), { numRuns: RUNS })
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), async v => { await typed('random record', async () => validate(key, v)) }), { numRuns: RUNS })
    await fc.assert(fc.asyncProperty(fc.array(fc.oneof(mutated(head), fc.constant(head)), { minLength: 1, maxLength: 4 }), async values => {
      await typed('selector', async () => {
        const i = await select(key, values)
        assert.ok(i >= 0 && i < values.length, 'selector index in range')
      })
    }), { numRuns: RUNS })
  })
})
