/**
 * A lock file so two processes never share one store directory (each keeps its own in-memory
 * index and accounting). It holds the owner's pid; a lock whose process is gone (a crash, a
 * SIGKILL) is stale and taken over, so a store always reopens after a crash.
 */
import { open, readFile, unlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { SwarmpackError } from '../errors.js'
import { StoreErrorCode, errnoOf, ioError } from './errors.js'

export const LOCK_FILE = 'store.lock'

/** Directories opened by this process; the pid in the lock file can't tell instances apart. */
const heldHere = new Set<string>()

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return errnoOf(err) === 'EPERM'
  }
}

export async function acquireLock (dir: string): Promise<() => Promise<void>> {
  const key = resolve(dir)
  if (heldHere.has(key)) {
    throw new SwarmpackError(StoreErrorCode.STORE_LOCKED, `block store ${dir} is already open in this process`, { details: { dir, pid: process.pid } })
  }
  const path = join(dir, LOCK_FILE)
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o644)
      try { await fh.writeFile(String(process.pid)) } finally { await fh.close() }
      break
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw ioError(`cannot create lock ${path}`, err)
      const pid = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10)
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new SwarmpackError(StoreErrorCode.STORE_LOCKED, `block store ${dir} is in use by process ${pid}`, { details: { dir, pid } })
      }
      if (attempt >= 2) throw new SwarmpackError(StoreErrorCode.STORE_LOCKED, `cannot take over the lock of ${dir}`, { details: { dir } })
      await unlink(path).catch(() => {})
    }
  }
  heldHere.add(key)
  let released = false
  return async () => {
    if (released) return
    released = true
    heldHere.delete(key)
    await unlink(path).catch(() => {})
  }
}
