/**
 * Trust verification cost.
 *
 * 1. A 3-link delegation chain plus 2 attestations: opening the release, walking the chain to the
 *    policy root and counting attester identities (6 ed25519 verifications, strict dag-cbor decoding,
 *    scope checks), per second. Baseline in the same run: 6 bare ed25519 verifications of the same bytes.
 *    Also the full `checkInstallable` (state file, index root and one shard read from disk).
 * 2. Loading and verifying an index of 100 000 releases from disk (`updateIndexer`: head, signed root,
 *    every shard hashed, decoded strictly and validated) in a child process, so its peak RSS is its own.
 *    Baseline: reading and sha-256 hashing the same shard files plus a plain dag-cbor decode.
 *
 *   npm run bench -- trust
 *   SWARMPACK_TRUST_RELEASES=20000 npm run bench -- trust
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { mirrorBlockPath } from '@swarmpack/core'
import {
  TrustVerifier, buildIndex, generateSigningKey, issueDelegation, keyIdOf, openAttestation, openRelease,
  signAttestation, signRelease, signedBytes, verifyChain, verifySignature, type IndexSlot, type TrustPolicy
} from '@swarmpack/trust'

const RELEASES = Number(process.env.SWARMPACK_TRUST_RELEASES ?? 100_000)
const RUNS = Number(process.env.SWARMPACK_TRUST_RUNS ?? 5)
const T0 = Date.UTC(2026, 0, 1)
const DAY = 86_400_000
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const fmt = (n: number): string => n >= 100 ? n.toFixed(0) : n.toFixed(2)

function fakeCid (label: string): CID {
  return CID.createV1(0x71, sha256.digest(new TextEncoder().encode(label)) as Awaited<ReturnType<typeof sha256.digest>>)
}

async function timeFor (ms: number, fn: () => void | Promise<void>): Promise<number> {
  let n = 0
  const start = performance.now()
  while (performance.now() - start < ms) { await fn(); n++ }
  return n / ((performance.now() - start) / 1000)
}

async function chainBench (): Promise<void> {
  const [root, a, b, publisher, alice, bob] = await Promise.all(Array.from({ length: 6 }, async () => generateSigningKey()))
  const c1 = await issueDelegation(root, { audience: keyIdOf(a), scope: ['@acme/*'], notBefore: T0 - DAY, expires: T0 + DAY, maxDepth: 2 })
  const c2 = await issueDelegation(a, { audience: keyIdOf(b), scope: ['@acme/web*'], notBefore: T0 - DAY, expires: T0 + DAY, maxDepth: 1 })
  const c3 = await issueDelegation(b, { audience: keyIdOf(publisher), scope: ['@acme/web'], notBefore: T0 - DAY, expires: T0 + DAY, maxDepth: 0 })
  const manifest = fakeCid('manifest')
  const release = await signRelease(publisher, {
    name: '@acme/web', version: '1.0.0', variants: { 'linux-x64': { manifest, size: 123456 } }, dependencies: { '@acme/core': '^2.0.0' }
  }, [c3.bytes, c2.bytes, c1.bytes])
  const atts = await Promise.all([alice, bob].map(async k => (await signAttestation(k, { subject: { name: '@acme/web', version: '1.0.0', manifest }, kind: 'rebuilt', issued: T0 - DAY, expires: T0 + DAY })).bytes))
  const identities = new Map([[keyIdOf(alice), 'alice'], [keyIdOf(bob), 'bob']])
  const ctx = { name: '@acme/web', roots: new Map([[keyIdOf(root), ['@acme/*']]]), now: T0, skew: 60_000, revokedKeys: new Set<string>(), revokedCertificates: new Set<string>(), maxDepth: 8 }

  const verifyAll = (): void => {
    const rel = openRelease(release.bytes)
    const chain = verifyChain(rel.signer, rel.proofs, ctx)
    if (chain.links.length !== 3) throw new Error('chain')
    const seen = new Set<string>()
    for (const bytes of atts) {
      const at = openAttestation(bytes)
      if (at.subject.manifest.equals(manifest) && at.expires > T0) seen.add(identities.get(at.signer) ?? '')
    }
    if (seen.size !== 2) throw new Error('attestations')
  }
  // baseline: the six bare signature checks over the same signed bytes
  const signed = [release.bytes, c1.bytes, c2.bytes, c3.bytes, ...atts].map(bytes => {
    const env = dagCbor.decode<{ payloadType: string, payload: Uint8Array, signer: string, signature: Uint8Array }>(bytes)
    return { id: env.signer, data: signedBytes(env.payloadType, env.payload), sig: env.signature }
  })
  const bare = (): void => { for (const s of signed) if (!verifySignature(s.id, s.data, s.sig)) throw new Error('sig') }

  // end to end: checkInstallable with the index on disk
  const dir = await mkdtemp(join(tmpdir(), 'swarmpack-trust-bench-'))
  try {
    const ixKey = await generateSigningKey()
    const blocks = new Map<string, Uint8Array>()
    const mirror = join(dir, 'mirror')
    await mkdir(join(mirror, 'ipfs'), { recursive: true })
    const put = async (cid: CID, bytes: Uint8Array): Promise<void> => { blocks.set(cid.toString(), bytes); await writeFile(join(mirror, mirrorBlockPath(cid)), bytes) }
    await put(release.cid, release.bytes)
    const slot: IndexSlot = { release: release.cid, size: release.bytes.byteLength, variants: { 'linux-x64': { manifest, size: 123456 } }, dependencies: { '@acme/core': '^2.0.0' } }
    const built = await buildIndex(ixKey, { indexer: 'main', version: 1, issued: T0, expires: T0 + DAY, entries: new Map([['@acme/web', new Map([['1.0.0', slot]])]]) })
    for (const b of built.blocks) await put(b.cid, b.bytes)
    const policy: TrustPolicy = {
      indexers: [{ id: 'main', keys: [keyIdOf(ixKey)] }], indexerThreshold: 1,
      publishers: [{ pattern: '@acme/*', roots: [keyIdOf(root)] }],
      attesters: [{ id: 'alice', keys: [keyIdOf(alice)] }, { id: 'bob', keys: [keyIdOf(bob)] }],
      attestations: [{ pattern: '@acme/*', threshold: 2 }]
    }
    const v = new TrustVerifier({ policy, stateDir: join(dir, 'state'), getBlock: async cid => readFile(join(mirror, mirrorBlockPath(cid))), now: () => T0 })
    await v.updateIndexer('main', built.head.bytes)
    const e2e = async (): Promise<void> => { await v.checkInstallable('@acme/web', '1.0.0', manifest, { attestations: atts }) }

    const r: Record<string, number[]> = { verify: [], bare: [], e2e: [] }
    for (let i = 0; i < RUNS; i++) {
      r.bare.push(await timeFor(400, bare))
      r.verify.push(await timeFor(400, verifyAll))
      r.e2e.push(await timeFor(400, e2e))
    }
    const base = median(r.bare)
    console.log(`\n3-link chain + 2 attestations (${RUNS} runs, medians)`)
    console.log(`  6 bare ed25519 verifications (baseline)  ${fmt(base)} sets/s`)
    console.log(`  release + chain + attestations          ${fmt(median(r.verify))} /s   ratio ${(median(r.verify) / base).toFixed(2)}`)
    console.log(`  checkInstallable (index on disk)        ${fmt(median(r.e2e))} /s   ratio ${(median(r.e2e) / base).toFixed(2)}`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Writes an index of RELEASES releases into `dir`; returns the head bytes and the policy key. */
