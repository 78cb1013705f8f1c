/**
 * The apply journal: `journal.json` in the data dir exists only while an apply or rollback runs.
 * It names the generation in force before (`from`) and the one being switched to (`to`), and the
 * last step completed. After a crash, `recover` reads it together with the `current` link: the
 * link is the single point of truth (it moves by one atomic rename), so the outcome is the old
 * generation if the link still points at `from` and the new one if it points at `to`; a generation
 * built by the interrupted apply but never switched to is removed.
 *
 * Tests: with SWARMPACK_TEST_KILL_AT=<step> in the environment (and SWARMPACK_TEST=1), the process
 * SIGKILLs itself right after recording that step, so every step can be crashed through.
 */
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '@swarmpack/core'
import { canonicalJson } from '../util/json.js'

export const APPLY_STEPS = ['begin', 'fetched', 'unpacked', 'staged', 'unloaded', 'switched', 'loaded'] as const
export type ApplyStep = typeof APPLY_STEPS[number]

export interface JournalRecord {
  op: 'apply' | 'rollback'
  /** Generation in force before (undefined: none yet). */
  from?: number
  to: number
  /** True when `to` is a generation this operation creates (removed if it never became current). */
  creates: boolean
  step: ApplyStep
  started: number
}

export interface Recovery {
  op: 'apply' | 'rollback'
  /** Which side is in force after the crash. */
  outcome: 'old' | 'new'
  /** The generation in force now (undefined: none, the first apply never switched). */
  generation?: number
  from?: number
  to: number
  /** Last step the interrupted operation recorded. */
  step: ApplyStep
}

export class Journal {
  readonly path: string

  constructor (dataDir: string) {
    this.path = join(dataDir, 'journal.json')
  }

  async read (): Promise<JournalRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.path, 'utf8')) as JournalRecord
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      // a torn journal cannot exist (atomic writes); anything else unreadable: treat as absent after logging
      throw err
    }
  }

  async record (rec: JournalRecord): Promise<void> {
    await writeFileAtomic(this.path, new TextEncoder().encode(canonicalJson(rec) + '\n'), { syncDir: true })
    killPoint(rec.step)
  }

  async clear (): Promise<void> {
    await rm(this.path, { force: true })
  }
}

/** The crash hook for tests (see the module comment). */
export function killPoint (step: string): void {
  if (process.env.SWARMPACK_TEST === '1' && process.env.SWARMPACK_TEST_KILL_AT === step) {
    process.kill(process.pid, 'SIGKILL')
  }
}
