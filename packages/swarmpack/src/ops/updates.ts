/**
 * Automatic updates (S3). Every `updates.intervalMs` the watcher reads the followed heads again
 * (DHT and mirrors, through the node's follow), resolves the deployment with every package free
 * to move inside its range, and plans. A plan that changes something is an update: it is
 * announced as `update:available` (once per distinct plan) and, with policy `apply`, applied
 * through the node's own atomic apply and host hooks; inside `updates.window` only, and only if
 * the host's `approveUpdate` hook agrees. Failures are recorded and retried next interval.
 */
import { createHash } from 'node:crypto'
import { isSwarmpackError } from '@swarmpack/core'
import type { ApplyResult } from '../apply/apply.js'
import type { DeploymentConfig } from '../config/schema.js'
import { SwarmpackNodeErrorCode, nodeError } from '../errors.js'
import type { FollowReport } from '../follow/follow.js'
import { serializeLock } from '../lock/format.js'
import type { Plan, PlanChange } from '../plan/plan.js'
import type { UpdateAvailable, UpdateDecision } from './events.js'
import type { OpsHost } from './host.js'

export type UpdateSettings = DeploymentConfig['updates']
export type UpdateWindow = NonNullable<UpdateSettings['window']>

/** The host's say on an update about to be applied: false (or a throw) vetoes it. */
export type ApproveUpdate = (update: UpdateAvailable, context: { signal: AbortSignal }) => boolean | Promise<boolean>

export interface UpdateCheck {
  at: number
  follow: FollowReport[]
  /** True when a plan changes something. */
  available: boolean
  plan?: Plan
  changes: PlanChange[]
  decision?: UpdateDecision
  windowOpens?: number
  /** Set when this check applied the update. */
  applied?: ApplyResult
}

export interface CheckUpdatesOptions {
  signal?: AbortSignal
  /** Apply when the policy says so (default: the watcher does, an on-demand check does not). */
  apply?: boolean
}

const minutes = (hhmm: string): number => { const [h, m] = hhmm.split(':').map(Number); return h * 60 + m }

/** Whether `now` is inside the daily window, and when it next opens. */
export function windowState (window: UpdateWindow, now: number): { open: boolean, opensAt: number } {
  const d = new Date(now)
  const m = window.utc ? d.getUTCHours() * 60 + d.getUTCMinutes() : d.getHours() * 60 + d.getMinutes()
  const start = minutes(window.start)
  const end = minutes(window.end)
  const open = start === end ? true : start < end ? m >= start && m < end : m >= start || m < end
  let ahead = start - m
  if (ahead <= 0) ahead += 24 * 60
  const secs = window.utc ? d.getUTCSeconds() : d.getSeconds()
  return { open, opensAt: now + ahead * 60_000 - secs * 1000 - d.getMilliseconds() }
}

/** The generation changed between planning and applying. */
class StalePlan extends Error {}

function planKey (plan: Plan): string {
  return createHash('sha256').update(serializeLock(plan.lock)).digest('hex')
}

export class UpdateWatcher {
  private timer?: ReturnType<typeof setTimeout>
  private controller?: AbortController
  private running?: Promise<unknown>
  private lastAnnounced?: string
  private stopped = true

  constructor (private readonly host: OpsHost, public settings: UpdateSettings, private readonly approve?: ApproveUpdate) {}

  get active (): boolean {
    return !this.stopped
  }

  start (): void {
    if (this.settings.policy === 'off') return
    this.stopped = false
    this.schedule(this.settings.intervalMs)
  }

