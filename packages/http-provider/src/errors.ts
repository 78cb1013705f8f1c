/**
 * Error codes raised by @swarmpack/http-provider. Every failure is a `SwarmpackError` from
 * @swarmpack/core carrying one of these codes (or a core code such as ERR_NOT_FOUND,
 * ERR_BLOCK_MISMATCH, ERR_ABORTED).
 */
export const HttpErrorCode = {
  /** A response body was longer than the cap (a block larger than MAX_BLOCK_SIZE, or endless data). */
  TOO_LARGE: 'ERR_HTTP_TOO_LARGE',
  /** A mirror answered with an unexpected HTTP status (5xx, 403, ...). */
  BAD_STATUS: 'ERR_HTTP_BAD_STATUS',
  /** A request took longer than its timeout, or a stream ran below the minimum transfer rate. */
  TIMEOUT: 'ERR_HTTP_TIMEOUT',
  /** The connection failed or the body ended early. */
  NETWORK: 'ERR_HTTP_NETWORK',
  /** A CAR response is malformed (bad header, bad section, oversized section). */
  BAD_CAR: 'ERR_HTTP_BAD_CAR',
  /** A body came with a Content-Encoding we cannot decode, or its encoded bytes are corrupt. */
  BAD_ENCODING: 'ERR_HTTP_BAD_ENCODING',
  /** Only in `details.errors`: a mirror that was not asked because it rests after failures. */
  MIRROR_RESTING: 'ERR_HTTP_MIRROR_RESTING',
  /** Every mirror failed for a block (details list each mirror's error). */
  ALL_MIRRORS_FAILED: 'ERR_HTTP_ALL_MIRRORS_FAILED',
  /** A mirror URL or option is invalid. */
  INVALID_CONFIG: 'ERR_HTTP_INVALID_CONFIG'
} as const

export type HttpErrorCode = typeof HttpErrorCode[keyof typeof HttpErrorCode]
