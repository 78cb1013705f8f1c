/** Error codes raised by @swarmpack/dht-provider (always inside a SwarmpackError). */
export const DhtErrorCode = {
  /** The peer configuration is invalid (bad multiaddr, unknown sharing mode, bad option value). */
  INVALID_CONFIG: 'ERR_DHT_INVALID_CONFIG',
  /** No peer in the swarm announced the CID before the lookup timed out. */
  NO_PROVIDERS: 'ERR_DHT_NO_PROVIDERS',
  /** A DHT query or announcement failed (no routing table, every peer failed). */
  QUERY_FAILED: 'ERR_DHT_QUERY_FAILED',
  /** A signed index-head record is malformed, too large, badly signed or expired. */
  INVALID_RECORD: 'ERR_DHT_INVALID_RECORD',
  /** No valid index-head record was found for an indexer key. */
  RECORD_NOT_FOUND: 'ERR_DHT_RECORD_NOT_FOUND',
  /** The persisted peer key is unreadable. */
  INVALID_KEY: 'ERR_DHT_INVALID_KEY',
  /** The provider or peer was used after close(). */
  CLOSED: 'ERR_DHT_CLOSED'
} as const

export type DhtErrorCode = typeof DhtErrorCode[keyof typeof DhtErrorCode]
