/**
 * The static mirror layout: plain files that any web server (nginx, a CDN, an object store) or a
 * directory can hold. Blocks live at `ipfs/<cid>`, so a static server that ignores query strings
 * answers IPFS Trustless Gateway raw-block requests (`GET /ipfs/<cid>?format=raw`) as well.
 *
 *   <mirror>/
 *     swarmpack-mirror.json        descriptor: { "layout": 1 }
 *     ipfs/<cidv1 base32>          one file per block, the block's bytes
 *     ipfs/bafkqaaa                empty file, the trustless-gateway liveness probe
 *     indexes/<indexer-id>/head    latest signed index head of a followed indexer (bytes as signed)
 *     indexes/<indexer-id>/<n>     (index blocks themselves are ordinary blocks under ipfs/)
 */
import type { CID } from 'multiformats/cid'

export const MIRROR_LAYOUT_VERSION = 1
export const MIRROR_DESCRIPTOR = 'swarmpack-mirror.json'
export const MIRROR_BLOCKS_DIR = 'ipfs'
export const MIRROR_INDEXES_DIR = 'indexes'
/** Identity CID of the empty block; gateways answer it to show they are alive. */
export const PROBE_CID = 'bafkqaaa'

/** Path of a block relative to the mirror root (always forward slashes, as in a URL). */
export function mirrorBlockPath (cid: CID): string {
  return `${MIRROR_BLOCKS_DIR}/${cid.toV1().toString()}`
}

/** Path of an indexer's head record relative to the mirror root. */
export function mirrorIndexHeadPath (indexerId: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(indexerId)) throw new TypeError(`invalid indexer id ${indexerId}`)
  return `${MIRROR_INDEXES_DIR}/${indexerId}/head`
}