  private schedule (ms: number): void {
    if (this.stopped) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => { void this.tick() }, Math.max(0, ms))
    this.timer.unref?.()
  }

  private async tick (): Promise<void> {
    this.controller = new AbortController()
    let next = this.settings.intervalMs
    try {
      const run = this.check({ signal: this.controller.signal, apply: true })
      this.running = run
      const r = await run
      // deferred to a window that opens before the next interval: look again just after it opens
      if (r.windowOpens !== undefined) next = Math.min(next, r.windowOpens - this.host.now() + 1000)
    } catch {
      // recorded by check(); try again next interval
    } finally {
      this.running = undefined
      this.schedule(next)
    }
  }

  /** One check: follow, resolve within ranges, plan; announce, and apply when the policy says so. */
  async check (options: CheckUpdatesOptions = {}): Promise<UpdateCheck> {
    // another operation may switch generations between our plan and our apply: plan again then
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.checkOnce(options, attempt < 3)
      } catch (err) {
        if (!(err instanceof StalePlan)) throw err
      }
    }
  }

  private async checkOnce (options: CheckUpdatesOptions, retryStale: boolean): Promise<UpdateCheck> {
    const { node, journal, log, events } = this.host
    const signal = options.signal
    const at = this.host.now()
    try {
      const follow = await node.follow(signal !== undefined ? { signal } : {})
      const lock = await node.resolve({ update: true, ...(signal !== undefined ? { signal } : {}) })
      const plan = await node.plan(lock)
      const changes = plan.changes.filter(c => c.action !== 'unchanged')
      const result: UpdateCheck = { at, follow, available: changes.length > 0, changes }
      journal.state.lastUpdateCheck = { at, available: result.available, changes: changes.length }
      journal.changed()
      if (!result.available) return result
      result.plan = plan
      const policy = this.settings.policy === 'apply' ? 'apply' : 'notify'
      let decision: UpdateDecision = policy
      const update: UpdateAvailable = {
        plan,
        changes,
        indexes: plan.lock.indexes.map(ix => ({ indexer: ix.id, version: ix.version, ...(journal.state.follows[ix.id]?.source !== undefined ? { source: journal.state.follows[ix.id].source } : {}) })),
        policy,
        decision
      }
      if (policy === 'apply' && this.settings.window !== undefined) {
        const w = windowState(this.settings.window, this.host.now())
        if (!w.open) { decision = 'deferred'; update.windowOpens = w.opensAt; result.windowOpens = w.opensAt }
      }
      if (decision === 'apply' && options.apply === true && this.approve !== undefined && !(await this.approved({ ...update, decision }))) decision = 'vetoed'
      update.decision = decision
      result.decision = decision
      journal.state.lastUpdateCheck.decision = decision
      const key = `${planKey(plan)}:${decision}`
      if (key !== this.lastAnnounced) {
        this.lastAnnounced = key
        log.write('info', 'update:available', { decision, changes: changes.map(c => ({ name: c.name, action: c.action, from: c.from?.version, to: c.to?.version })), indexes: update.indexes })
        events.emit('update:available', update)
      }
      if (decision === 'apply' && options.apply === true) {
        if (retryStale && plan.from !== (await node.generations.currentNumber())) throw new StalePlan()
        const applied = await node.apply(plan, signal !== undefined ? { signal } : {}).catch((err) => {
          if (retryStale && isSwarmpackError(err, SwarmpackNodeErrorCode.INVALID_ARGUMENT) && 'planned' in err.details) throw new StalePlan()
          throw err
        })
        result.applied = applied
        log.write('info', 'update:applied', { generation: applied.generation, changes: changes.map(c => ({ name: c.name, action: c.action, from: c.from?.version, to: c.to?.version })), bytes: applied.bytes })
        events.emit('update:applied', { result: applied, changes })
      }
      return result
    } catch (err) {
      if (err instanceof StalePlan || isSwarmpackError(err, 'ERR_ABORTED') || isSwarmpackError(err, SwarmpackNodeErrorCode.STOPPED)) throw err
      const wrapped = isSwarmpackError(err) && err.code === SwarmpackNodeErrorCode.UPDATE_FAILED
        ? err
        : nodeError(SwarmpackNodeErrorCode.UPDATE_FAILED, `update check failed: ${(err as Error).message}`, { cause: (err as { code?: string }).code }, err)
      const rec = journal.error('update', wrapped, { cause: (err as { code?: string }).code })
      journal.state.lastUpdateCheck = { at, available: false, changes: 0, error: wrapped.message }
      log.write('error', 'update:failed', { code: rec.code, message: rec.message, cause: (err as { code?: string }).code })
      events.emit('update:failed', { error: rec })
      events.emit('error', rec)
      throw wrapped
    }
  }

  /** Asks the host; a throw or an overrun of `hooks.timeoutMs` counts as a veto (and is recorded). */
  private async approved (update: UpdateAvailable): Promise<boolean> {
    const approve = this.approve
    if (approve === undefined) return true
    const controller = new AbortController()
    const ms = this.host.node.config.hooks.timeoutMs
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      const ok = await Promise.race([
        Promise.resolve().then(async () => approve(update, { signal: controller.signal })),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => { controller.abort(); reject(nodeError(SwarmpackNodeErrorCode.HOOK_TIMEOUT, `approveUpdate did not answer within ${ms} ms`)) }, ms)
          timer.unref?.()
        })
      ])
      if (ok !== true) this.host.log.write('info', 'update:vetoed', { changes: update.changes.length })
      return ok === true
    } catch (err) {
      const vetoed = nodeError(SwarmpackNodeErrorCode.UPDATE_VETOED, `approveUpdate failed, so the update is vetoed: ${(err as Error).message}`, {}, err)
      this.host.events.emit('error', this.host.journal.error('update', vetoed))
      return false
    } finally {
      clearTimeout(timer)
    }
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    this.controller?.abort()
    await this.running?.catch(() => {})
  }
}
