/**
 * Error codes raised by pack and unpack on top of the core codes (ERR_TARGET_EXISTS,
 * ERR_SIZE_MISMATCH, ERR_UNSAFE_PATH, ...).
 */
import { SwarmpackError } from '../errors.js'

export const PackageErrorCode = {
  /** A file system operation of pack or unpack failed (missing or unwritable parent, disk full, ...). */
  IO: 'ERR_IO',
  /** pack's chunk worker thread failed or exited before pack was done with it. */
  WORKER: 'ERR_PACK_WORKER'
} as const

export type PackageErrorCode = typeof PackageErrorCode[keyof typeof PackageErrorCode]

/** True for an error raised by a Node system call (it carries `syscall` and a string errno `code`). */
function isSystemError (err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string' && typeof (err as NodeJS.ErrnoException).code === 'string'
}

/**
 * Passes typed errors through and wraps a raw file system error as ERR_IO (errno and path as
 * details, the original as `cause`). Anything else (a provider's own error) is returned as is.
 */
export function asTypedIoError (err: unknown, what: string): unknown {
  if (err instanceof SwarmpackError || !isSystemError(err)) return err
  return new SwarmpackError(PackageErrorCode.IO, `${what}: ${err.message}`, {
    cause: err,
    details: { errno: err.code, syscall: err.syscall, ...(err.path === undefined ? {} : { path: err.path }) }
  })
}
