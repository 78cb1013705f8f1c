/**
 * The block scheduler of one fetch: takes blocks to fetch (a bounded window of them at a time),
 * asks each of one source chosen by the policy, and on a miss or failure asks the next source for
 * that block alone. A block outstanding past its source's hedge deadline is also asked of another
 * source; the first verified answer is stored at once and the other request cancelled. A source
 * that sends bad bytes is banned for the fetch; one that keeps failing or losing hedges is demoted
 * (asked only when nothing healthier is left) until it delivers again. Nothing waits unbounded:
 * every request has a deadline, and the whole fetch fails when no verified block arrived for the
 * stall deadline.
 */
import { logger } from '@libp2p/logger'
import { CoreErrorCode, DAG_CBOR_CODEC, isSwarmpackError, readBlock, verifyBlock } from '@swarmpack/core'
import { multihashKey } from './dag-walker.js'
import { abortedError, incompleteError, MAX_LISTED_MISSING } from './errors.js'
import { kindAllowed, rankOf } from './policy.js'
import type { FetchAccount } from './progress.js'
import type { LatencyTracker } from './latency.js'
import type { FetchBlockstore, SourceKind, SourcePolicy } from './types.js'
import type { BlockSource, Provider, ProviderProgressEvents } from '@swarmpack/core'
import type { CID } from 'multiformats/cid'

const log = logger('swarmpack:fetch:scheduler')

/** Consecutive failures (errors, timeouts, lost hedges) after which a source is demoted. */
const DEMOTE_AFTER = 3
/** How long a demotion lasts before the source is given blocks first again. */
const DEMOTION_MS = 5_000
/** Requests for one block at once (the first, plus one hedge). */
const MAX_ATTEMPTS = 2
/** A source silent this long (or twice its hedge deadline) while losing hedges counts as failing. */
const SILENT_MS = 1000
/** Hedge requests in flight at once, as a share of maxInFlight (hedges duplicate work). */
const HEDGE_SHARE = 0.1
/** How often deadlines (hedge, stall) are checked. */
const TICK_MS = 25

export interface BlockItem {
  cid: CID
  /** Size from the parent's link, when it says (manifest chunk references do). */
  size?: number
}

/** A source as one fetch sees it: shared latency, per-fetch load, health and ban. */
export interface RunSource {
  name: string
  kind: SourceKind
  priority: number
  provider: Provider
  limit: number
  latency: LatencyTracker
  active: number
  successes: number
  failures: number
  demotedUntil: number
  /** When this source last delivered a verified block (0: never in this fetch). */
  lastDelivery: number
  banned?: string
}

export interface SchedulerInit {
  sources: RunSource[]
  blockstore: FetchBlockstore
  storeVerifies: boolean
  policy: SourcePolicy
  hedgeAfterMs: number
  blockTimeoutMs: number
  lookupTimeoutMs: number
  stallTimeoutMs: number
  maxInFlight: number
  account: FetchAccount
  root?: CID
  signal?: AbortSignal
}

interface Attempt {
  source: RunSource
  controller: AbortController
  started: number
  hedge: boolean
  timedOut: boolean
  timer: ReturnType<typeof setTimeout>
  /** Peer or mirror inside the source that served the bytes (from the provider's events). */
  origin?: string
  /** Origins inside the source that sent bad bytes during this request, with why. */
  badOrigins: Map<string, string>
}

interface Task {
  cid: CID
  key: string
  size?: number
  wantBytes: boolean
  created: number
  /** Sources that missed or failed this block, with why. */
  tried: Map<RunSource, string>
  attempts: Map<RunSource, Attempt>
  settled: boolean
  /** A result is being verified and stored; later ones wait for its outcome. */
  accepting?: Promise<void>
  /** Further references to the same block met while it was in flight. */
  dups: number
}

export type OnBlock = (cid: CID, bytes: Uint8Array) => void

export class BlockScheduler {
  private readonly init: SchedulerInit
  private readonly tasks = new Map<string, Task>()
  /** Tasks with no request out, in arrival order. */
  private readonly waiting = new Set<Task>()
  private readonly missing: string[] = []
  private missingCount = 0
  /** First reason each source gave for not delivering. */
  private readonly reasons: Record<string, string> = {}
  private readonly bannedPeers = new Set<string>()
  private failure?: Error
  private hedgesInFlight = 0
  private wake?: () => void
  private timer?: ReturnType<typeof setInterval>
  private onBlock?: OnBlock
  /** Hand every block's bytes to onBlock, not only dag-cbor ones (getBlock). */
  private allBytes = false
  private readonly onAbort: () => void

