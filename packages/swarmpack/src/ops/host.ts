/**
 * What the operations layer needs from the node: its public parts (store, fetcher, verifier,
 * peer, generations, follow / resolve / plan / apply / uninstall) and two internals handed in
 * by the node (its one-at-a-time queue and its HTTP dispatcher).
 */
import type { Dispatcher } from 'undici'
import type { Swarmpack } from '../node/node.js'
import type { OpsJournal } from './journal.js'
import type { OpsLog } from './logs.js'
import type { NodeEvents } from './events.js'

export interface OpsHost {
  node: Swarmpack
  /** Runs `fn` when no other mutating operation runs (the node's queue). */
  exclusive: <T>(fn: () => Promise<T>) => Promise<T>
  dispatcher: () => Dispatcher | undefined
  journal: OpsJournal
  log: OpsLog
  events: NodeEvents
  now: () => number
}