async function makeIndex (dir: string): Promise<{ head: Uint8Array, keyId: string, shards: number, bytes: number }> {
  const key = await generateSigningKey()
  const entries = new Map<string, Map<string, IndexSlot>>()
  const perName = 10
  for (let i = 0; i < RELEASES / perName; i++) {
    const name = `@org${i % 97}/pkg-${i}`
    const versions = new Map<string, IndexSlot>()
    for (let v = 0; v < perName; v++) {
      versions.set(`1.${v}.0`, {
        release: fakeCid(`${name}@${v}`),
        size: 2000 + v,
        variants: { 'linux-x64': { manifest: fakeCid(`${name}@${v}/l`), size: 100000 + i }, 'darwin-arm64': { manifest: fakeCid(`${name}@${v}/d`), size: 100000 + i } },
        dependencies: { [`@org${(i + 1) % 97}/pkg-${(i + 1) % (RELEASES / perName)}`]: '^1.0.0', 'left-pad': '~1.3.0' }
      })
    }
    entries.set(name, versions)
  }
  const built = await buildIndex(key, { indexer: 'big', version: 1, issued: T0, expires: T0 + DAY, entries })
  await mkdir(join(dir, 'ipfs'), { recursive: true })
  let bytes = 0
  for (const b of built.blocks) { bytes += b.bytes.byteLength; await writeFile(join(dir, mirrorBlockPath(b.cid)), b.bytes) }
  await writeFile(join(dir, 'head'), built.head.bytes)
  return { head: built.head.bytes, keyId: keyIdOf(key), shards: built.shards.length, bytes }
}

