/**
 * Atomic file replacement: write a sibling temp file, fsync it, rename it over the target and
 * fsync the directory. A crash leaves either the old file or the new one, never a torn one.
 */
import { randomBytes } from 'node:crypto'
import { open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

export async function writeFileAtomic (path: string, bytes: Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path)
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
  const fh = await open(tmp, 'wx', mode)
  try {
    await fh.writeFile(bytes)
    await fh.chmod(mode) // the umask may have narrowed or the platform widened the creation mode
    await fh.sync()
  } catch (err) {
    await fh.close().catch(() => {})
    await rm(tmp, { force: true })
    throw err
  }
  await fh.close()
  try {
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  try {
    const d = await open(dir, 'r')
    try { await d.sync() } finally { await d.close() }
  } catch {
    // some platforms cannot fsync a directory; the rename itself is still atomic
  }
}
