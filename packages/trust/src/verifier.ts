/**
 * The trust verifier: accepts index heads into the persisted state (rollback, freeze, equivocation,
 * silent-drop and rotation rules) and answers the one question the installer asks:
 * may name@version, whose manifest has this CID, be installed, and if not, which rule failed?
 *
 * Every time comes from the injected `now()`, so tests move a fake clock instead of sleeping.
 * A check never writes to the block store, and a refused head never changes the state file.
 */
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import { raceSignal } from 'race-signal'
import { equals } from 'uint8arrays/equals'
import { SwarmpackError, throwIfAborted } from '@swarmpack/core'
import { openAttestation } from './attestation.js'
import { verifyChain, type VerifiedDelegation } from './delegation.js'
import { TrustErrorCode, trustError } from './errors.js'
import { IndexView, assertNoDrops, fetchVerified, isTombstone, openIndexHead, type GetBlock, type IndexEntry, type VerifiedHead } from './index-record.js'
import type { KeyId } from './keys.js'
import { assertName, assertVersion } from './names.js'
import { CompiledPolicy, type AttestationRule, type IndexerPolicy, type TrustPolicy } from './policy.js'
import { openRelease, type Variant } from './release.js'
import { TrustStateStore, type IndexerState } from './state.js'

const log = logger('swarmpack:trust')

export type TrustProgressEvents =
  ProgressEvent<'swarmpack:trust:index-shard', { indexer: string, bucket: number, of: number }> |
  ProgressEvent<'swarmpack:trust:index-accepted', { indexer: string, version: number }> |
  /** The policy's keys for the indexer changed: the state accepted at `version` was set aside. */
  ProgressEvent<'swarmpack:trust:indexer-reset', { indexer: string, version: number }>

export interface TrustVerifierOptions {
  policy: TrustPolicy | CompiledPolicy
  /** Directory of the persisted per-indexer state. */
  stateDir: string
  /** Reads blocks (index, shards, releases). The verifier checks each against its CID. */
  getBlock: GetBlock
  /** Milliseconds since the epoch; `Date.now` unless injected. */
  now?: () => number
}

export interface UpdateOptions extends ProgressOptions<TrustProgressEvents> {
  signal?: AbortSignal
}

export interface UpdateResult {
  indexer: string
  version: number
  previous?: number
  /** False when the head was the one already stored. */
  changed: boolean
  /** Keys the indexer signs with from now on. */
  keys: KeyId[]
  releases: number
  /** Set when the policy's keys for the indexer had changed: the state at `previous` was set aside. */
  reset?: true
}

export interface CheckOptions {
  /** Signed attestations gathered for this release (bytes as received). */
  attestations?: Uint8Array[]
  /** Require this variant key (otherwise the variant is the one whose manifest is `digest`). */
  variant?: string
  signal?: AbortSignal
}

/** Why a followed indexer did not contribute to a decision. */
export interface IndexerSkip { indexer: string, code: string, reason: string }

export interface InstallDecision {
  name: string
  version: string
  variant: string
  manifest: CID
  size: number
  release: CID
  dependencies: Record<string, string>
  publisher: KeyId
  root: KeyId
  /** Certificate ids from the publisher's up to the root's. */
  chain: string[]
  /** Indexers that list exactly this release. */
  indexers: string[]
  /** Attester identities counted. */
  attesters: string[]
  skipped: IndexerSkip[]
}

const MAX_ATTESTATIONS = 256
/** Skip reasons that explain a missing vote better than "threshold not met", strongest first. */
const SKIP_PRECEDENCE: string[] = [
  TrustErrorCode.EQUIVOCATION, TrustErrorCode.FREEZE, TrustErrorCode.MISMATCH, TrustErrorCode.BAD_SIGNATURE,
  TrustErrorCode.PAYLOAD_TYPE, TrustErrorCode.MALFORMED, TrustErrorCode.MISSING_BLOCK
]

