/** What must work: valid chains admit, keys persist safely, rotation and revocation behave. */
import assert from 'node:assert/strict'
import { chmod, mkdtemp, readFile, rm, stat, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { after, describe, it } from 'node:test'
import {
  IndexView, TrustErrorCode, TrustVerifier, generateSigningKey, issueDelegation, keyIdOf, loadKeyFile, openIndexHead,
  saveKeyFile, signIndexHead, signEnvelope, PayloadType, openEnvelope, type IndexSlot
} from '../src/index.js'
import { DAY, HOUR, T0, World, id } from './helpers.js'

const NAME = '@acme/web'
const VERSION = '1.0.0'

describe('trust: positive paths', () => {
  const worlds: World[] = []
  const world = async (): Promise<World> => { const w = await World.create(); worlds.push(w); return w }
  after(async () => { for (const w of worlds) await w.close() })

  it('keys: saved with mode 0600, loaded back, same key id; others-readable files and overwrites refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'swarmpack-keys-'))
    try {
      const key = await generateSigningKey()
      const path = join(dir, 'publisher.key')
      await saveKeyFile(path, key)
      assert.equal((await stat(path)).mode & 0o777, 0o600)
      assert.deepEqual(await readdir(dir), ['publisher.key'], 'no temp file left behind')
      const loaded = await loadKeyFile(path)
      assert.equal(keyIdOf(loaded), keyIdOf(key))
      assert.match(keyIdOf(key), /^12D3KooW/)
      await assert.rejects(saveKeyFile(path, await generateSigningKey()), { code: TrustErrorCode.KEY_FILE })
      assert.equal(keyIdOf(await loadKeyFile(path)), keyIdOf(key))
      await chmod(path, 0o644)
      await assert.rejects(loadKeyFile(path), { code: TrustErrorCode.KEY_FILE })
      await assert.rejects(loadKeyFile(join(dir, 'missing.key')), { code: TrustErrorCode.KEY_FILE })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('envelopes: sign and open round trip; the signature covers the payload type', async () => {
    const key = await generateSigningKey()
    const signed = await signEnvelope(key, PayloadType.ATTESTATION, { hello: 'world' })
    const opened = openEnvelope(signed.bytes, PayloadType.ATTESTATION)
    assert.deepEqual(opened.value, { hello: 'world' })
    assert.equal(opened.signer, keyIdOf(key))
    assert.ok(opened.cid.equals(signed.cid))
  })

  it('a valid chain admits; a root may also sign directly', async () => {
    const w = await world()
    const v = w.verifier({ indexerThreshold: 1, attestations: [] })
    const viaChain = await w.release({ name: NAME, version: VERSION })
    const direct = await w.release({ name: '@acme/direct', version: '2.0.0' }, w.keys.root, [])
    await v.updateIndexer('alpha', (await w.publishIndex('alpha', [[NAME, VERSION, World.slot(viaChain)], ['@acme/direct', '2.0.0', World.slot(direct)]])).head.bytes)
    const d1 = await v.checkInstallable(NAME, VERSION, viaChain.manifest)
    assert.equal(d1.publisher, id(w.keys.publisher))
    assert.equal(d1.chain.length, 2)
    assert.deepEqual(d1.skipped.map(s => s.code), [TrustErrorCode.NOT_LISTED]) // beta was never updated, and need not be
    const d2 = await v.checkInstallable('@acme/direct', '2.0.0', direct.manifest.toString())
    assert.equal(d2.root, id(w.keys.root))
    assert.deepEqual(d2.chain, [])
  })

  it('clock skew: a certificate starting within the allowance is accepted', async () => {
    const w = await world()
    const v = w.verifier({ indexerThreshold: 1, attestations: [] })
    const rel = await w.release({ name: NAME, version: VERSION }, w.keys.publisher, await w.chain(['@acme/*'], ['@acme/*'], { leafNotBefore: T0 + 30_000 }))
    await v.updateIndexer('alpha', (await w.publishIndex('alpha', [[NAME, VERSION, World.slot(rel)]])).head.bytes)
    assert.equal((await v.checkInstallable(NAME, VERSION, rel.manifest)).name, NAME)
  })

  it('attestations: distinct identities, any of an identity\'s keys, kinds per rule', async () => {
    const w = await world()
    const v = w.verifier({ indexerThreshold: 1, attestations: [{ pattern: '@acme/*', threshold: 2, kinds: ['rebuilt'] }] })
    const rel = await w.release({ name: NAME, version: VERSION })
    await v.updateIndexer('alpha', (await w.publishIndex('alpha', [[NAME, VERSION, World.slot(rel)]])).head.bytes)
    const a2 = await w.attest(w.keys.alice2, NAME, VERSION, rel.manifest)
    const c = await w.attest(w.keys.carol, NAME, VERSION, rel.manifest)
    const mirrorOnly = await w.attest(w.keys.bob, NAME, VERSION, rel.manifest, 'mirror-matched')
    const d = await v.checkInstallable(NAME, VERSION, rel.manifest, { attestations: [a2, mirrorOnly, c] })
    assert.deepEqual(d.attesters, ['alice', 'carol'])
    await assert.rejects(v.checkInstallable(NAME, VERSION, rel.manifest, { attestations: [a2, mirrorOnly] }), { code: TrustErrorCode.THRESHOLD })
  })

  it('state: the same head twice is a no-op; state survives a restart; a newer head moves forward', async () => {
    const w = await world()
    const v = w.verifier()
    const h1 = await w.publishIndex('alpha', [])
    const r1 = await v.updateIndexer('alpha', h1.head.bytes)
    assert.equal(r1.changed, true)
    const again = await v.updateIndexer('alpha', h1.head.bytes)
    assert.equal(again.changed, false)
    const restarted = w.verifier()
    const st = await restarted.state.read('alpha')
    assert.equal(st?.version, 1)
    assert.deepEqual(st?.head, h1.head.bytes)
    const statePath = join(w.stateDir, 'alpha.state')
    assert.equal((await stat(statePath)).mode & 0o777, 0o600)
    w.t += HOUR
    const h2 = await w.publishIndex('alpha', [])
    const r2 = await restarted.updateIndexer('alpha', h2.head.bytes)
    assert.equal(r2.previous, 1)
    assert.equal(r2.version, 2)
    assert.deepEqual(await readFile(statePath).then(b => b.byteLength > 0), true)
  })

  it('key rotation for an indexer: the old key announces the new one; afterwards only the new key signs', async () => {
    const w = await world()
    const v = w.verifier({ indexerThreshold: 1, attestations: [] })
    const rel = await w.release({ name: NAME, version: VERSION })
    await v.updateIndexer('alpha', (await w.publishIndex('alpha', [[NAME, VERSION, World.slot(rel)]])).head.bytes)
    // version 2, signed by the current key, hands over to the new key
    const handover = await w.publishIndex('alpha', [], { nextKeys: [id(w.keys.indexerA2)] })
    assert.deepEqual((await v.updateIndexer('alpha', handover.head.bytes)).keys, [id(w.keys.indexerA2)])
    // version 3 by the new key is accepted
    const byNew = await w.publishIndex('alpha', [], { key: w.keys.indexerA2 })
    assert.equal((await v.updateIndexer('alpha', byNew.head.bytes)).version, 3)
    // the retired key can no longer publish
    const byOld = await w.publishIndex('alpha', [], { key: w.keys.indexerA })
    await assert.rejects(v.updateIndexer('alpha', byOld.head.bytes), { code: TrustErrorCode.BAD_SIGNATURE })
    assert.equal((await v.state.read('alpha'))?.version, 3)
    assert.equal((await v.checkInstallable(NAME, VERSION, rel.manifest)).indexers[0], 'alpha')
  })

  it('publisher revocation: revoke the key through the index, delegate to a new key, re-release', async () => {
    const w = await world()
    const v = w.verifier({ indexerThreshold: 1, attestations: [] })
    const old = await w.release({ name: NAME, version: VERSION })
    await v.updateIndexer('alpha', (await w.publishIndex('alpha', [[NAME, VERSION, World.slot(old)]])).head.bytes)
    assert.ok(await v.checkInstallable(NAME, VERSION, old.manifest))
    // the publisher key leaks: the indexer revokes it and tombstones what it signed
    w.t += HOUR
    await v.updateIndexer('alpha', (await w.publishIndex('alpha', [[NAME, VERSION, { removed: 'signed by a revoked key' }]], { revocations: { keys: [id(w.keys.publisher)] } })).head.bytes)
    await assert.rejects(v.checkInstallable(NAME, VERSION, old.manifest), { code: TrustErrorCode.NOT_LISTED })
    // the team delegates to a fresh key, which publishes 1.0.1
    const fresh = await generateSigningKey()
    const [teamCert] = await w.chain()
    const leaf = await issueDelegation(w.keys.team, { audience: keyIdOf(fresh), scope: ['@acme/web'], notBefore: w.t, expires: w.t + 90 * DAY })
    const next = await w.release({ name: NAME, version: '1.0.1' }, fresh, [teamCert, leaf.bytes])
    await v.updateIndexer('alpha', (await w.publishIndex('alpha', [[NAME, '1.0.1', World.slot(next)]], { revocations: { keys: [id(w.keys.publisher)] } })).head.bytes)
    assert.equal((await v.checkInstallable(NAME, '1.0.1', next.manifest)).publisher, keyIdOf(fresh))
    // anything else the revoked key signs is refused, even if an index lists it
    const sneaky = await w.release({ name: NAME, version: '1.0.2' })
    await v.updateIndexer('alpha', (await w.publishIndex('alpha', [[NAME, '1.0.2', World.slot(sneaky)]], { revocations: { keys: [id(w.keys.publisher)] } })).head.bytes)
    await assert.rejects(v.checkInstallable(NAME, '1.0.2', sneaky.manifest), { code: TrustErrorCode.REVOKED })
  })

  it('sharded index: many releases across shards; lookups read one shard; verifyAll checks the count', async () => {
    const w = await world()
    const rel = await w.release({ name: NAME, version: VERSION })
    const slot = World.slot(rel)
    const changes: Array<[string, string, IndexSlot]> = []
    for (let i = 0; i < 3000; i++) changes.push([`pkg-${i}`, `1.${i % 7}.0`, slot])
    changes.push([NAME, VERSION, slot])
    const built = await w.publishIndex('alpha', changes, { shards: 8 })
    assert.equal(built.shards.length, 8)
    const head = openIndexHead(built.head.bytes)
    const view = await IndexView.load(head.index, w.getBlock)
    assert.equal(view.root.releases, 3001)
    let names = 0
    for await (const shard of view.verifyAll()) names += shard.size
    assert.equal(names, 3001)
    assert.ok((await view.lookup('pkg-1234', '1.2.0')) !== undefined)
    assert.equal(await view.lookup('pkg-1234', '9.9.9'), undefined)
    // the verifier accepts it and reports progress per shard
    const v = w.verifier({ indexerThreshold: 1, attestations: [] })
    const events: string[] = []
    await v.updateIndexer('alpha', built.head.bytes, { onProgress: (e) => events.push(e.type) })
    assert.equal(events.filter(t => t === 'swarmpack:trust:index-shard').length, 8)
    assert.equal((await v.checkInstallable(NAME, VERSION, rel.manifest)).name, NAME)
  })

  it('a missing index block is a typed error and leaves the state alone', async () => {
    const w = await world()
    const v = new TrustVerifier({ policy: w.policy(), stateDir: w.stateDir, getBlock: async () => { throw new Error('offline') }, now: w.now })
    const built = await w.publishIndex('alpha', [])
    await assert.rejects(v.updateIndexer('alpha', built.head.bytes), { code: TrustErrorCode.MISSING_BLOCK })
    assert.equal(await v.state.read('alpha'), undefined)
  })

  it('an aborted update or check stops with ERR_ABORTED and changes nothing', async () => {
    const w = await world()
    const v = w.verifier()
    const built = await w.publishIndex('alpha', [])
    const ac = new AbortController()
    ac.abort()
    await assert.rejects(v.updateIndexer('alpha', built.head.bytes, { signal: ac.signal }), { code: 'ERR_ABORTED' })
    await assert.rejects(v.checkInstallable(NAME, VERSION, await w.manifest('m'), { signal: ac.signal }), { code: 'ERR_ABORTED' })
    assert.equal(await v.state.read('alpha'), undefined)
  })

  it('out-of-band reset: a key changed in the policy overrides a rotation recorded in the state', async () => {
    const w = await world()
    const v = w.verifier({ indexerThreshold: 1, attestations: [] })
    const rel = await w.release({ name: NAME, version: VERSION })
    await v.updateIndexer('alpha', (await w.publishIndex('alpha', [[NAME, VERSION, World.slot(rel)]])).head.bytes)
    // a thief holding the alpha key rotates to a key of their own
    const thief = w.keys.stranger
    await v.updateIndexer('alpha', (await w.publishIndex('alpha', [], { nextKeys: [id(thief)], nextKeyHolders: [thief] })).head.bytes)
    assert.deepEqual((await v.state.read('alpha'))?.keys, [id(thief)])
    // the administrator replaces the indexer's key in the local policy
    const reset = w.verifier({ indexerThreshold: 1, attestations: [], indexers: [{ id: 'alpha', keys: [id(w.keys.indexerA2)] }, { id: 'beta', keys: [id(w.keys.indexerB)] }] })
    const byThief = await w.publishIndex('alpha', [], { key: thief })
    await assert.rejects(reset.updateIndexer('alpha', byThief.head.bytes), { code: TrustErrorCode.BAD_SIGNATURE })
    // what the state holds was signed by the key the policy dropped: it no longer counts
    await assert.rejects(reset.checkInstallable(NAME, VERSION, rel.manifest), { code: TrustErrorCode.BAD_SIGNATURE })
    const byNew = await w.publishIndex('alpha', [], { key: w.keys.indexerA2, version: 5 })
    assert.equal((await reset.updateIndexer('alpha', byNew.head.bytes)).version, 5)
    assert.deepEqual((await reset.checkInstallable(NAME, VERSION, rel.manifest)).indexers, ['alpha'])
    // rollback protection survived the reset
    const old = await w.publishIndex('alpha', [], { key: w.keys.indexerA2, version: 4 })
    await assert.rejects(reset.updateIndexer('alpha', old.head.bytes), { code: TrustErrorCode.ROLLBACK })
  })

  it('re-sharding between versions: the drop check reads each shard once and accepts an honest index', async () => {
    const w = await world()
    const rel = await w.release({ name: NAME, version: VERSION })
    const changes: Array<[string, string, IndexSlot]> = []
    for (let i = 0; i < 400; i++) changes.push([`pkg-${i}`, '1.0.0', World.slot(rel)])
    let reads = 0
    const v = new TrustVerifier({ policy: w.policy({ indexerThreshold: 1 }), stateDir: w.stateDir, getBlock: async (cid) => { reads++; return w.getBlock(cid) }, now: w.now })
    await v.updateIndexer('alpha', (await w.publishIndex('alpha', changes, { shards: 2 })).head.bytes)
    for (const shards of [32, 4, 64]) {
      reads = 0
      const built = await w.publishIndex('alpha', [[`new-${shards}`, '1.0.0', World.slot(rel)]], { shards })
      await v.updateIndexer('alpha', built.head.bytes)
      const previous = shards === 32 ? 2 : shards === 4 ? 32 : 4
      // index + all new shards (verifyAll), then old index + old shards + new shards once each (drop check)
      assert.ok(reads <= 2 + 2 * shards + previous, `${reads} block reads going from ${previous} to ${shards} shards`)
    }
    const dropped = await w.publishIndex('alpha', [['pkg-7', '1.0.0', undefined]], { shards: 8 })
    await assert.rejects(v.updateIndexer('alpha', dropped.head.bytes), { code: TrustErrorCode.DROPPED })
  })

  it('issue 10: a same-version head with a later expiry is equivocation; a refresh is a new version with the same shards', async () => {
    const w = await world()
    const v = w.verifier({ indexerThreshold: 1, attestations: [] })
    const rel = await w.release({ name: NAME, version: VERSION })
    const first = await w.publishIndex('alpha', [[NAME, VERSION, World.slot(rel)]], { expires: w.t + DAY })
    await v.updateIndexer('alpha', first.head.bytes)
    // re-signing version 1 with a later expiry: a second head for one version
    w.t += HOUR
    const resigned = await signIndexHead(w.keys.indexerA, { indexer: 'alpha', version: 1, index: first.index.cid, issued: w.t, expires: w.t + 2 * DAY })
    await assert.rejects(v.updateIndexer('alpha', resigned.bytes), { code: TrustErrorCode.EQUIVOCATION })
    await rm(join(w.stateDir, 'evidence'), { recursive: true }) // the administrator clears the evidence
    // the documented refresh: the next version with the same entries keeps every shard's CID
    const refreshed = await w.publishIndex('alpha', [], { expires: w.t + 2 * DAY })
    assert.deepEqual(refreshed.shards.map(b => b.cid.toString()), first.shards.map(b => b.cid.toString()))
    assert.equal((await v.updateIndexer('alpha', refreshed.head.bytes)).version, 2)
    w.t += DAY
    assert.deepEqual((await v.checkInstallable(NAME, VERSION, rel.manifest)).indexers, ['alpha'])
  })

  it('issue 10: a stuck block fetch does not wedge the indexer; a later update with a short signal gives up', async () => {
    const w = await world()
    const built = await w.publishIndex('alpha', [])
    let unstick!: (err: Error) => void
    const stuck = new Promise<never>((resolve, reject) => { unstick = reject })
    const v = new TrustVerifier({ policy: w.policy(), stateDir: w.stateDir, getBlock: async () => await stuck, now: w.now })
    const first = v.updateIndexer('alpha', built.head.bytes)
    const second = v.updateIndexer('alpha', built.head.bytes, { signal: AbortSignal.timeout(200) })
    let timer: NodeJS.Timeout | undefined
    const outcome = await Promise.race([
      second.then(() => 'resolved', (err: { code?: string }) => String(err.code)),
      new Promise<string>(resolve => { timer = setTimeout(() => resolve('still pending after 10 s'), 10_000) })
    ])
    clearTimeout(timer)
    assert.equal(outcome, 'ERR_ABORTED')
    unstick(new Error('offline'))
    await assert.rejects(first, { code: TrustErrorCode.MISSING_BLOCK })
    assert.equal(await v.state.read('alpha'), undefined)
  })

  it('issue 10: recovery from a fast-forward: a key changed in the policy resets the accepted version', async () => {
    const w = await world()
    const v = w.verifier({ indexerThreshold: 1, attestations: [] })
    const rel = await w.release({ name: NAME, version: VERSION })
    await v.updateIndexer('alpha', (await w.publishIndex('alpha', [[NAME, VERSION, World.slot(rel)]])).head.bytes)
    const honestListing = new Map(w.listings.get('alpha'))
    // a thief holding the leaked key pushes the version to the maximum (listing a package of its own)
    const evil = await w.release({ name: '@acme/evil', version: VERSION })
    const ff = await w.publishIndex('alpha', [['@acme/evil', VERSION, World.slot(evil)]], { version: Number.MAX_SAFE_INTEGER })
    await v.updateIndexer('alpha', ff.head.bytes)
    w.listings.set('alpha', honestListing)
    // the administrator replaces the key in the policy; the honest indexer goes on at version 3 with the new key
    const patch = { indexerThreshold: 1, attestations: [], indexers: [{ id: 'alpha', keys: [id(w.keys.indexerA2)] }, { id: 'beta', keys: [id(w.keys.indexerB)] }] }
    const reset = w.verifier(patch)
    const honest = await w.publishIndex('alpha', [], { key: w.keys.indexerA2, version: 3 })
    const events: Array<{ type: string, detail: unknown }> = []
    const r = await reset.updateIndexer('alpha', honest.head.bytes, { onProgress: (e) => events.push(e) })
    assert.equal(r.version, 3)
    assert.equal(r.reset, true)
    assert.equal(r.previous, Number.MAX_SAFE_INTEGER)
    assert.deepEqual(events.find(e => e.type === 'swarmpack:trust:indexer-reset')?.detail, { indexer: 'alpha', version: Number.MAX_SAFE_INTEGER })
    assert.equal((await reset.state.read('alpha'))?.version, 3)
    assert.deepEqual((await reset.checkInstallable(NAME, VERSION, rel.manifest)).indexers, ['alpha'])
    // from here on the new version is protected as usual
    const older = await w.publishIndex('alpha', [], { key: w.keys.indexerA2, version: 2 })
    await assert.rejects(reset.updateIndexer('alpha', older.head.bytes), { code: TrustErrorCode.ROLLBACK })
    assert.equal((await reset.updateIndexer('alpha', honest.head.bytes)).reset, undefined)
  })

  it('issue 10: another process holding the state lock keeps an update from writing until it lets go', async () => {
    const w = await world()
    const v = w.verifier()
    await v.updateIndexer('alpha', (await w.publishIndex('alpha', [])).head.bytes)
    const next = await w.publishIndex('alpha', [])
    // a real second process takes the lock of alpha's state the way a verifier does
    const child = spawn(process.execPath, ['-e', `
      const lockfile = require('proper-lockfile')
      lockfile.lock(process.argv[1], { realpath: false, stale: 20000 }).then(release => {
        process.stdout.write('locked\\n')
        process.stdin.once('data', () => release().then(() => process.stdout.write('released\\n')))
      })`, join(w.stateDir, 'alpha.state')], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['pipe', 'pipe', 'inherit'] })
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
    try {
      assert.equal((await lines.next()).value, 'locked')
      // verification needs a few milliseconds; the rest of the 3 s is spent waiting for the lock
      await assert.rejects(v.updateIndexer('alpha', next.head.bytes, { signal: AbortSignal.timeout(3000) }), { code: 'ERR_ABORTED' })
      assert.equal((await v.state.read('alpha'))?.version, 1)
      child.stdin.write('go\n')
      assert.equal((await lines.next()).value, 'released')
      assert.equal((await v.updateIndexer('alpha', next.head.bytes)).version, 2)
    } finally {
      child.kill()
    }
  })
})
