/**
 * Start-up recovery after a crash in apply or rollback (see journal.ts): the `current` link
 * decides which generation is in force; a generation the interrupted apply built but never
 * switched to is removed; `swarmpack.lock` is rewritten from the generation in force.
 */
import { logger } from '@libp2p/logger'
import type { Logger } from '@libp2p/interface'
import type { Generations } from './generations.js'
import type { Journal, Recovery } from './journal.js'
import { writeCurrentLock } from './apply.js'

const defaultLog = logger('swarmpack:node:recover')

export async function recover (dataDir: string, generations: Generations, journal: Journal, log: Logger = defaultLog): Promise<Recovery | undefined> {
  await generations.sweep()
  const rec = await journal.read()
  if (rec === undefined) return undefined
  const now = await generations.currentNumber()
  const outcome: 'old' | 'new' = now === rec.to && rec.from !== rec.to ? 'new' : 'old'
  if (outcome === 'old' && rec.creates && now !== rec.to) await generations.remove(rec.to)
  const current = await generations.current()
  await writeCurrentLock(dataDir, current?.lock)
  await journal.clear()
  const recovery: Recovery = { op: rec.op, outcome, to: rec.to, step: rec.step, ...(rec.from !== undefined ? { from: rec.from } : {}), ...(now !== undefined ? { generation: now } : {}) }
  log('recovered from an interrupted %s at step %s: the %s generation (%s) is in force', rec.op, rec.step, outcome, now ?? 'none')
  return recovery
}