function sameVariants (a: Record<string, Variant>, b: Record<string, Variant>): boolean {
  const ka = Object.keys(a).sort()
  const kb = Object.keys(b).sort()
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k].size === b[k].size && a[k].manifest.equals(b[k].manifest))
}

function sameKeys (a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every(k => b.includes(k))
}

/** Same state file contents (as far as the update rules look at them). */
function sameState (a: IndexerState | undefined, b: IndexerState | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  return a.version === b.version && equals(a.head, b.head) && sameKeys(a.keys, b.keys) && sameKeys(a.policyKeys, b.policyKeys)
}

function sameRecord (a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort()
  const kb = Object.keys(b).sort()
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k])
}

export class TrustVerifier {
  readonly policy: CompiledPolicy
  readonly state: TrustStateStore
  private readonly getBlock: GetBlock
  private readonly now: () => number
  private readonly locks = new Map<string, Promise<unknown>>()
  /** Verified index views by index CID: content-addressed, so a cached view can never go stale. */
  private readonly views = new Map<string, IndexView>()

  constructor (options: TrustVerifierOptions) {
    this.policy = options.policy instanceof CompiledPolicy ? options.policy : new CompiledPolicy(options.policy)
    this.state = new TrustStateStore(options.stateDir)
    this.getBlock = options.getBlock
    this.now = options.now ?? Date.now
  }

  /**
   * One update per indexer at a time in this verifier, so two heads never race for the state file
   * (other processes are kept out by the state lock). A call waiting its turn still honours its
   * own signal: a stuck update ahead of it (a block that never comes) cannot wedge later callers.
   */
  private async exclusive<T> (indexer: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    const ahead = this.locks.get(indexer) ?? Promise.resolve()
    let done!: () => void
    const mine = new Promise<void>(resolve => { done = resolve })
    const tail = ahead.then(async () => await mine)
    this.locks.set(indexer, tail)
    try {
      await raceSignal(ahead, signal).catch((err: unknown) => { throwIfAborted(signal); throw err })
      return await fn()
    } finally {
      done()
      if (this.locks.get(indexer) === tail) this.locks.delete(indexer)
    }
  }

  /**
   * Verifies a head record (and the whole index it names) and, when every rule holds, stores it
   * as the indexer's newest state. Throws ROLLBACK, FREEZE, EQUIVOCATION (after recording the two
   * heads as evidence), DROPPED, BAD_SIGNATURE, ... and leaves the state file untouched.
   */
  async updateIndexer (indexer: string, headBytes: Uint8Array, options: UpdateOptions = {}): Promise<UpdateResult> {
    return this.exclusive(indexer, options.signal, async () => this.update(indexer, headBytes, options))
  }

  /**
   * The stored state as far as it still binds: a state written under other policy keys for the
   * indexer does not (the administrator's out-of-band reset, as TUF's root rotation): its keys,
   * its version and its index are set aside and the policy's keys start afresh.
   */
  private binding (stored: IndexerState | undefined, ix: IndexerPolicy): IndexerState | undefined {
    return stored !== undefined && sameKeys(stored.policyKeys, ix.keys) ? stored : undefined
  }

