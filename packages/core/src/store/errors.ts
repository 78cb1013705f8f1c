/**
 * Error codes raised by the block store and the mirror code, on top of the core codes
 * (ERR_NOT_FOUND, ERR_BLOCK_MISMATCH, ERR_BLOCK_TOO_LARGE, ERR_CORRUPT_BLOCK, ERR_ABORTED, ...).
 */
import { CoreErrorCode, SwarmpackError } from '../errors.js'

export const StoreErrorCode = {
  /** The store was used after `close()`. */
  STORE_CLOSED: 'ERR_STORE_CLOSED',
  /** Another live process (or another open instance in this process) holds the store's lock. */
  STORE_LOCKED: 'ERR_STORE_LOCKED',
  /** The directory holds a store in a layout this version does not read (see the core README). */
  STORE_FORMAT: 'ERR_STORE_FORMAT',
  /** The database file is damaged (its header is not LMDB's); the store is a cache: delete it. */
  STORE_CORRUPT: 'ERR_STORE_CORRUPT',
  /** A file system operation on the store or a mirror failed (disk full, permissions, ...). */
  STORE_IO: 'ERR_STORE_IO',
  /** The pins file cannot be read back; refusing to continue rather than forgetting pins. */
  PINS_CORRUPT: 'ERR_PINS_CORRUPT',
  /** `unpin` of a name that is not pinned. */
  PIN_NOT_FOUND: 'ERR_PIN_NOT_FOUND',
  /** `delete` of a block that a pin reaches. */
  BLOCK_PINNED: 'ERR_BLOCK_PINNED',
  /** A mirror directory lacks a valid `swarmpack-mirror.json` or has an unknown layout version. */
  MIRROR_INVALID: 'ERR_MIRROR_INVALID'
} as const

export type StoreErrorCode = typeof StoreErrorCode[keyof typeof StoreErrorCode]

/**
 * ERR_NOT_FOUND that also carries the `NotFoundError` name of interface-store, so IPFS components
 * (Helia, Bitswap) that test `err.name === 'NotFoundError'` treat it as a plain miss.
 */
export class BlockNotFoundError extends SwarmpackError {
  override readonly name: string = 'NotFoundError'

  constructor (cid: string, where: string) {
    super(CoreErrorCode.NOT_FOUND, `block ${cid} not found in ${where}`, { details: { cid, where } })
  }
}

/** Wraps an unexpected file system error with a stable code, keeping the errno as a detail. */
export function ioError (message: string, err: unknown): SwarmpackError {
  const errno = (err as NodeJS.ErrnoException | undefined)?.code
  return new SwarmpackError(StoreErrorCode.STORE_IO, `${message}: ${(err as Error)?.message ?? String(err)}`, {
    cause: err,
    details: errno === undefined ? {} : { errno }
  })
}

export function errnoOf (err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code
}
