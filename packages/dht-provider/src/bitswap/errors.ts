/** Error codes raised by the Bitswap module (always as SwarmpackError). */
export const BitswapErrorCode = {
  /** The Bitswap node is not started, or was stopped. */
  NOT_STARTED: 'ERR_BITSWAP_NOT_STARTED',
  /** The session was closed while a request was pending. */
  SESSION_CLOSED: 'ERR_BITSWAP_SESSION_CLOSED',
  /** A message exceeds the 2 MiB cap (or a single block cannot fit in one). */
  MESSAGE_TOO_LARGE: 'ERR_BITSWAP_MESSAGE_TOO_LARGE',
  /** A message could not be decoded or breaks the protocol. */
  INVALID_MESSAGE: 'ERR_BITSWAP_INVALID_MESSAGE',
  /** The peer is banned. */
  PEER_BANNED: 'ERR_BITSWAP_PEER_BANNED'
} as const

export type BitswapErrorCode = typeof BitswapErrorCode[keyof typeof BitswapErrorCode]
