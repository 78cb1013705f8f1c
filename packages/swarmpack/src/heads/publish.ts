/**
 * Publishing a signed head: into the DHT under the signing key (`/swarmpack-head/<key id>`) and
 * as a file in a mirror directory (`indexes/<indexer>/head`). Both carry the very same bytes.
 */
import { writeMirrorIndexHead, throwIfAborted } from '@swarmpack/core'
import { indexHeadKey, putHeadRecord } from '@swarmpack/dht-provider'
import { openIndexHead, type VerifiedHead } from '@swarmpack/trust'
import type { KadDHT } from '@libp2p/kad-dht'

export interface PublishHeadResult {
  head: VerifiedHead
  /** Remote peers that stored the record. */
  stored: number
}

/**
 * Puts a signed head into the DHT. The DHT must carry the head format (a peer created with
 * `headRecords: indexHeadRecordFormat()`, or `registerIndexHeadRecords(dht)`): this node's own
 * validator checks it first, refusing a rollback of what it has seen. ERR_DHT_QUERY_FAILED when
 * no peer stored it.
 */
export async function publishHeadToDht (dht: KadDHT, headBytes: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<PublishHeadResult> {
  throwIfAborted(options.signal)
  const head = openIndexHead(headBytes)
  const { stored } = await putHeadRecord(dht, indexHeadKey(head.signer), headBytes, options)
  return { head, stored }
}

/** Writes a signed head into a mirror directory (atomically), where mirrors and readers expect it. */
export async function publishHeadToMirror (mirrorDir: string, headBytes: Uint8Array, options: { fsync?: boolean } = {}): Promise<{ head: VerifiedHead, path: string }> {
  const head = openIndexHead(headBytes)
  await writeMirrorIndexHead(mirrorDir, head.indexer, headBytes, options)
  return { head, path: `${mirrorDir}/indexes/${head.indexer}/head` }
}
