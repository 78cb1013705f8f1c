/**
 * What the operations layer remembers between runs, so `status` in another process (the CLI)
 * sees it too: the sources of each package's last fetch, the last follow of each indexer, the
 * last update check and scrub, and the most recent errors with their codes. Kept in memory and
 * written to `<dataDir>/ops/state.json` (atomic, debounced; a lost write loses diagnostics only).
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import { writeFileAtomic } from '@swarmpack/core'

const log = logger('swarmpack:ops')

/** Recent errors kept. */
export const MAX_ERRORS = 50
/** Fetch records kept (the newest; installed packages are refetched rarely, so this spans many updates). */
export const MAX_FETCHES = 500

export interface FetchRecord {
  name: string
  version: string
  at: number
  ms: number
  bytes: { network: number, local: number, total: number }
  sources: Array<{ source: string, kind: string, blocks: number, bytes: number }>
}

export interface FollowRecord {
  indexer: string
  at: number
  version?: number
  changed: boolean
  /** Where the accepted head came from (`dht`, a mirror URL, a directory). */
  source?: string
  error?: { code: string, message: string }
}

export interface RecentError {
  at: number
  /** The operation that failed (`follow`, `update`, `scrub`, `apply`, `fetch` ...). */
  op: string
  code: string
  message: string
  details?: Record<string, unknown>
}

export interface OpsState {
  fetches: Record<string, FetchRecord>
  follows: Record<string, FollowRecord>
  errors: RecentError[]
  lastUpdateCheck?: { at: number, available: boolean, changes: number, decision?: string, error?: string }
  lastScrub?: { at: number, ms: number, ok: boolean, corrupt: number, refetched: number, modified: number, restored: number, flagged: number }
}

export class OpsJournal {
  state: OpsState = { fetches: {}, follows: {}, errors: [] }
  private readonly file: string
  private timer?: ReturnType<typeof setTimeout>
  private writing: Promise<void> = Promise.resolve()

  constructor (dataDir: string) {
    this.file = join(dataDir, 'ops', 'state.json')
  }

  async load (): Promise<void> {
    try {
      const s = JSON.parse(await readFile(this.file, 'utf8')) as Partial<OpsState>
      this.state = { fetches: s.fetches ?? {}, follows: s.follows ?? {}, errors: Array.isArray(s.errors) ? s.errors.slice(-MAX_ERRORS) : [], ...(s.lastUpdateCheck !== undefined ? { lastUpdateCheck: s.lastUpdateCheck } : {}), ...(s.lastScrub !== undefined ? { lastScrub: s.lastScrub } : {}) }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.error('ignoring unreadable %s: %s', this.file, (err as Error).message)
    }
  }

  fetched (rec: FetchRecord): void {
    this.state.fetches[`${rec.name}@${rec.version}`] = rec
    const keys = Object.keys(this.state.fetches)
    if (keys.length > MAX_FETCHES) {
      const oldest = keys.sort((a, b) => this.state.fetches[a].at - this.state.fetches[b].at).slice(0, keys.length - MAX_FETCHES)
      for (const k of oldest) delete this.state.fetches[k]
    }
    this.changed()
  }

  error (op: string, err: unknown, details?: Record<string, unknown>): RecentError {
    const e = err as { code?: unknown, message?: unknown }
    const rec: RecentError = {
      at: Date.now(),
      op,
      code: typeof e?.code === 'string' ? e.code : 'ERR_UNKNOWN',
      message: typeof e?.message === 'string' ? e.message : String(err),
      ...(details !== undefined ? { details } : {})
    }
    this.state.errors.push(rec)
    if (this.state.errors.length > MAX_ERRORS) this.state.errors.splice(0, this.state.errors.length - MAX_ERRORS)
    this.changed()
    return rec
  }

  /** Schedules a write (at most one per 200 ms). */
  changed (): void {
    if (this.timer !== undefined) return
    this.timer = setTimeout(() => { this.timer = undefined; void this.flush() }, 200)
    this.timer.unref?.()
  }

  async flush (): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    const text = JSON.stringify(this.state) + '\n'
    this.writing = this.writing.then(async () => {
      await mkdir(join(this.file, '..'), { recursive: true })
      await writeFileAtomic(this.file, new TextEncoder().encode(text), { fsync: false })
    }).catch(err => { log.error('cannot write %s: %s', this.file, (err as Error).message) })
    await this.writing
  }
}
