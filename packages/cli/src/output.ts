/**
 * Where output goes. Human mode: progress, logs and the summary on stderr; the data a command
 * was asked for (a table, a key id) on stdout. `--json`: exactly one document on stdout at the
 * end, nothing else there. `--json=stream`: NDJSON on stdout, events as they happen and the result
 * document last. Every JSON line carries the schema version.
 */
import { classify, exitCodeOf, hintFor, type ExitClass } from './exit-codes.js'

export const JSON_SCHEMA = { name: 'swarmpack-cli', version: 1 } as const

export type OutputMode = 'human' | 'json' | 'stream'

export interface Streams {
  stdout: NodeJS.WritableStream & { isTTY?: boolean, columns?: number }
  stderr: NodeJS.WritableStream & { isTTY?: boolean, columns?: number }
}

/** JSON for things the node hands out: CIDs as strings, bytes as base64, errors as code + message. */
export function jsonReplacer (this: unknown, key: string, value: unknown): unknown {
  // a CID's toJSON ({ "/": … }) has run by now: look at the value as it was
  const original = (this as Record<string, unknown> | undefined)?.[key] as { asCID?: unknown, toString: () => string } | undefined
  if (original !== null && typeof original === 'object' && original.asCID === original) return original.toString()
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? value.toString() : value
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  if (value instanceof Error) return { code: (value as { code?: string }).code ?? 'ERR_UNKNOWN', message: value.message }
  if (value instanceof Map) return Object.fromEntries(value)
  if (value instanceof Set) return [...value]
  return value
}

export function toJson (value: unknown, indent?: number): string {
  return JSON.stringify(value, jsonReplacer, indent)
}

export interface ErrorReport {
  code: string
  message: string
  hint: string
  class: ExitClass
  exitCode: number
  details?: unknown
}

export function errorReport (err: unknown): ErrorReport {
  const cls = classify(err)
  const e = err as { code?: unknown, message?: unknown, details?: unknown }
  const report: ErrorReport = {
    code: typeof e?.code === 'string' ? e.code : 'ERR_UNKNOWN',
    message: typeof e?.message === 'string' ? e.message : String(err),
    hint: hintFor(err, cls),
    class: cls,
    exitCode: exitCodeOf(cls)
  }
  if (e?.details !== undefined) report.details = e.details
  return report
}

export class Output {
  private ended = false

  constructor (readonly mode: OutputMode, readonly streams: Streams, readonly command: string, readonly quiet = false) {}

  get json (): boolean {
    return this.mode !== 'human'
  }

  /** A terminal on stderr, where bars may redraw in place. */
  get tty (): boolean {
    return this.mode === 'human' && this.streams.stderr.isTTY === true && process.env.TERM !== 'dumb'
  }

  /** A progress or status line (stderr, human mode only). */
  log (text: string): void {
    if (this.mode === 'human' && !this.quiet) this.streams.stderr.write(text + '\n')
  }

  /** A warning: stderr in human mode, an event in stream mode. */
  warn (text: string): void {
    if (this.mode === 'human') this.streams.stderr.write(`warning: ${text}\n`)
    else this.event('warning', { message: text })
  }

  /** Requested data in human mode (stdout). */
  print (text: string): void {
    if (this.mode === 'human') this.streams.stdout.write(text.endsWith('\n') ? text : text + '\n')
  }

  /** An NDJSON event (stream mode only). */
  event (event: string, detail: unknown): void {
    if (this.mode === 'stream') this.streams.stdout.write(toJson({ schema: JSON_SCHEMA, type: 'event', command: this.command, event, time: Date.now(), detail }) + '\n')
  }

  /** The result document (JSON modes). */
  result (result: unknown): void {
    if (this.ended) return
    this.ended = true
    if (this.mode === 'json') this.streams.stdout.write(toJson({ schema: JSON_SCHEMA, command: this.command, ok: true, result }, 2) + '\n')
    else if (this.mode === 'stream') this.streams.stdout.write(toJson({ schema: JSON_SCHEMA, type: 'result', command: this.command, ok: true, result }) + '\n')
  }

  /** Reports an error (code, message, hint) and returns the exit code. */
  error (err: unknown): number {
    const report = errorReport(err)
    if (this.mode === 'human') {
      this.streams.stderr.write(`error ${report.code} (exit ${report.exitCode}, ${report.class}): ${report.message}\n  hint: ${report.hint}\n`)
      if (process.env.SWARMPACK_DEBUG !== undefined && err instanceof Error) this.streams.stderr.write(`${err.stack ?? ''}\n`)
    } else if (!this.ended) {
      this.ended = true
      const doc = { schema: JSON_SCHEMA, ...(this.mode === 'stream' ? { type: 'result' } : {}), command: this.command, ok: false, error: report }
      this.streams.stdout.write(toJson(doc, this.mode === 'json' ? 2 : undefined) + '\n')
    }
    return report.exitCode
  }
}
