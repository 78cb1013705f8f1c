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
 *
 * Rules a writer follows (see `exportMirror`) and a reader relies on (`FsProvider`, the HTTP provider):
 * - a file under `ipfs/` is named by the block's CIDv1 in base32 and holds exactly the block's bytes;
 *   readers still verify, since a mirror is not trusted;
 * - every file is written to a temporary name starting with `.` and renamed into place, so a reader
 *   never sees a partial file under a valid name; names starting with `.` are never blocks;
 * - the descriptor is JSON `{ "layout": <MIRROR_LAYOUT_VERSION> }`; a reader refuses a layout it does
 *   not know; unknown extra fields are ignored (room to grow);
 * - no block file is larger than MAX_BLOCK_SIZE; a reader stops reading at MAX_BLOCK_SIZE + 1 bytes.
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

/** An index head record is a small signed object; readers stop reading past this size. */
export const MAX_INDEX_HEAD_SIZE = 64 * 1024

/** Path of an indexer's head record relative to the mirror root. */
export function mirrorIndexHeadPath (indexerId: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(indexerId)) throw new TypeError(`invalid indexer id ${indexerId}`)
  return `${MIRROR_INDEXES_DIR}/${indexerId}/head`
}

/** Contents of `swarmpack-mirror.json`. */
export interface MirrorDescriptor {
  layout: number
}

/** The descriptor this version writes. */
export function mirrorDescriptor (): MirrorDescriptor {
  return { layout: MIRROR_LAYOUT_VERSION }
}

/** Parses a descriptor; returns undefined when it is not one this version can read. */
export function parseMirrorDescriptor (text: string): MirrorDescriptor | undefined {
  try {
    const doc: unknown = JSON.parse(text)
    if (typeof doc !== 'object' || doc === null) return undefined
    const layout = (doc as { layout?: unknown }).layout
    return layout === MIRROR_LAYOUT_VERSION ? { layout } : undefined
  } catch {
    return undefined
  }
}
