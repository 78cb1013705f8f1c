/**
 * Events of a running node (`node.events`), for hosts that watch it rather than call it:
 * automatic updates, scheduled scrubs and recorded errors. A standard EventTarget carrying
 * CustomEvents, typed here.
 */
import type { ApplyResult } from '../apply/apply.js'
import type { Plan, PlanChange } from '../plan/plan.js'
import type { RecentError } from './journal.js'
import type { ScrubReport } from './scrub.js'

export type UpdateDecision = 'notify' | 'apply' | 'deferred' | 'vetoed'

export interface UpdateAvailable {
  /** The plan that would move the deployment to the newest versions its ranges allow. */
  plan: Plan
  /** The packages that change (`plan.changes` without the unchanged ones). */
  changes: PlanChange[]
  /** The index versions the plan was resolved against, and where each head came from. */
  indexes: Array<{ indexer: string, version?: number, source?: string }>
  policy: 'notify' | 'apply'
  /** What the node does with it: tells (`notify`), applies, waits for the window, or was vetoed by the host. */
  decision: UpdateDecision
  /** With `deferred`: when the next update window opens (ms since epoch). */
  windowOpens?: number
}

export interface NodeEventMap {
  /** A newer set of versions is allowed by the deployment's ranges (emitted once per distinct plan). */
  'update:available': CustomEvent<UpdateAvailable>
  /** An automatic update was applied (same atomic apply and hooks as `apply`). */
  'update:applied': CustomEvent<{ result: ApplyResult, changes: PlanChange[] }>
  /** An automatic update check or apply failed; the watcher tries again next interval. */
  'update:failed': CustomEvent<{ error: RecentError }>
  /** A scrub finished (scheduled or on demand). */
  'scrub:done': CustomEvent<ScrubReport>
  /** An error was recorded (also in `status().errors`). */
  error: CustomEvent<RecentError>
}

type Listener = Parameters<EventTarget['addEventListener']>[1]
type AddOptions = Parameters<EventTarget['addEventListener']>[2]
type RemoveOptions = Parameters<EventTarget['removeEventListener']>[2]

export class NodeEvents extends EventTarget {
  emit<K extends keyof NodeEventMap> (type: K, detail: NodeEventMap[K]['detail']): void {
    this.dispatchEvent(new CustomEvent(type, { detail }))
  }

  override addEventListener<K extends keyof NodeEventMap> (type: K, listener: ((evt: NodeEventMap[K]) => void) | null, options?: AddOptions): void
  override addEventListener (type: string, listener: Listener, options?: AddOptions): void
  override addEventListener (type: string, listener: any, options?: AddOptions): void {
    super.addEventListener(type, listener as Listener, options)
  }

  override removeEventListener<K extends keyof NodeEventMap> (type: K, listener: ((evt: NodeEventMap[K]) => void) | null, options?: RemoveOptions): void
  override removeEventListener (type: string, listener: Listener, options?: RemoveOptions): void
  override removeEventListener (type: string, listener: any, options?: RemoveOptions): void {
    super.removeEventListener(type, listener as Listener, options)
  }
}
