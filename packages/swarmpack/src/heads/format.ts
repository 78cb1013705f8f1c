/**
 * The index-head record format the node injects into the DHT (dht-provider is generic over it):
 * the record value is the trust package's signed head envelope, signed by the very key the record
 * key names. Every DHT node runs this on what it stores and serves, with its own clock.
 */
import { compare } from 'uint8arrays/compare'
import { keyIdOfHeadKey, createSwarmpackDhtRecords, registerSwarmpackRecords, type HeadRecordFormat, type HeadRecordMemory, type SwarmpackDhtRecords } from '@swarmpack/dht-provider'
import type { KadDHT } from '@libp2p/kad-dht'
import { checkHead } from './check.js'

export interface IndexHeadFormatOptions {
  /** Milliseconds since the epoch; `Date.now` unless injected. */
  now?: () => number
  /** Clock skew tolerated on issued/expires. Default 5 min (trust's default). */
  skewMs?: number
}

export const DEFAULT_HEAD_SKEW_MS = 5 * 60_000

/** The trust head envelope as a DHT record format: validator and selector. */
export function indexHeadRecordFormat (options: IndexHeadFormatOptions = {}): HeadRecordFormat {
  const now = options.now ?? Date.now
  const skewMs = options.skewMs ?? DEFAULT_HEAD_SKEW_MS
  const validate = (key: Uint8Array, value: Uint8Array): { version: number } => {
    const signer = keyIdOfHeadKey(key)
    const { head } = checkHead(value, { keys: [signer], now: now(), skewMs })
    return { version: head.version }
  }
  return {
    validate,
    // highest version wins; equal versions (only possible for the very same head, or evidence of
    // equivocation) by the smaller bytes, so every node picks the same record
    select: (key, values) => {
      let best = -1
      let bestVersion = -1
      values.forEach((value, i) => {
        let version: number
        try { version = validate(key, value).version } catch { return }
        if (version > bestVersion || (version === bestVersion && compare(value, values[best]) < 0)) {
          best = i
          bestVersion = version
        }
      })
      return Math.max(best, 0)
    }
  }
}

/** kad-dht validators and selectors carrying the trust head format (for a peer's config). */
export function indexHeadDhtRecords (options: IndexHeadFormatOptions & { memory?: HeadRecordMemory } = {}): SwarmpackDhtRecords {
  return createSwarmpackDhtRecords(indexHeadRecordFormat(options), options.memory)
}

/** Installs the trust head format on a DHT built elsewhere (a host's own libp2p node). */
export function registerIndexHeadRecords (dht: KadDHT, options: IndexHeadFormatOptions = {}): void {
  registerSwarmpackRecords(dht, indexHeadDhtRecords(options))
}
