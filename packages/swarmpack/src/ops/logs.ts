/**
 * Structured logs (U4): one JSON object per line when `logs.json` is set, to `logs.file` or
 * standard error, and always to the libp2p debug logger (`DEBUG=swarmpack:ops*`). Every fetch
 * names its sources (peer ids, mirror URLs, directories) with blocks and bytes from each.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { dirname } from 'node:path'
import { logger } from '@libp2p/logger'

export type LogLevel = 'info' | 'warn' | 'error'

export interface LogEntry {
  time: string
  level: LogLevel
  /** `fetch`, `follow`, `update:available`, `update:applied`, `scrub`, `error` ... */
  event: string
  [key: string]: unknown
}

export interface JsonLogInit {
  json: boolean
  file?: string
  /** A host's own sink (tests, log shippers); gets every entry whatever `json` says. */
  sink?: (entry: LogEntry) => void
}

export class OpsLog {
  private readonly debug = logger('swarmpack:ops')
  private stream?: WriteStream

  constructor (private readonly init: JsonLogInit) {
    if (init.json && init.file !== undefined) {
      mkdirSync(dirname(init.file), { recursive: true })
      this.stream = createWriteStream(init.file, { flags: 'a' })
      this.stream.on('error', (err) => { this.debug.error('cannot write log file %s: %s', init.file, err.message) })
    }
  }

  write (level: LogLevel, event: string, fields: Record<string, unknown> = {}): void {
    const entry: LogEntry = { time: new Date().toISOString(), level, event, ...fields }
    if (level === 'error') this.debug.error('%s %j', event, fields)
    else this.debug('%s %j', event, fields)
    try { this.init.sink?.(entry) } catch (err) { this.debug.error('log sink threw: %s', (err as Error).message) }
    if (!this.init.json) return
    const line = JSON.stringify(entry) + '\n'
    if (this.stream !== undefined) this.stream.write(line)
    else process.stderr.write(line)
  }

  async close (): Promise<void> {
    const s = this.stream
    this.stream = undefined
    if (s !== undefined) await new Promise<void>(resolve => { s.end(resolve) })
  }
}
