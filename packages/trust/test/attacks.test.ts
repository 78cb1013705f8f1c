/**
 * The attack suite: each case shows the typed error and that neither the trust state nor the
 * block directory changed (hashed before and after).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { encodeCborBlock } from '@swarmpack/core'
import {
  CompiledPolicy, PayloadType, openAttestation, TrustErrorCode, TrustVerifier, acceptIndexerKey, buildIndex, signIndexHead, issueDelegation, signEnvelope,
  signRelease, type AttestationRule, type Revocations
} from '../src/index.js'
import { base36 } from 'multiformats/bases/base36'
import { base58btc } from 'multiformats/bases/base58'
import { DAY, HOUR, T0, World, cborMapInOrder, id } from './helpers.js'
import type { CID } from 'multiformats/cid'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'

const NAME = '@acme/web'
const VERSION = '1.0.0'

interface Setup { w: World, v: TrustVerifier, manifest: CID, atts: Uint8Array[] }

/** A valid world: chain root -> team -> publisher, both indexers list the release, two identities attest. */
async function setup (): Promise<Setup> {
  const w = await World.create()
  const rel = await w.release({ name: NAME, version: VERSION })
  const v = w.verifier()
  await v.updateIndexer('alpha', (await w.publishIndex('alpha', [[NAME, VERSION, World.slot(rel)]])).head.bytes)
  await v.updateIndexer('beta', (await w.publishIndex('beta', [[NAME, VERSION, World.slot(rel)]])).head.bytes)
  const atts = [await w.attest(w.keys.alice1, NAME, VERSION, rel.manifest), await w.attest(w.keys.bob, NAME, VERSION, rel.manifest)]
  return { w, v, manifest: rel.manifest, atts }
}

/** Runs `fn`, expects `code`, and checks that state and blocks are byte-for-byte unchanged. */
async function refused (w: World, fn: () => Promise<unknown>, code: string): Promise<void> {
  const before = await w.snapshot()
  await assert.rejects(fn, (err: { code?: string, message?: string }) => {
    assert.equal(err.code, code, `expected ${code}, got ${String(err.code)}: ${String(err.message)}`)
    if (process.env.TRUST_TEST_VERBOSE !== undefined) console.log(`    -> ${String(err.code)}: ${String(err.message)}`)
    return true
  })
  assert.equal(await w.snapshot(), before, 'trust state or block store changed')
}

/** An index of alpha's current listing at `version`, signed by hand (so it may carry what buildIndex refuses). */
async function handMadeAlpha (s: Setup, version: number, revocations: Revocations): Promise<Uint8Array> {
  const k = s.w.keys.indexerA
  const issued = s.w.t
  const expires = s.w.t + DAY
  const built = await buildIndex(k, { indexer: 'alpha', version, issued, expires, entries: new Map(s.w.listings.get('alpha')) })
  for (const b of built.shards) await s.w.put(b)
  const index = await signEnvelope(k, PayloadType.INDEX, { indexer: 'alpha', version, issued, expires, releases: 1, shards: built.shards.map(b => b.cid), revocations })
  await s.w.put(index)
  return (await signEnvelope(k, PayloadType.INDEX_HEAD, { indexer: 'alpha', version, index: index.cid, issued, expires })).bytes
}

/** Lists `rel` in both indexers at their next versions. */
async function listEverywhere (s: Setup, name: string, version: string, slot: Parameters<typeof World.slot>[0] | ReturnType<typeof World.slot>): Promise<void> {
  const sl = 'signed' in slot ? World.slot(slot) : slot
  await s.v.updateIndexer('alpha', (await s.w.publishIndex('alpha', [[name, version, sl]])).head.bytes)
  await s.v.updateIndexer('beta', (await s.w.publishIndex('beta', [[name, version, sl]])).head.bytes)
}

