/**
 * Atomic file writes: the bytes go to a temporary file in the destination's directory, are
 * flushed to disk, and only then renamed over the final name. rename(2) within one directory is
 * atomic, so a reader (or a process restarting after a crash) sees either no file or the whole
 * file, never a prefix. Temporary names start with TEMP_PREFIX so a restart can sweep leftovers.
 */
import { randomBytes } from 'node:crypto'
import { open, readdir, rename, stat, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/** Leading dot: never a valid CID, so a temp file can't be mistaken for a block or served as one. */
export const TEMP_PREFIX = '.swarmpack-tmp-'

export interface AtomicWriteOptions {
  /** Flush the data before the rename (default true). Without it a power loss may leave an empty file. */
  fsync?: boolean
  /** Permission bits of the file (default 0o644; 0o600 for keys and trust state). */
  mode?: number
  /** Also flush the directory after the rename, so the new name itself survives a power loss (default false). */
  syncDir?: boolean
}

export function tempPathFor (path: string): string {
  return join(dirname(path), `${TEMP_PREFIX}${basename(path)}-${randomBytes(6).toString('hex')}`)
}

/** Writes `bytes` (or a sequence of chunks, for large files built piecewise) to `path` atomically. */
export async function writeFileAtomic (path: string, bytes: Uint8Array | Iterable<Uint8Array>, options: AtomicWriteOptions = {}): Promise<void> {
  const tmp = tempPathFor(path)
  let renamed = false
  try {
    const mode = options.mode ?? 0o644
    const fh = await open(tmp, 'wx', mode)
    try {
      // the umask may have narrowed the creation mode (or a platform widened it)
      if (options.mode !== undefined) await fh.chmod(mode)
      for (const chunk of bytes instanceof Uint8Array ? [bytes] : bytes) {
        let off = 0
        while (off < chunk.byteLength) {
          const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off)
          off += bytesWritten
        }
      }
      // fdatasync, not fsync: it flushes the data and the metadata needed to read it back (the
      // size, the block map), which is all the rename below relies on; it skips timestamps, so
      // it costs less on a journalling file system. Many writes in flight (pack's window) also
      // let the file system commit their syncs together: the guarantee stays per file (each
      // rename follows its own completed sync), only the waiting overlaps.
      if (options.fsync !== false) await fh.datasync()
    } finally {
      await fh.close()
    }
    await rename(tmp, path)
    renamed = true
  } finally {
    if (!renamed) await unlink(tmp).catch(() => {})
  }
  if (options.syncDir === true) await syncDir(dirname(path))
}

export function isTempName (name: string): boolean {
  return name.startsWith(TEMP_PREFIX)
}

/** Removes leftover temporary files in `dir`; returns how many. Missing directory: 0. */
export async function removeTempFiles (dir: string, olderThanMs = 0): Promise<number> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return 0
  }
  let removed = 0
  const now = Date.now()
  for (const name of names) {
    if (!isTempName(name)) continue
    const path = join(dir, name)
    if (olderThanMs > 0) {
      const st = await stat(path).catch(() => undefined)
      if (st === undefined || now - st.mtimeMs < olderThanMs) continue
    }
    await unlink(path).then(() => { removed++ }, () => {})
  }
  return removed
}

/** Flushes a directory's entries (a rename or unlink in it) to disk; best effort. */
export async function syncDir (dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r')
    try { await fh.sync() } finally { await fh.close() }
  } catch {
    // some platforms and file systems can't fsync a directory; nothing more to do there
  }
}
