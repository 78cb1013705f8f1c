/**
 * The stdin side of the harness's child scripts (peer.ts, raw-peer.ts): one command per line,
 * `<command> <arg>...`; a command that throws is reported as an `error` event naming it, and the
 * process stays up. `quit` and SIGTERM run the script's shutdown, once, then exit.
 */
import { createInterface } from 'node:readline'

export type Emit = (event: Record<string, unknown>) => void

/** Prints one JSON event per line on stdout. */
export const emit: Emit = (o) => { process.stdout.write(JSON.stringify(o) + '\n') }

export function readCommands (run: (cmd: string, args: string[]) => Promise<void>, shutdown: () => Promise<void>, out: Emit = emit): void {
  let stopping = false
  const stop = async (): Promise<void> => {
    if (stopping) return
    stopping = true
    await shutdown()
    process.exit(0)
  }
  process.on('SIGTERM', () => { void stop() })
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [cmd, ...args] = line.trim().split(/\s+/)
    if (cmd === undefined || cmd === '') return
    const done = cmd === 'quit' ? stop() : run(cmd, args)
    done.catch((err: Error & { code?: string }) => { out({ event: 'error', command: cmd, code: err.code ?? 'ERR_UNKNOWN', message: err.message }) })
  })
}