/** Child: one load of the index, printing JSON with time and memory. */
async function child (dir: string, keyId: string, mode: string): Promise<void> {
  const before = process.memoryUsage().rss
  let peakHeap = 0
  const sample = setInterval(() => { peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed) }, 5)
  const start = performance.now()
  if (mode === 'verify') {
    const v = new TrustVerifier({
      policy: { indexers: [{ id: 'big', keys: [keyId] }], indexerThreshold: 1, publishers: [] },
      stateDir: join(dir, `state-${process.pid}`),
      getBlock: async cid => readFile(join(dir, mirrorBlockPath(cid))),
      now: () => T0
    })
    const r = await v.updateIndexer('big', await readFile(join(dir, 'head')), { onProgress: () => { peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed) } })
    if (r.releases !== RELEASES) throw new Error(`expected ${RELEASES} releases, got ${r.releases}`)
    await rm(join(dir, `state-${process.pid}`), { recursive: true, force: true })
  } else {
    // baseline: read + sha-256 every block, decode it with no checks
    for (const name of await readdir(join(dir, 'ipfs'))) {
      const bytes = await readFile(join(dir, 'ipfs', name))
      createHash('sha256').update(bytes).digest()
      dagCbor.decode(bytes)
      peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)
    }
  }
  const ms = performance.now() - start
  clearInterval(sample)
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)
  console.log(JSON.stringify({ ms, peakHeap, maxRss: process.resourceUsage().maxRSS * 1024, rssBefore: before }))
}

async function indexBench (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'swarmpack-trust-index-'))
  try {
    const t = performance.now()
    const made = await makeIndex(dir)
    console.log(`\nindex of ${RELEASES} releases: ${made.shards} shards, ${(made.bytes / 1048576).toFixed(1)} MiB (built and signed in ${((performance.now() - t) / 1000).toFixed(1)} s)`)
    const self = fileURLToPath(import.meta.url)
    const runChild = (mode: string): { ms: number, peakHeap: number, maxRss: number } => {
      const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--conditions=swarmpack-src', self, '--child', dir, made.keyId, mode], { encoding: 'utf8', env: { ...process.env, SWARMPACK_TRUST_RELEASES: String(RELEASES) } })
      if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`)
      return JSON.parse(r.stdout.trim().split('\n').pop() as string)
    }
    const res: Record<string, Array<{ ms: number, peakHeap: number, maxRss: number }>> = { base: [], verify: [] }
    const runs = Math.max(3, Math.min(RUNS, 5))
    for (let i = 0; i < runs; i++) { res.base.push(runChild('baseline')); res.verify.push(runChild('verify')) }
    const mib = (n: number): string => (n / 1048576).toFixed(0)
    const row = (label: string, xs: Array<{ ms: number, peakHeap: number, maxRss: number }>): void => {
      console.log(`  ${label.padEnd(44)} ${fmt(median(xs.map(x => x.ms)))} ms   peak heap ${mib(median(xs.map(x => x.peakHeap)))} MiB   max RSS ${mib(median(xs.map(x => x.maxRss)))} MiB`)
    }
    console.log(`load ${RELEASES} releases (${runs} child runs, medians)`)
    row('read + sha-256 + plain decode (baseline)', res.base)
    row('updateIndexer: verify head, root, all shards', res.verify)
    console.log(`  ratio (time)                                 ${(median(res.verify.map(x => x.ms)) / median(res.base.map(x => x.ms))).toFixed(2)}x`)
    console.log(`  per release                                  ${(median(res.verify.map(x => x.ms)) * 1000 / RELEASES).toFixed(1)} µs`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const argv = process.argv.slice(2)
if (argv[0] === '--child') {
  await child(argv[1], argv[2], argv[3])
} else {
  await chainBench()
  await indexBench()
}