  private async update (indexer: string, headBytes: Uint8Array, options: UpdateOptions): Promise<UpdateResult> {
    const { signal } = options
    throwIfAborted(signal)
    const ix = this.policy.indexer(indexer)
    if (ix === undefined) throw trustError(TrustErrorCode.POLICY, `indexer ${indexer} is not followed`, { indexer })
    const onDisk = await this.state.read(indexer)
    const stored = this.binding(onDisk, ix)
    const head = openIndexHead(headBytes)
    if (!(stored?.keys ?? ix.keys).includes(head.signer)) {
      throw trustError(TrustErrorCode.BAD_SIGNATURE, `head signed by ${head.signer}, which is not a key of indexer ${indexer}`, { indexer, signer: head.signer })
    }
    if (head.indexer !== indexer) throw trustError(TrustErrorCode.MISMATCH, `head is for indexer ${head.indexer}, not ${indexer}`, { indexer, got: head.indexer })
    const now = this.now()
    const skew = this.policy.skew
    // the validity window first: an expired head is a freeze even when it is the one already stored
    if (now + skew < head.issued) throw trustError(TrustErrorCode.EXPIRED, `head of ${indexer} is issued in the future`, { indexer, issued: head.issued, now })
    if (now - skew >= head.expires) throw trustError(TrustErrorCode.FREEZE, `head version ${head.version} of ${indexer} expired`, { indexer, expires: head.expires, now })

    if (await this.judge(indexer, stored, head, headBytes, now) === 'same') return await this.unchanged(indexer, stored as IndexerState, now, signal)
    const view = await this.verifyIndex(indexer, head, stored?.keys ?? ix.keys, now, options)
    if (stored !== undefined) await assertNoDrops(await IndexView.load(stored.index, this.getBlock, signal), view, signal)
    throwIfAborted(signal)

    const lock = await this.state.lock(indexer, signal)
    try {
      // another verifier sharing the state directory may have moved on while we verified: every
      // rule is checked again against the state on disk, under the lock, before anything is written
      const latestOnDisk = await this.state.read(indexer)
      const latest = this.binding(latestOnDisk, ix)
      if (!sameState(latestOnDisk, onDisk)) {
        if (!(latest?.keys ?? ix.keys).includes(head.signer) || !(latest?.keys ?? ix.keys).includes(view.root.signer)) {
          throw trustError(TrustErrorCode.BAD_SIGNATURE, `keys of indexer ${indexer} changed during the update`, { indexer, signer: head.signer })
        }
        if (await this.judge(indexer, latest, head, headBytes, now) === 'same') return await this.unchanged(indexer, latest as IndexerState, now, signal)
        if (latest !== undefined) await assertNoDrops(await IndexView.load(latest.index, this.getBlock, signal), view, signal)
      }
      throwIfAborted(signal)
      const lost = lock.lost()
      if (lost !== undefined) throw trustError(TrustErrorCode.STATE_LOCKED, `lost the state lock of ${indexer} during the update`, { indexer }, lost)
      const next: IndexerState = { indexer, version: head.version, head: headBytes, index: head.index, keys: head.nextKeys ?? latest?.keys ?? ix.keys, policyKeys: [...ix.keys], updated: now }
      await this.state.write(next)
      const result: UpdateResult = { indexer, version: head.version, changed: true, keys: next.keys, releases: view.root.releases }
      if (latestOnDisk !== undefined) result.previous = latestOnDisk.version
      if (latestOnDisk !== undefined && latest === undefined) {
        result.reset = true
        log.error('policy keys of indexer %s changed: accepted version reset from %d to %d', indexer, latestOnDisk.version, head.version)
        options.onProgress?.(new CustomProgressEvent('swarmpack:trust:indexer-reset', { indexer, version: latestOnDisk.version }))
      }
      log('accepted %s version %d (%d releases)', indexer, head.version, view.root.releases)
      options.onProgress?.(new CustomProgressEvent('swarmpack:trust:index-accepted', { indexer, version: head.version }))
      return result
    } finally {
      await lock.release()
    }
  }

  /**
   * Places a head against a stored state: 'same' (the very head already accepted), 'newer', or
   * throws ROLLBACK (older version) or EQUIVOCATION (another head with the same version, recorded
   * as evidence). A head once signed is final: no other head for its version is ever accepted.
   */
  private async judge (indexer: string, stored: IndexerState | undefined, head: VerifiedHead, headBytes: Uint8Array, now: number): Promise<'same' | 'newer'> {
    if (stored === undefined) return 'newer'
    if (head.version < stored.version) {
      throw trustError(TrustErrorCode.ROLLBACK, `head version ${head.version} of ${indexer} is older than the accepted ${stored.version}`, { indexer, version: head.version, stored: stored.version })
    }
    if (head.version > stored.version) return 'newer'
    if (equals(openIndexHead(stored.head).payload, head.payload)) return 'same'
    const path = await this.state.recordEvidence({ indexer, version: head.version, heads: [stored.head, headBytes], detected: now })
    log.error('indexer %s equivocated at version %d; evidence in %s', indexer, head.version, path)
    throw trustError(TrustErrorCode.EQUIVOCATION, `indexer ${indexer} signed two different heads with version ${head.version}`, { indexer, version: head.version, evidence: path })
  }