  constructor (init: SchedulerInit) {
    this.init = init
    this.onAbort = () => { this.fail(abortedError(init.signal?.reason)) }
    init.signal?.addEventListener('abort', this.onAbort, { once: true })
  }

  /** Releases the abort listener and any request still out (call once, after the last run). */
  close (): void {
    this.init.signal?.removeEventListener('abort', this.onAbort)
    this.stopTimer()
    for (const task of this.tasks.values()) this.cancelAttempts(task)
  }

  get missingBlocks (): { missing: string[], missingCount: number } {
    return { missing: [...this.missing], missingCount: this.missingCount }
  }

  /** Throws ERR_FETCH_INCOMPLETE when blocks were missing. */
  assertComplete (): void {
    if (this.missingCount === 0) return
    throw this.incomplete('exhausted')
  }

  private incomplete (cause: 'exhausted' | 'stalled'): Error {
    const allowed = this.init.sources.filter(s => kindAllowed(this.init.policy, s.kind))
    return incompleteError({
      ...(this.init.root !== undefined ? { root: this.init.root.toString() } : {}),
      missing: this.missing.slice(0, MAX_LISTED_MISSING),
      missingCount: this.missingCount,
      tried: allowed.map(s => s.name),
      reasons: { ...this.reasons },
      cause: allowed.length === 0 ? 'no-sources' : cause
    })
  }

  /**
   * Fetches every item (at most maxInFlight at once, pulled lazily from `items`), calling
   * `onBlock` with the bytes of dag-cbor blocks when given. Missing blocks are collected (see
   * assertComplete); abort, a stall or a store failure rejects.
   */
  async run (items: Iterable<BlockItem> | AsyncIterable<BlockItem>, onBlock?: OnBlock, allBytes = false): Promise<void> {
    this.onBlock = onBlock
    this.allBytes = allBytes
    const iterator = (Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : (items as Iterable<BlockItem>)[Symbol.iterator]()) as AsyncIterator<BlockItem> | Iterator<BlockItem>
    let exhausted = false
    this.startTimer()
    try {
      while (true) {
        if (this.failure !== undefined) throw this.failure
        while (!exhausted && this.tasks.size < this.init.maxInFlight && this.failure === undefined) {
          const next = await iterator.next()
          if (next.done === true) { exhausted = true; break }
          await this.add(next.value)
        }
        if (this.failure !== undefined) throw this.failure
        if (exhausted && this.tasks.size === 0) return
        await new Promise<void>(resolve => { this.wake = resolve })
        this.wake = undefined
      }
    } finally {
      this.stopTimer()
      if (this.failure !== undefined) {
        for (const task of this.tasks.values()) this.cancelAttempts(task)
        // let stores already under way finish, so nothing is left half-done when we return
        await Promise.allSettled([...this.tasks.values()].map(async t => t.accepting))
      }
      if (!exhausted) await (iterator as AsyncIterator<BlockItem>).return?.()
    }
  }

  private startTimer (): void {
    this.timer ??= setInterval(() => { this.tick() }, TICK_MS)
  }

