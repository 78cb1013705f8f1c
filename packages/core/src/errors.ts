/**
 * Typed errors with stable codes. Every failure swarmpack reports is a `SwarmpackError` whose
 * `code` never changes between releases, so host apps can branch on it. Packages add their own
 * codes (prefixed by area) but always use this class.
 */
export class SwarmpackError extends Error {
  override readonly name: string = 'SwarmpackError'
  readonly code: string
  readonly details: Record<string, unknown>

  constructor (code: string, message: string, options: { cause?: unknown, details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.details = options.details ?? {}
  }
}

/** Codes raised by @swarmpack/core. */
export const CoreErrorCode = {
  /** Bytes do not hash to the CID they were requested under. */
  BLOCK_MISMATCH: 'ERR_BLOCK_MISMATCH',
  /** A block is larger than MAX_BLOCK_SIZE. */
  BLOCK_TOO_LARGE: 'ERR_BLOCK_TOO_LARGE',
  /** A CID uses a hash function or codec swarmpack does not accept. */
  UNSUPPORTED_CID: 'ERR_UNSUPPORTED_CID',
  /** A block is not present in a store or at a provider. */
  NOT_FOUND: 'ERR_NOT_FOUND',
  /** An operation was cancelled through its AbortSignal. */
  ABORTED: 'ERR_ABORTED',
  /** A package name breaks the naming rule. */
  INVALID_NAME: 'ERR_INVALID_NAME',
  /** A version is not valid semver. */
  INVALID_VERSION: 'ERR_INVALID_VERSION',
  /** A manifest or other structured object fails schema validation or its limits. */
  INVALID_MANIFEST: 'ERR_INVALID_MANIFEST',
  /** A path in a manifest (or on disk while packing) is unsafe: absolute, `..`, NUL, duplicate, device file, link leaving the root. */
  UNSAFE_PATH: 'ERR_UNSAFE_PATH',
  /** Unpacked file contents differ in size from what the manifest declares. */
  SIZE_MISMATCH: 'ERR_SIZE_MISMATCH',
  /** The unpack target already exists. */
  TARGET_EXISTS: 'ERR_TARGET_EXISTS',
  /** A stored block failed verification. */
  CORRUPT_BLOCK: 'ERR_CORRUPT_BLOCK',
  /** Invalid argument passed to an API. */
  INVALID_ARGUMENT: 'ERR_INVALID_ARGUMENT'
} as const

export type CoreErrorCode = typeof CoreErrorCode[keyof typeof CoreErrorCode]

export function isSwarmpackError (err: unknown, code?: string): err is SwarmpackError {
  return err instanceof SwarmpackError && (code === undefined || err.code === code)
}

/** Throws ERR_ABORTED if the signal has fired. */
export function throwIfAborted (signal?: AbortSignal): void {
  if (signal?.aborted === true) {
    throw new SwarmpackError(CoreErrorCode.ABORTED, 'the operation was aborted', { cause: signal.reason })
  }
}