describe('trust attack suite', () => {
  const worlds: World[] = []
  const fresh = async (): Promise<Setup> => { const s = await setup(); worlds.push(s.w); return s }
  after(async () => { for (const w of worlds) await w.close() })

  let base: Setup
  before(async () => { base = await fresh() })

  it('baseline: the valid release is admitted', async () => {
    const d = await base.v.checkInstallable(NAME, VERSION, base.manifest, { attestations: base.atts })
    assert.equal(d.variant, 'linux-x64')
    assert.deepEqual(d.indexers, ['alpha', 'beta'])
    assert.deepEqual(d.attesters, ['alice', 'bob'])
    assert.equal(d.root, id(base.w.keys.root))
    assert.equal(d.chain.length, 2)
  })

  // --- tampering -----------------------------------------------------------------------
  it('01 tampered release block (bytes differ from the indexed CID)', async () => {
    const s = await fresh()
    const rel = await s.w.release({ name: '@acme/tamper', version: VERSION })
    await listEverywhere(s, '@acme/tamper', VERSION, rel)
    const forged = await signRelease(s.w.keys.publisher, { ...rel.release, dependencies: { '@acme/evil': '^1.0.0' } }, await s.w.chain())
    await s.w.put({ cid: rel.signed.cid, bytes: forged.bytes }) // a mirror serves other bytes under the CID
    await refused(s.w, async () => s.v.checkInstallable('@acme/tamper', VERSION, rel.manifest, { attestations: s.atts }), TrustErrorCode.MISMATCH)
  })

  it('02 tampered manifest (the digest of what arrived is not a listed variant)', async () => {
    const other = await base.w.manifest('tampered manifest')
    await refused(base.w, async () => base.v.checkInstallable(NAME, VERSION, other, { attestations: base.atts }), TrustErrorCode.MISMATCH)
  })

  it('03 index lists a variant the signed release does not carry', async () => {
    const s = await fresh()
    const rel = await s.w.release({ name: '@acme/variants', version: VERSION })
    const extra = await s.w.manifest('smuggled')
    const slot = { ...World.slot(rel), variants: { ...rel.release.variants, 'darwin-arm64': { manifest: extra, size: 1 } } }
    await listEverywhere(s, '@acme/variants', VERSION, slot)
    await refused(s.w, async () => s.v.checkInstallable('@acme/variants', VERSION, extra), TrustErrorCode.MISMATCH)
  })

  // --- chains --------------------------------------------------------------------------
  it('04 no chain: release signed by a key nobody delegated to', async () => {
    const s = await fresh()
    const rel = await s.w.release({ name: '@acme/orphan', version: VERSION }, s.w.keys.stranger, [])
    await listEverywhere(s, '@acme/orphan', VERSION, rel)
    await refused(s.w, async () => s.v.checkInstallable('@acme/orphan', VERSION, rel.manifest, { attestations: s.atts }), TrustErrorCode.NO_CHAIN)
  })

  it('05 scope escape: delegated for @acme/web, signs @acme/api', async () => {
    const s = await fresh()
    const rel = await s.w.release({ name: '@acme/api', version: VERSION }, s.w.keys.publisher, await s.w.chain(['@acme/*'], ['@acme/web']))
    await listEverywhere(s, '@acme/api', VERSION, rel)
    await refused(s.w, async () => s.v.checkInstallable('@acme/api', VERSION, rel.manifest), TrustErrorCode.SCOPE)
  })

  it('06 widening mid-chain: team holds @acme/web*, grants @acme/*', async () => {
    const s = await fresh()
    const rel = await s.w.release({ name: '@acme/webapp', version: VERSION }, s.w.keys.publisher, await s.w.chain(['@acme/web*'], ['@acme/*']))
    await listEverywhere(s, '@acme/webapp', VERSION, rel)
    await refused(s.w, async () => s.v.checkInstallable('@acme/webapp', VERSION, rel.manifest), TrustErrorCode.SCOPE)
  })

  it('07 widening above the root: the policy trusts the root for @acme/web only', async () => {
    const s = await fresh()
    const v = s.w.verifier({ publishers: [{ pattern: '@acme/web', roots: [id(s.w.keys.root)] }] })
    await refused(s.w, async () => v.checkInstallable(NAME, VERSION, s.manifest, { attestations: s.atts }), TrustErrorCode.SCOPE)
  })

  it('08 glob edge: `*` never crosses `/` (scope `@acme*` does not admit @acme/web)', async () => {
    const s = await fresh()
    const v = s.w.verifier({ publishers: [{ pattern: '*', roots: [id(s.w.keys.root)] }, { pattern: '@acme/*', roots: [id(s.w.keys.team)] }] })
    // the root holds only one-segment names; its grant must not reach the scoped name
    const team = await issueDelegation(s.w.keys.root, { audience: id(s.w.keys.publisher), scope: ['@acme*'], notBefore: T0 - DAY, expires: T0 + DAY })
    const rel = await s.w.release({ name: '@acme/glob', version: VERSION }, s.w.keys.publisher, [team.bytes])
    await listEverywhere(s, '@acme/glob', VERSION, rel)
    await refused(s.w, async () => v.checkInstallable('@acme/glob', VERSION, rel.manifest, { attestations: s.atts }), TrustErrorCode.SCOPE)
  })

  it('09 expired certificate', async () => {
    const s = await fresh()
    const rel = await s.w.release({ name: '@acme/old', version: VERSION }, s.w.keys.publisher, await s.w.chain(['@acme/*'], ['@acme/*'], { leafExpires: T0 + HOUR }))
    await listEverywhere(s, '@acme/old', VERSION, rel)
    s.w.t = T0 + 2 * HOUR
    await refused(s.w, async () => s.v.checkInstallable('@acme/old', VERSION, rel.manifest), TrustErrorCode.EXPIRED)
  })

  it('10 certificate not valid yet (beyond the clock skew)', async () => {
    const s = await fresh()
    const rel = await s.w.release({ name: '@acme/early', version: VERSION }, s.w.keys.publisher, await s.w.chain(['@acme/*'], ['@acme/*'], { leafNotBefore: T0 + HOUR }))
    await listEverywhere(s, '@acme/early', VERSION, rel)
    await refused(s.w, async () => s.v.checkInstallable('@acme/early', VERSION, rel.manifest), TrustErrorCode.EXPIRED)
  })

  it('11 revoked publisher key (revocation travels in the index)', async () => {
    const s = await fresh()
    await s.v.updateIndexer('alpha', (await s.w.publishIndex('alpha', [], { revocations: { keys: [id(s.w.keys.publisher)] } })).head.bytes)
    await refused(s.w, async () => s.v.checkInstallable(NAME, VERSION, s.manifest, { attestations: s.atts }), TrustErrorCode.REVOKED)
  })

  it('12 revoked certificate', async () => {
    const s = await fresh()
    const [teamCert] = await s.w.chain()
    const certId = encodeCborBlock(dagCbor.decode(teamCert)).cid.toString()
    await s.v.updateIndexer('beta', (await s.w.publishIndex('beta', [], { revocations: { certificates: [certId] } })).head.bytes)
    await refused(s.w, async () => s.v.checkInstallable(NAME, VERSION, s.manifest, { attestations: s.atts }), TrustErrorCode.REVOKED)
  })

  it('13 chain too deep for a link (team may not delegate further)', async () => {
    const s = await fresh()
    const rel = await s.w.release({ name: '@acme/deep', version: VERSION }, s.w.keys.publisher, await s.w.chain(['@acme/*'], ['@acme/*'], { teamDepth: 0 }))
    await listEverywhere(s, '@acme/deep', VERSION, rel)
    await refused(s.w, async () => s.v.checkInstallable('@acme/deep', VERSION, rel.manifest), TrustErrorCode.DEPTH)
  })

  it('14 chain longer than the policy allows', async () => {
    const v = base.w.verifier({ maxChainDepth: 1 })
    await refused(base.w, async () => v.checkInstallable(NAME, VERSION, base.manifest, { attestations: base.atts }), TrustErrorCode.DEPTH)
  })

  it('15 cyclic proofs', async () => {
    const s = await fresh()
    const k = s.w.keys
    const a = await issueDelegation(k.stranger, { audience: id(k.publisher), scope: ['@acme/*'], notBefore: T0 - DAY, expires: T0 + DAY, maxDepth: 4 })
    const b = await issueDelegation(k.publisher, { audience: id(k.stranger), scope: ['@acme/*'], notBefore: T0 - DAY, expires: T0 + DAY, maxDepth: 4 })
    const rel = await s.w.release({ name: '@acme/loop', version: VERSION }, k.publisher, [a.bytes, b.bytes])
    await listEverywhere(s, '@acme/loop', VERSION, rel)
    await refused(s.w, async () => s.v.checkInstallable('@acme/loop', VERSION, rel.manifest), TrustErrorCode.CYCLE)
  })

  // --- attestations and identities ----------------------------------------------------------
  it('16 attestation threshold not met', async () => {
    await refused(base.w, async () => base.v.checkInstallable(NAME, VERSION, base.manifest, { attestations: [base.atts[0]] }), TrustErrorCode.THRESHOLD)
  })

  it('17 one identity counted twice: duplicate attestation', async () => {
    await refused(base.w, async () => base.v.checkInstallable(NAME, VERSION, base.manifest, { attestations: [base.atts[0], base.atts[0]] }), TrustErrorCode.THRESHOLD)
  })

  it('18 one identity counted twice: two keys of one identity', async () => {
    const a2 = await base.w.attest(base.w.keys.alice2, NAME, VERSION, base.manifest)
    await refused(base.w, async () => base.v.checkInstallable(NAME, VERSION, base.manifest, { attestations: [base.atts[0], a2] }), TrustErrorCode.THRESHOLD)
  })

  it('19 one identity counted twice: one key under two identity ids (policy refused)', async () => {
    const p = base.w.policy({ attesters: [{ id: 'alice', keys: [id(base.w.keys.alice1)] }, { id: 'mallory', keys: [id(base.w.keys.alice1)] }], attestations: [] })
    await refused(base.w, async () => new CompiledPolicy(p), TrustErrorCode.POLICY)
  })

  it('20 attestation for another digest', async () => {
    const other = await base.w.manifest('some other build')
    const wrong = await base.w.attest(base.w.keys.bob, NAME, VERSION, other)
    await refused(base.w, async () => base.v.checkInstallable(NAME, VERSION, base.manifest, { attestations: [base.atts[0], wrong] }), TrustErrorCode.THRESHOLD)
  })

  it('21 attestation for the same digest under another name', async () => {
    const wrong = await base.w.attest(base.w.keys.bob, '@acme/other', VERSION, base.manifest)
    await refused(base.w, async () => base.v.checkInstallable(NAME, VERSION, base.manifest, { attestations: [base.atts[0], wrong] }), TrustErrorCode.THRESHOLD)
  })

  it('22 expired attestation', async () => {
    const stale = await base.w.attest(base.w.keys.carol, NAME, VERSION, base.manifest, 'rebuilt', T0 - HOUR / 2)
    await refused(base.w, async () => base.v.checkInstallable(NAME, VERSION, base.manifest, { attestations: [base.atts[0], stale] }), TrustErrorCode.THRESHOLD)
  })

  // --- indexers ------------------------------------------------------------------------
  it('23 indexers disagree on the release', async () => {
    const s = await fresh()
    const one = await s.w.release({ name: '@acme/split', version: VERSION })
    const two = await s.w.release({ name: '@acme/split', version: VERSION, dependencies: { '@acme/web': '^1.0.0' } })
    await s.v.updateIndexer('alpha', (await s.w.publishIndex('alpha', [['@acme/split', VERSION, World.slot(one)]])).head.bytes)
    await s.v.updateIndexer('beta', (await s.w.publishIndex('beta', [['@acme/split', VERSION, World.slot(two)]])).head.bytes)
    await refused(s.w, async () => s.v.checkInstallable('@acme/split', VERSION, one.manifest), TrustErrorCode.CONFLICT)
  })

  it('24 too few indexers list it', async () => {
    const s = await fresh()
    const rel = await s.w.release({ name: '@acme/lonely', version: VERSION })
    await s.v.updateIndexer('alpha', (await s.w.publishIndex('alpha', [['@acme/lonely', VERSION, World.slot(rel)]])).head.bytes)
    await refused(s.w, async () => s.v.checkInstallable('@acme/lonely', VERSION, rel.manifest), TrustErrorCode.THRESHOLD)
  })

  it('25 rollback: an older head after a newer one', async () => {
    const s = await fresh()
    const old = await s.w.publishIndex('alpha', [], { version: 5 })
    const newer = await s.w.publishIndex('alpha', [], { version: 6 })
    await s.v.updateIndexer('alpha', newer.head.bytes)
    await refused(s.w, async () => s.v.updateIndexer('alpha', old.head.bytes), TrustErrorCode.ROLLBACK)
  })

  it('26 freeze: an expired head is refused on update', async () => {
    const s = await fresh()
    const head = await s.w.publishIndex('alpha', [], { expires: T0 + HOUR })
    s.w.t = T0 + 2 * HOUR
    await refused(s.w, async () => s.v.updateIndexer('alpha', head.head.bytes), TrustErrorCode.FREEZE)
  })

  it('27 freeze: no fresh head arrives and the stored one expires', async () => {
    const s = await fresh()
    s.w.t = T0 + 8 * DAY
    await refused(s.w, async () => s.v.checkInstallable(NAME, VERSION, s.manifest, { attestations: s.atts }), TrustErrorCode.FREEZE)
  })

  it('28 equivocation: two different heads with one version (kept as evidence)', async () => {
    const s = await fresh()
    const a = await s.w.publishIndex('alpha', [], { version: 2 })
    const b = await s.w.publishIndex('alpha', [['@acme/extra', VERSION, { removed: 'never shipped' }]], { version: 2 })
    await s.v.updateIndexer('alpha', a.head.bytes)
    await refused(s.w, async () => s.v.updateIndexer('alpha', b.head.bytes), TrustErrorCode.EQUIVOCATION)
    const evidence = await s.v.state.evidence('alpha')
    assert.equal(evidence.length, 1)
    assert.deepEqual(evidence[0].heads[1], b.head.bytes)
    // and the equivocating indexer no longer counts
    await refused(s.w, async () => s.v.checkInstallable(NAME, VERSION, s.manifest, { attestations: s.atts }), TrustErrorCode.EQUIVOCATION)
  })

  it('29 an index that silently drops a package', async () => {
    const s = await fresh()
    const dropped = await s.w.publishIndex('alpha', [[NAME, VERSION, undefined]])
    await refused(s.w, async () => s.v.updateIndexer('alpha', dropped.head.bytes), TrustErrorCode.DROPPED)
  })

  it('30 an index that silently rewrites a release', async () => {
    const s = await fresh()
    const other = await s.w.release({ name: NAME, version: VERSION, dependencies: { '@acme/evil': '*' } })
    const rewritten = await s.w.publishIndex('alpha', [[NAME, VERSION, World.slot(other)]])
    await refused(s.w, async () => s.v.updateIndexer('alpha', rewritten.head.bytes), TrustErrorCode.DROPPED)
  })

  it('31 an index that hides a name in the wrong shard', async () => {
    const s = await fresh()
    // build an honest 2-shard index, then move an entry into the other shard and re-sign
    const k = s.w.keys.indexerA
    const entries = new Map(s.w.listings.get('alpha'))
    const built = await buildIndex(k, { indexer: 'alpha', version: 9, issued: s.w.t, expires: s.w.t + DAY, entries, shards: 2 })
    const shardBlocks = built.shards.map(b => dagCbor.decode<{ type: string, bucket: number, of: number, entries: Record<string, unknown> }>(b.bytes))
    const from = shardBlocks.findIndex(sh => NAME in sh.entries)
    const to = 1 - from
    shardBlocks[to].entries[NAME] = shardBlocks[from].entries[NAME]
    delete shardBlocks[from].entries[NAME]
    const reencoded = shardBlocks.map(sh => encodeCborBlock(sh))
    for (const b of reencoded) await s.w.put(b)
    const root = { indexer: 'alpha', version: 9, issued: s.w.t, expires: s.w.t + DAY, releases: 1, shards: reencoded.map(b => b.cid), revocations: { keys: [], certificates: [] } }
    const index = await signEnvelope(k, PayloadType.INDEX, root)
    await s.w.put(index)
    const head = await signEnvelope(k, PayloadType.INDEX_HEAD, { indexer: 'alpha', version: 9, index: index.cid, issued: s.w.t, expires: s.w.t + DAY })
    await refused(s.w, async () => s.v.updateIndexer('alpha', head.bytes), TrustErrorCode.MALFORMED)
  })

  it('32 a tampered shard block', async () => {
    const s = await fresh()
    const next = await s.w.publishIndex('alpha', [['@acme/more', VERSION, { removed: 'test' }]])
    await s.w.put({ cid: next.shards[0].cid, bytes: encodeCborBlock({ type: 'swarmpack/index-shard@1', bucket: 0, of: 1, entries: {} }).bytes })
    await refused(s.w, async () => s.v.updateIndexer('alpha', next.head.bytes), TrustErrorCode.MISMATCH)
  })

  it('33 a head signed by a key the indexer does not own', async () => {
    const s = await fresh()
    const forged = await s.w.publishIndex('alpha', [], { key: s.w.keys.stranger })
    await refused(s.w, async () => s.v.updateIndexer('alpha', forged.head.bytes), TrustErrorCode.BAD_SIGNATURE)
  })

  // --- envelopes and encodings ---------------------------------------------------------
  it('34 payload type confusion: a signed release offered as an index head', async () => {
    const s = await fresh()
    const rel = await s.w.release({ name: '@acme/confused', version: VERSION }, s.w.keys.indexerA, [])
    await refused(s.w, async () => s.v.updateIndexer('alpha', rel.signed.bytes), TrustErrorCode.PAYLOAD_TYPE)
  })

  it('35 payload type confusion: an envelope relabelled keeps its signature but fails', async () => {
    const s = await fresh()
    const head = await s.w.publishIndex('alpha', [])
    const env = dagCbor.decode<Record<string, unknown>>(head.head.bytes)
    const relabelled = dagCbor.encode({ ...env, payloadType: PayloadType.INDEX })
    const rebadged = dagCbor.encode({ ...env, payloadType: PayloadType.INDEX_HEAD + 'x' })
    await refused(s.w, async () => s.v.updateIndexer('alpha', relabelled), TrustErrorCode.PAYLOAD_TYPE)
    await refused(s.w, async () => s.v.updateIndexer('alpha', rebadged), TrustErrorCode.PAYLOAD_TYPE)
  })

  it('36 malformed signature (one bit flipped)', async () => {
    const s = await fresh()
    const head = await s.w.publishIndex('alpha', [])
    const env = dagCbor.decode<Record<string, Uint8Array>>(head.head.bytes)
    const sig = env.signature.slice()
    sig[10] ^= 1
    await refused(s.w, async () => s.v.updateIndexer('alpha', dagCbor.encode({ ...env, signature: sig })), TrustErrorCode.BAD_SIGNATURE)
    await refused(s.w, async () => s.v.updateIndexer('alpha', dagCbor.encode({ ...env, signature: sig.subarray(0, 63) })), TrustErrorCode.BAD_SIGNATURE)
  })

  it('37 non-canonical signature (malleated S + L)', async () => {
    const s = await fresh()
    const head = await s.w.publishIndex('alpha', [])
    const env = dagCbor.decode<Record<string, Uint8Array>>(head.head.bytes)
    const L = (1n << 252n) + 27742317777372353535851937790883648493n
    let S = 0n
    for (let i = 63; i >= 32; i--) S = (S << 8n) | BigInt(env.signature[i])
    let S2 = S + L
    const sig = env.signature.slice()
    for (let i = 32; i < 64; i++) { sig[i] = Number(S2 & 255n); S2 >>= 8n }
    await refused(s.w, async () => s.v.updateIndexer('alpha', dagCbor.encode({ ...env, signature: sig })), TrustErrorCode.BAD_SIGNATURE)
  })

  it('38 non-canonical CBOR (map keys out of order, same signature)', async () => {
    const s = await fresh()
    const head = await s.w.publishIndex('alpha', [])
    const env = dagCbor.decode<{ payloadType: string, payload: Uint8Array, signer: string, signature: Uint8Array }>(head.head.bytes)
    const shuffled = cborMapInOrder([['signature', env.signature], ['signer', env.signer], ['payload', env.payload], ['payloadType', env.payloadType]])
    await refused(s.w, async () => s.v.updateIndexer('alpha', shuffled), TrustErrorCode.MALFORMED)
  })

  it('39 oversized envelope is refused before decoding', async () => {
    const s = await fresh()
    const huge = new Uint8Array(9 * 1024 + 1)
    huge[0] = 0xa4 // looks like a map; never parsed
    await refused(s.w, async () => s.v.updateIndexer('alpha', huge), TrustErrorCode.MALFORMED)
  })

  it('40 deeply nested CBOR payload', async () => {
    const s = await fresh()
    let deep: unknown = 'x'
    for (let i = 0; i < 200; i++) deep = [deep]
    const signed = await signEnvelope(s.w.keys.indexerA, PayloadType.INDEX_HEAD, { indexer: 'alpha', nested: deep })
    await refused(s.w, async () => s.v.updateIndexer('alpha', signed.bytes), TrustErrorCode.MALFORMED)
  })

  it('40b a 100 000-deep CBOR bomb among attestations is cut at the header scan and not counted', async () => {
    const bomb = new Uint8Array(100_000).fill(0x81) // [[[[...: would exhaust a recursive decoder's stack
    assert.throws(() => openAttestation(bomb), (err: { code?: string }) => err.code === TrustErrorCode.MALFORMED)
    await refused(base.w, async () => base.v.checkInstallable(NAME, VERSION, base.manifest, { attestations: [bomb, base.atts[0]] }), TrustErrorCode.THRESHOLD)
  })

  it('41 a signed object with an unknown extra field', async () => {
    const s = await fresh()
    const head = await signEnvelope(s.w.keys.indexerA, PayloadType.INDEX_HEAD, { indexer: 'alpha', version: 7, index: s.manifest, issued: T0, expires: T0 + DAY, trustMe: true })
    await refused(s.w, async () => s.v.updateIndexer('alpha', head.bytes), TrustErrorCode.MALFORMED)
  })

  it('42 a removed (tombstoned) release is not installable', async () => {
    const s = await fresh()
    await listEverywhere(s, NAME, VERSION, { removed: 'CVE-2026-0001' })
    await refused(s.w, async () => s.v.checkInstallable(NAME, VERSION, s.manifest, { attestations: s.atts }), TrustErrorCode.NOT_LISTED)
  })

  it('43 small-order signer key with a "universal" signature', async () => {
    const s = await fresh()
    const identityPoint = new Uint8Array(32)
    identityPoint[0] = 1 // y = 1: the neutral element; (R = neutral, S = 0) satisfies the equation for every message
    const weakId = peerIdFromPublicKey(publicKeyFromRaw(identityPoint)).toString()
    const sig = new Uint8Array(64)
    sig[0] = 1
    const payload = dagCbor.encode({ indexer: 'alpha', version: 50, index: s.manifest, issued: T0, expires: T0 + DAY })
    const forged = dagCbor.encode({ payloadType: PayloadType.INDEX_HEAD, payload, signer: weakId, signature: sig })
    const v = s.w.verifier({ indexers: [{ id: 'alpha', keys: [id(s.w.keys.indexerA)] }, { id: 'beta', keys: [id(s.w.keys.indexerB)] }] })
    await refused(s.w, async () => v.updateIndexer('alpha', forged), TrustErrorCode.MALFORMED)
    await refused(s.w, async () => new CompiledPolicy(s.w.policy({ indexers: [{ id: 'alpha', keys: [weakId] }], indexerThreshold: 1 })), TrustErrorCode.POLICY)
  })

  it('44 mix-and-match: a fresh head naming an older index', async () => {
    const s = await fresh()
    const older = await s.w.publishIndex('alpha', [], { version: 2 })
    await s.v.updateIndexer('alpha', older.head.bytes)
    const head = await signIndexHead(s.w.keys.indexerA, { indexer: 'alpha', version: 3, index: older.index.cid, issued: s.w.t, expires: s.w.t + DAY })
    await refused(s.w, async () => s.v.updateIndexer('alpha', head.bytes), TrustErrorCode.MISMATCH)
  })

  it('45 a head issued in the future (beyond the clock skew)', async () => {
    const s = await fresh()
    s.w.t = T0 + HOUR
    const future = await s.w.publishIndex('alpha', [])
    s.w.t = T0
    await refused(s.w, async () => s.v.updateIndexer('alpha', future.head.bytes), TrustErrorCode.EXPIRED)
  })

  it('46 an honest head naming an index signed by someone else', async () => {
    const s = await fresh()
    const foreign = await buildIndex(s.w.keys.stranger, { indexer: 'alpha', version: 2, issued: s.w.t, expires: s.w.t + DAY, entries: new Map(s.w.listings.get('alpha')) })
    for (const b of foreign.blocks) await s.w.put(b)
    const head = await signIndexHead(s.w.keys.indexerA, { indexer: 'alpha', version: 2, index: foreign.index.cid, issued: s.w.t, expires: s.w.t + DAY })
    await refused(s.w, async () => s.v.updateIndexer('alpha', head.bytes), TrustErrorCode.BAD_SIGNATURE)
  })

  it('47 a head of another followed indexer replayed under this one', async () => {
    const s = await fresh()
    const betaHead = await s.w.publishIndex('beta', [])
    const v = s.w.verifier({ indexers: [{ id: 'alpha', keys: [id(s.w.keys.indexerA), id(s.w.keys.indexerB)] }], indexerThreshold: 1 })
    // even when a key is (mis)configured for both, the head names the indexer it was signed for
    await refused(s.w, async () => v.updateIndexer('alpha', betaHead.head.bytes), TrustErrorCode.MISMATCH)
  })

  // --- issue #10 --------------------------------------------------------------------------
  it('48 freeze: the accepted head offered again after it expired is a freeze, not "up to date"', async () => {
    const s = await fresh()
    const head = await s.w.publishIndex('alpha', [], { expires: s.w.t + HOUR })
    await s.v.updateIndexer('alpha', head.head.bytes)
    s.w.t += 2 * HOUR
    await refused(s.w, async () => s.v.updateIndexer('alpha', head.head.bytes), TrustErrorCode.FREEZE)
  })

  it('49 a certificate revocation spelled in another multibase is refused, not ignored', async () => {
    const s = await fresh()
    const [teamCert] = await s.w.chain()
    const cert = encodeCborBlock(dagCbor.decode(teamCert)).cid
    for (const [i, spelled] of [cert.toString(base58btc), cert.toString(base36), cert.toV1().toString().toUpperCase()].entries()) {
      const head = await handMadeAlpha(s, 2 + i, { keys: [], certificates: [spelled] })
      await refused(s.w, async () => s.v.updateIndexer('alpha', head), TrustErrorCode.MALFORMED)
    }
    await assert.rejects(buildIndex(s.w.keys.indexerA, { indexer: 'alpha', version: 9, issued: s.w.t, expires: s.w.t + DAY, entries: new Map(), revocations: { certificates: [cert.toString(base58btc)] } }), { code: TrustErrorCode.MALFORMED })
    // the one canonical spelling (base32 CIDv1, as certificate ids are written) revokes
    await s.v.updateIndexer('alpha', await handMadeAlpha(s, 5, { keys: [], certificates: [cert.toString()] }))
    await refused(s.w, async () => s.v.checkInstallable(NAME, VERSION, s.manifest, { attestations: s.atts }), TrustErrorCode.REVOKED)
  })

  it('50 a revocation counts even when the indexer that published it has equivocated', async () => {
    const s = await fresh()
    const revoking = await s.w.publishIndex('alpha', [], { version: 2, revocations: { keys: [id(s.w.keys.publisher)] } })
    await s.v.updateIndexer('alpha', revoking.head.bytes)
    const other = await s.w.publishIndex('alpha', [['@acme/extra', VERSION, { removed: 'never shipped' }]], { version: 2 })
    await assert.rejects(s.v.updateIndexer('alpha', other.head.bytes), { code: TrustErrorCode.EQUIVOCATION })
    // beta alone would be enough, but alpha's revocation of the publisher still holds
    const v = s.w.verifier({ indexerThreshold: 1 })
    await refused(s.w, async () => v.checkInstallable(NAME, VERSION, s.manifest, { attestations: s.atts }), TrustErrorCode.REVOKED)
  })

  it('51 two verifiers on one state directory: the drop check runs against the state on disk', async () => {
    const s = await fresh()
    const rel = await s.w.release({ name: '@acme/kept', version: VERSION })
    const v2 = await s.w.publishIndex('alpha', [['@acme/kept', VERSION, World.slot(rel)]])
    const v3 = await s.w.publishIndex('alpha', [['@acme/kept', VERSION, undefined], ['@acme/other', VERSION, { removed: 'test' }]])
    // B reads the state (version 1) and then waits for its first block until A has accepted version 2
    let open!: () => void
    const gate = new Promise<void>(resolve => { open = resolve })
    let entered!: () => void
    const waiting = new Promise<void>(resolve => { entered = resolve })
    const b = new TrustVerifier({ policy: s.w.policy(), stateDir: s.w.stateDir, getBlock: async (cid) => { entered(); await gate; return await s.w.getBlock(cid) }, now: s.w.now })
    const pending = b.updateIndexer('alpha', v3.head.bytes)
    await waiting
    await s.v.updateIndexer('alpha', v2.head.bytes)
    open()
    await assert.rejects(pending, { code: TrustErrorCode.DROPPED })
    assert.equal((await s.v.state.read('alpha'))?.version, 2)
  })

  it('52 a key hand-over that the new key did not co-sign', async () => {
    const s = await fresh()
    const k = s.w.keys
    const built = await s.w.publishIndex('alpha', [], { version: 2 })
    const head = { indexer: 'alpha', version: 2, index: built.index.cid, issued: s.w.t, expires: s.w.t + DAY, nextKeys: [id(k.stranger)] }
    // signed by alpha's current key only, handing over to a key nobody showed they hold
    const bare = await signEnvelope(k.indexerA, PayloadType.INDEX_HEAD, head)
    await refused(s.w, async () => s.v.updateIndexer('alpha', bare.bytes), TrustErrorCode.BAD_SIGNATURE)
    // a co-signature by another key than the one named, or for another version, does not count
    const byOther = await acceptIndexerKey(k.carol, { indexer: 'alpha', version: 2 })
    const otherVersion = await acceptIndexerKey(k.stranger, { indexer: 'alpha', version: 1 })
    const otherIndexer = await acceptIndexerKey(k.stranger, { indexer: 'beta', version: 2 })
    for (const proof of [byOther, otherVersion, otherIndexer]) {
      const forged = await signEnvelope(k.indexerA, PayloadType.INDEX_HEAD, { ...head, nextKeyProofs: [proof.bytes] })
      await refused(s.w, async () => s.v.updateIndexer('alpha', forged.bytes), TrustErrorCode.BAD_SIGNATURE)
    }
    // every named key must co-sign: two keys, one proof
    const two = await acceptIndexerKey(k.stranger, { indexer: 'alpha', version: 2 })
    const half = await signEnvelope(k.indexerA, PayloadType.INDEX_HEAD, { ...head, nextKeys: [id(k.stranger), id(k.indexerA2)], nextKeyProofs: [two.bytes] })
    await refused(s.w, async () => s.v.updateIndexer('alpha', half.bytes), TrustErrorCode.BAD_SIGNATURE)
  })

  it('53 attestation rules do not depend on their order: every matching rule must hold', async () => {
    const rebuilt = base.atts[0] // alice, rebuilt
    const mirror = await base.w.attest(base.w.keys.bob, NAME, VERSION, base.manifest, 'mirror-matched')
    const strict: AttestationRule = { pattern: '@acme/*', threshold: 2, kinds: ['rebuilt'] }
    const loose: AttestationRule = { pattern: '@acme/web', threshold: 2 }
    const orders = [[strict, loose], [loose, strict]]
    for (const rules of orders) {
      const v = base.w.verifier({ attestations: rules })
      await refused(base.w, async () => v.checkInstallable(NAME, VERSION, base.manifest, { attestations: [rebuilt, mirror] }), TrustErrorCode.THRESHOLD)
    }
    // a second rebuilt attestation satisfies both rules, in either order; every counted identity is reported
    const carol = await base.w.attest(base.w.keys.carol, NAME, VERSION, base.manifest)
    for (const rules of orders) {
      const v = base.w.verifier({ attestations: rules })
      assert.deepEqual((await v.checkInstallable(NAME, VERSION, base.manifest, { attestations: [rebuilt, mirror, carol] })).attesters, ['alice', 'bob', 'carol'])
    }
  })
})