  private stopTimer (): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }

  private notify (): void {
    this.wake?.()
  }

  private fail (err: Error): void {
    if (this.failure !== undefined) return
    this.failure = err
    for (const task of this.tasks.values()) this.cancelAttempts(task)
    this.notify()
  }

  private async add (item: BlockItem): Promise<void> {
    const key = multihashKey(item.cid)
    const existing = this.tasks.get(key)
    if (existing !== undefined) { existing.dups++; return }
    const wantBytes = this.onBlock !== undefined && (this.allBytes || item.cid.code === DAG_CBOR_CODEC)
    if (await this.init.blockstore.has(item.cid)) {
      let size = item.size
      if (wantBytes || size === undefined) {
        const bytes = await readBlock(this.init.blockstore as BlockSource, item.cid)
        size = bytes.byteLength
        if (wantBytes) this.onBlock?.(item.cid, bytes)
      }
      this.init.account.local(item.cid, size)
      return
    }
    const task: Task = { cid: item.cid, key, size: item.size, wantBytes, created: Date.now(), tried: new Map(), attempts: new Map(), settled: false, dups: 0 }
    this.tasks.set(key, task)
    this.waiting.add(task)
    this.pump()
  }

  private isDemoted (s: RunSource, now: number): boolean {
    return s.demotedUntil > now
  }

  /** Sources that could still be asked for this block (ignoring load), best first. */
  private candidates (task: Task, now: number, ranked = this.ranked(now)): RunSource[] {
    return ranked.filter(s => !task.tried.has(s) && !task.attempts.has(s))
  }

  /** Sources the policy allows and that are not banned, best first (the same for every block at one moment). */
  private ranked (now: number): RunSource[] {
    const { policy } = this.init
    return this.init.sources
      .filter(s => s.banned === undefined && kindAllowed(policy, s.kind))
      .sort((a, b) => rankOf(policy, a.kind, a.priority, this.isDemoted(a, now), a.latency.estimate) -
        rankOf(policy, b.kind, b.priority, this.isDemoted(b, now), b.latency.estimate))
  }

  /** How long a block may wait at (or for) the best peer before mirrors are asked too. */
  private peerDeadline (): number {
    let best: number | undefined
    for (const s of this.init.sources) {
      if (s.kind !== 'peer' || s.banned !== undefined) continue
      const d = s.latency.hedgeDeadline()
      if (best === undefined || d < best) best = d
    }
    return best ?? this.init.hedgeAfterMs
  }

  /**
   * Whether a block waiting for the peers would arrive sooner from a mirror: the queue in front
   * of the best peer drains at its delivery rate, a mirror with room answers in about its usual
   * latency. Lets a mirror take load the peers cannot absorb, and no more.
   */
  private peersBacklogged (pool: RunSource[], now: number): boolean {
    const peer = pool.find(s => s.kind === 'peer' && !this.isDemoted(s, now))
    const mirror = pool.find(s => s.kind === 'mirror' && s.active < s.limit)
    const rate = peer?.latency.rate
    const mirrorMs = mirror?.latency.estimate
    if (peer === undefined || mirror === undefined || rate === undefined || mirrorMs === undefined) return false
    return (peer.active + this.waiting.size) / rate > mirrorMs
  }

  /**
   * The source to ask next for this block, or undefined (wait). Healthy sources before demoted
   * ones; under peers-first a mirror takes a block only when no healthy peer is left to ask for
   * it, or the block has waited past the peers' deadline.
   */
  private pick (task: Task, now: number, hedging: boolean, ranked = this.ranked(now)): RunSource | undefined {
    const all = this.candidates(task, now, ranked)
    const healthy = all.filter(s => !this.isDemoted(s, now))
    const pool = healthy.length > 0 ? healthy : all
    const gateMirrors = this.init.policy === 'peers-first' && !hedging &&
      pool.some(s => s.kind === 'peer') && now - task.created < this.peerDeadline() && !this.peersBacklogged(pool, now)
    for (const s of pool) {
      if (s.active >= s.limit) continue
      if (gateMirrors && s.kind === 'mirror') continue
      return s
    }
    return undefined
  }

  private pump (): void {
    if (this.failure !== undefined) return
    const now = Date.now()
    const ranked = this.ranked(now)
    // deleting the current entry while iterating a Set is safe
    for (const task of this.waiting) {
      if (task.attempts.size > 0) { this.waiting.delete(task); continue }
      const room = ranked.some(s => s.active < s.limit)
      const source = room ? this.pick(task, now, false, ranked) : undefined
      if (source !== undefined) {
        this.waiting.delete(task)
        this.start(task, source, false)
        // race: the second source is asked at once, not on the next hedge tick
        const second = this.init.policy === 'race' ? this.pick(task, now, true, ranked) : undefined
        if (second !== undefined) {
          this.init.account.hedge({ cid: task.cid, from: source.name, to: second.name, afterMs: 0 })
          this.start(task, second, true)
        }
      } else if (this.candidates(task, now, ranked).length === 0) {
        this.giveUp(task)
      }
    }
  }

  /** Hedges slow blocks, checks the stall deadline, and lets parked blocks reach mirrors. */
  private tick (): void {
    if (this.failure !== undefined) return
    const now = Date.now()
    if (this.tasks.size > 0 && now - this.init.account.lastProgress > this.init.stallTimeoutMs) {
      for (const task of this.tasks.values()) this.recordMissing(task)
      this.fail(this.incomplete('stalled'))
      return
    }
    const hedgeBudget = Math.max(4, Math.ceil(this.init.maxInFlight * HEDGE_SHARE))
    for (const task of this.tasks.values()) {
      if (this.hedgesInFlight >= hedgeBudget) break
      if (task.settled || task.attempts.size === 0 || task.attempts.size >= MAX_ATTEMPTS || task.accepting !== undefined) continue
      let oldest: Attempt | undefined
      for (const a of task.attempts.values()) if (oldest === undefined || a.started < oldest.started) oldest = a
      const deadline = this.init.policy === 'race' ? 0 : oldest!.source.latency.hedgeDeadline()
      const waited = now - oldest!.started
      if (waited < deadline) continue
      const source = this.pick(task, now, true)
      if (source === undefined) continue
      this.init.account.hedge({ cid: task.cid, from: oldest!.source.name, to: source.name, afterMs: waited })
      this.start(task, source, true)
    }
    this.pump()
  }

  private start (task: Task, source: RunSource, hedge: boolean): void {
    const now = Date.now()
    const controller = new AbortController()
    const timeout = this.init.blockTimeoutMs + (source.successes === 0 ? this.init.lookupTimeoutMs : 0)
    const attempt: Attempt = {
      source,
      controller,
      started: now,
      hedge,
      timedOut: false,
      badOrigins: new Map(),
      timer: setTimeout(() => { attempt.timedOut = true; controller.abort() }, timeout)
    }
    task.attempts.set(source, attempt)
    source.active++
    if (hedge) this.hedgesInFlight++
    const onProgress = (evt: ProviderProgressEvents): void => {
      if (evt.type === 'swarmpack:provider:block') {
        attempt.origin = evt.detail.source
      } else if (evt.type === 'swarmpack:provider:retry') {
        this.onProviderRetry(task, attempt, evt.detail.source, evt.detail.error)
      }
    }
    source.provider.get(task.cid, { signal: controller.signal, onProgress, ...(this.init.root !== undefined ? { root: this.init.root } : {}) })
      .then(async bytes => { await this.onBytes(task, attempt, bytes) }, (err: Error) => { this.onError(task, attempt, err) })
      .catch(err => { this.fail(err as Error) })
  }

  /**
   * A provider retried inside itself. When the reason is bad data from one of its origins (the
   * swarm banned a peer; an HTTP mirror sent bytes that do not hash to the CID), it is reported
   * as a ban; the source as a whole is banned only if it then fails the block.
   */
  private onProviderRetry (task: Task, attempt: Attempt, origin: string, error: Error): void {
    const bad = isSwarmpackError(error, CoreErrorCode.BLOCK_MISMATCH) || /^banned: /.test(error?.message ?? '')
    if (!bad) return
    attempt.badOrigins.set(origin, error.message)
    // a mirror source is banned whole if it then fails the block (one event, in ban()); a swarm
    // source stays usable: its peer is what was banned (by Bitswap), so name the peer here
    if (attempt.source.kind === 'mirror') return
    if (this.bannedPeers.has(`${attempt.source.name}\u0000${origin}`)) return
    this.bannedPeers.add(`${attempt.source.name}\u0000${origin}`)
    this.init.account.ban({ source: attempt.source.name, peer: origin, cid: task.cid.toString(), reason: error.message })
  }

  private endAttempt (task: Task, attempt: Attempt): void {
    clearTimeout(attempt.timer)
    if (task.attempts.get(attempt.source) === attempt) {
      task.attempts.delete(attempt.source)
      attempt.source.active--
      if (attempt.hedge) this.hedgesInFlight--
    }
  }

  private cancelAttempts (task: Task): void {
    for (const attempt of [...task.attempts.values()]) {
      this.endAttempt(task, attempt)
      attempt.controller.abort()
    }
  }

  private async onBytes (task: Task, attempt: Attempt, bytes: Uint8Array): Promise<void> {
    this.endAttempt(task, attempt)
    while (task.accepting !== undefined) await task.accepting
    if (task.settled || this.failure !== undefined) return
    let accepted!: () => void
    task.accepting = new Promise(resolve => { accepted = resolve })
    try {
      await this.accept(task, attempt, bytes)
    } finally {
      task.accepting = undefined
      accepted()
    }
  }

  private async accept (task: Task, attempt: Attempt, bytes: Uint8Array): Promise<void> {
    const { blockstore } = this.init
    const source = attempt.source
    try {
      // a swarm source verifies and stores blocks itself (Bitswap): nothing to hash or write again
      if (!await blockstore.has(task.cid)) {
        if (!this.init.storeVerifies) verifyBlock(task.cid, bytes)
        await blockstore.put(task.cid, bytes)
      }
    } catch (err) {
      if (isBadData(err)) {
        this.ban(task, source, attempt.origin, (err as Error).message)
        if (task.attempts.size === 0) this.waiting.add(task)
        this.pump()
        return
      }
      throw err
    }
    const now = Date.now()
    source.latency.record(now - attempt.started, now)
    source.successes++
    source.failures = 0
    if (this.isDemoted(source, now)) {
      source.demotedUntil = 0
      this.init.account.switch({ source: source.name, state: 'restored', reason: 'delivered again' })
    }
    source.lastDelivery = now
    // the other request lost. Its source counts a failure only if it has delivered nothing for a
    // while (stalled or gone), not when it is merely busy or paused for a moment
    for (const other of task.attempts.values()) {
      const silentFor = now - Math.max(other.source.lastDelivery, other.started)
      if (attempt.hedge && !other.hedge && silentFor >= Math.max(SILENT_MS, 2 * other.source.latency.hedgeDeadline())) {
        this.failed(other.source, `lost a hedge, nothing delivered for ${silentFor} ms`)
      }
    }
    this.settle(task)
    if (task.tried.size > 0) this.init.account.fallbacks++
    this.init.account.network({ cid: task.cid, bytes: bytes.byteLength, source: source.name, kind: source.kind, ...(attempt.origin !== undefined ? { origin: attempt.origin } : {}), hedged: attempt.hedge, ms: now - attempt.started })
    if (task.wantBytes) this.onBlock?.(task.cid, bytes)
    for (let i = 0; i < task.dups; i++) this.init.account.local(task.cid, bytes.byteLength)
    this.pump()
    this.notify()
  }

  private onError (task: Task, attempt: Attempt, err: Error): void {
    this.endAttempt(task, attempt)
    if (task.settled || this.failure !== undefined) return
    const source = attempt.source
    const miss = isSwarmpackError(err, CoreErrorCode.NOT_FOUND)
    if (isBadData(err) || (!miss && attempt.badOrigins.size > 0 && source.kind === 'mirror')) {
      const [origin, why] = [...attempt.badOrigins][0] ?? [attempt.origin, err.message]
      this.ban(task, source, origin, why)
    } else {
      const reason = attempt.timedOut ? `no answer within ${Date.now() - attempt.started} ms` : miss ? 'does not have it' : err.message
      task.tried.set(source, reason)
      this.reasons[source.name] ??= reason
      this.init.account.miss({ cid: task.cid, source: source.name, reason })
      if (!miss) this.failed(source, reason)
    }
    if (task.attempts.size === 0) this.waiting.add(task)
    this.pump()
  }

  /** Counts a failure against a source; enough in a row demote it. */
  private failed (source: RunSource, reason: string): void {
    source.failures++
    const now = Date.now()
    if (source.failures >= DEMOTE_AFTER && !this.isDemoted(source, now)) {
      source.demotedUntil = now + DEMOTION_MS
      this.init.account.switch({ source: source.name, state: 'demoted', reason: `${source.failures} failures in a row (last: ${reason})` })
    } else if (this.isDemoted(source, now)) {
      source.demotedUntil = now + DEMOTION_MS
    }
  }

  private ban (task: Task, source: RunSource, origin: string | undefined, reason: string): void {
    task.tried.set(source, `bad data: ${reason}`)
    this.reasons[source.name] = `banned: ${reason}`
    if (source.banned !== undefined) return
    source.banned = reason
    this.init.account.ban({ source: source.name, cid: task.cid.toString(), reason, ...(origin !== undefined && origin !== source.name ? { peer: origin } : {}) })
    this.init.account.switch({ source: source.name, state: 'banned', reason })
    // its other requests cannot be trusted either: send those blocks elsewhere
    for (const t of this.tasks.values()) {
      const a = t.attempts.get(source)
      if (a === undefined) continue
      this.endAttempt(t, a)
      a.controller.abort()
      if (t.attempts.size === 0 && !t.settled) this.waiting.add(t)
    }
  }

  private settle (task: Task): void {
    task.settled = true
    this.waiting.delete(task)
    this.tasks.delete(task.key)
    this.cancelAttempts(task)
  }

  private recordMissing (task: Task): void {
    this.missingCount += 1
    if (this.missing.length < MAX_LISTED_MISSING) this.missing.push(task.cid.toString())
  }

  /** Every source allowed by the policy missed, failed or was banned for this block. */
  private giveUp (task: Task): void {
    log('no source could supply %c: %s', task.cid, [...task.tried].map(([s, r]) => `${s.name}: ${r}`).join('; ') || 'no sources')
    this.recordMissing(task)
    this.settle(task)
    this.notify()
  }
}

function isBadData (err: unknown): boolean {
  return isSwarmpackError(err, CoreErrorCode.BLOCK_MISMATCH) || isSwarmpackError(err, CoreErrorCode.BLOCK_TOO_LARGE)
}