  /** The head offered is the one stored: nothing to write, but its index must still be current. */
  private async unchanged (indexer: string, stored: IndexerState, now: number, signal?: AbortSignal): Promise<UpdateResult> {
    const root = (await this.view(stored.index, signal)).root
    if (now - this.policy.skew >= root.expires) throw trustError(TrustErrorCode.FREEZE, `index version ${root.version} of ${indexer} expired`, { indexer, expires: root.expires, now })
    return { indexer, version: stored.version, previous: stored.version, changed: false, keys: stored.keys, releases: root.releases }
  }

  /** Loads and checks the index a new head names: signer, indexer and version, expiry, every shard. */
  private async verifyIndex (indexer: string, head: VerifiedHead, keys: KeyId[], now: number, options: UpdateOptions): Promise<IndexView> {
    const { signal } = options
    const view = await IndexView.load(head.index, this.getBlock, signal)
    const root = view.root
    if (!keys.includes(root.signer)) throw trustError(TrustErrorCode.BAD_SIGNATURE, `index signed by ${root.signer}, which is not a key of indexer ${indexer}`, { indexer, signer: root.signer })
    if (root.indexer !== indexer || root.version !== head.version) {
      throw trustError(TrustErrorCode.MISMATCH, `index ${root.indexer}@${root.version} does not match head ${indexer}@${head.version}`, { indexer, version: head.version })
    }
    if (now - this.policy.skew >= root.expires) throw trustError(TrustErrorCode.FREEZE, `index version ${root.version} of ${indexer} expired`, { indexer, expires: root.expires, now })
    let bucket = 0
    for await (const _ of view.verifyAll(signal)) {
      options.onProgress?.(new CustomProgressEvent('swarmpack:trust:index-shard', { indexer, bucket: bucket++, of: root.shards.length }))
    }
    return view
  }

  /**
   * May `name@version`, whose manifest root is `digest`, be installed? Resolves with the decision
   * and its grounds, or throws a SwarmpackError whose code names the rule that failed.
   */
  async checkInstallable (name: string, version: string, digest: CID | string, options: CheckOptions = {}): Promise<InstallDecision> {
    const { signal } = options
    assertName(name)
    assertVersion(version)
    let manifest: CID
    try {
      manifest = typeof digest === 'string' ? CID.parse(digest) : (CID.asCID(digest) ?? (() => { throw new Error('not a CID') })())
    } catch (err) {
      throw trustError(TrustErrorCode.MALFORMED, 'digest is not a CID', {}, err)
    }
    const now = this.now()
    const skew = this.policy.skew

    // 1. What do the followed indexers say?
    const skipped: IndexerSkip[] = []
    const revokedKeys = new Set<KeyId>()
    const revokedCertificates = new Set<string>()
    const groups = new Map<string, { entry: IndexEntry, indexers: string[] }>()
    for (const ix of this.policy.policy.indexers) {
      throwIfAborted(signal)
      try {
        const st = await this.state.read(ix.id)
        const view = st === undefined ? undefined : await this.view(st.index, signal)
        // revocations count from every index held, whoever published it and whatever else is
        // wrong with it (equivocation, expiry, a key the policy dropped): a revocation only narrows trust
        view?.root.revocations.keys.forEach(k => revokedKeys.add(k))
        view?.root.revocations.certificates.forEach(c => revokedCertificates.add(c))
        if ((await this.state.evidence(ix.id)).length > 0) {
          skipped.push({ indexer: ix.id, code: TrustErrorCode.EQUIVOCATION, reason: 'indexer has equivocated' })
          continue
        }
        if (st === undefined || view === undefined) { skipped.push({ indexer: ix.id, code: TrustErrorCode.NOT_LISTED, reason: 'no head accepted yet' }); continue }
        const head = openIndexHead(st.head)
        if (!sameKeys(st.policyKeys, ix.keys) && !ix.keys.includes(head.signer)) {
          skipped.push({ indexer: ix.id, code: TrustErrorCode.BAD_SIGNATURE, reason: `stored head is signed by ${head.signer}, which the policy no longer lists` })
          continue
        }
        if (now - skew >= Math.min(head.expires, view.root.expires)) {
          skipped.push({ indexer: ix.id, code: TrustErrorCode.FREEZE, reason: `newest head (version ${head.version}) expired` })
          continue
        }
        const slot = await view.lookup(name, version, signal)
        if (slot === undefined || isTombstone(slot)) {
          skipped.push({ indexer: ix.id, code: TrustErrorCode.NOT_LISTED, reason: slot === undefined ? 'not listed' : `removed: ${slot.removed}` })
          continue
        }
        const key = slot.release.toString()
        const group = groups.get(key) ?? { entry: slot, indexers: [] }
        group.indexers.push(ix.id)
        groups.set(key, group)
      } catch (err) {
        if (!(err instanceof SwarmpackError) || err.code === 'ERR_ABORTED') throw err
        skipped.push({ indexer: ix.id, code: err.code, reason: err.message })
      }
    }
    if (groups.size > 1) {
      throw trustError(TrustErrorCode.CONFLICT, `followed indexers list ${groups.size} different releases for ${name}@${version}`, {
        name, version, releases: Object.fromEntries([...groups].map(([cid, g]) => [cid, g.indexers]))
      })
    }
    const group = [...groups.values()][0]
    const need = this.policy.policy.indexerThreshold
    if (group === undefined || group.indexers.length < need) {
      const have = group?.indexers.length ?? 0
      const explained = SKIP_PRECEDENCE.map(code => skipped.find(s => s.code === code)).find(s => s !== undefined)
      const details = { name, version, need, have, skipped }
      if (explained !== undefined) throw trustError(explained.code as TrustErrorCode, `${explained.indexer}: ${explained.reason}`, details)
      const removed = skipped.find(s => s.reason.startsWith('removed: '))
      if (have === 0) throw trustError(TrustErrorCode.NOT_LISTED, removed !== undefined ? `${name}@${version} was ${removed.reason} (${removed.indexer})` : `no followed index lists ${name}@${version}`, details)
      throw trustError(TrustErrorCode.THRESHOLD, `${have} of the required ${need} indexers list ${name}@${version}`, details)
    }

    // 2. The release itself must be exactly what the indexers vouch for.
    const entry = group.entry
    const bytes = await fetchVerified(this.getBlock, entry.release, 'release', signal)
    if (bytes.byteLength !== entry.size) throw trustError(TrustErrorCode.MISMATCH, 'release size differs from the index', { name, version })
    const release = openRelease(bytes)
    if (release.name !== name || release.version !== version) {
      throw trustError(TrustErrorCode.MISMATCH, `release is ${release.name}@${release.version}, not ${name}@${version}`, { name, version })
    }
    if (!sameVariants(release.variants, entry.variants) || !sameRecord(release.dependencies, entry.dependencies)) {
      throw trustError(TrustErrorCode.MISMATCH, `release of ${name}@${version} differs from what the index lists`, { name, version })
    }
    const variantKey = Object.keys(release.variants).find(k => release.variants[k].manifest.equals(manifest) && (options.variant === undefined || options.variant === k))
    if (variantKey === undefined) {
      throw trustError(TrustErrorCode.MISMATCH, `manifest ${manifest.toString()} is not a variant of ${name}@${version}${options.variant !== undefined ? ` (${options.variant})` : ''}`, { name, version, manifest: manifest.toString() })
    }
    const variant = release.variants[variantKey]

    // 3. Its signer must hold a delegation chain to a root the local policy has for the name.
    const chain = verifyChain(release.signer, release.proofs, {
      name, roots: this.policy.rootsFor(name), now, skew, revokedKeys, revokedCertificates, maxDepth: this.policy.maxChainDepth
    })

    // 4. Enough distinct attester identities must vouch for this very manifest.
    const attesters = this.countAttestations(name, version, manifest, options.attestations ?? [], { now, skew, revokedKeys })

    return {
      name,
      version,
      variant: variantKey,
      manifest,
      size: variant.size,
      release: entry.release,
      dependencies: release.dependencies,
      publisher: release.signer,
      root: chain.root,
      chain: chain.links.map((l: VerifiedDelegation) => l.id),
      indexers: group.indexers,
      attesters,
      skipped
    }
  }

  private async view (cid: CID, signal?: AbortSignal): Promise<IndexView> {
    const key = cid.toString()
    let view = this.views.get(key)
    if (view === undefined) {
      view = await IndexView.load(cid, this.getBlock, signal)
      if (this.views.size >= 8) this.views.delete(this.views.keys().next().value as string)
      this.views.set(key, view)
    }
    return view
  }

  /**
   * Every attestation rule whose pattern matches the name must hold on its own (its kinds, its
   * threshold), so the outcome never depends on the order rules are listed in. Returns every
   * identity that counted under at least one rule.
   */
  private countAttestations (name: string, version: string, manifest: CID, list: Uint8Array[], ctx: { now: number, skew: number, revokedKeys: ReadonlySet<KeyId> }): string[] {
    const rules = this.policy.attestationRulesFor(name).filter(r => r.threshold > 0)
    if (rules.length === 0) return []
    const counted = new Set<string>()
    for (const rule of rules) this.countForRule(rule, name, version, manifest, list, ctx).forEach(i => counted.add(i))
    return [...counted].sort()
  }

  private countForRule (rule: AttestationRule, name: string, version: string, manifest: CID, list: Uint8Array[], ctx: { now: number, skew: number, revokedKeys: ReadonlySet<KeyId> }): string[] {
    if (list.length > MAX_ATTESTATIONS) throw trustError(TrustErrorCode.MALFORMED, `more than ${MAX_ATTESTATIONS} attestations`, { count: list.length })
    const identities = new Set<string>()
    const rejected: Array<{ index: number, reason: string }> = []
    list.forEach((bytes, index) => {
      let a
      try {
        a = openAttestation(bytes)
      } catch (err) {
        rejected.push({ index, reason: err instanceof SwarmpackError ? err.code : String(err) })
        return
      }
      const identity = this.policy.attesterOf(a.signer)
      const reason = identity === undefined
        ? 'key of no attester identity'
        : ctx.revokedKeys.has(a.signer)
          ? 'attester key revoked'
          : a.subject.name !== name || a.subject.version !== version || !a.subject.manifest.equals(manifest)
            ? 'attests another package or digest'
            : rule.kinds !== undefined && !rule.kinds.includes(a.kind)
              ? `kind ${a.kind} does not count here`
              : ctx.now + ctx.skew < a.issued || ctx.now - ctx.skew >= a.expires
                ? 'outside its validity window'
                : undefined
      if (reason !== undefined || identity === undefined) { rejected.push({ index, reason: reason ?? '' }); return }
      identities.add(identity)
    })
    if (identities.size < rule.threshold) {
      throw trustError(TrustErrorCode.THRESHOLD, `${identities.size} of the required ${rule.threshold} attester identities vouch for ${name}@${version} (rule ${rule.pattern})`, {
        name, version, rule: rule.pattern, need: rule.threshold, have: identities.size, identities: [...identities], rejected
      })
    }
    return [...identities].sort()
  }
}
