/**
 * `mirror export` for HTTP: the static layout that any web server can serve. The blocks are written
 * by core's `exportMirror`; this adds what HTTP clients need on top: the empty `ipfs/bafkqaaa`
 * probe file (trustless-gateway liveness check) and the indexers' head records under `indexes/`.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import * as core from '@swarmpack/core'
import { CoreErrorCode, MIRROR_BLOCKS_DIR, PROBE_CID, SwarmpackError, mirrorIndexHeadPath } from '@swarmpack/core'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

export interface IndexHeadRecord {
  /** The indexer's id as used in the layout (`indexes/<indexerId>/head`). */
  indexerId: string
  /** The signed head record, bytes exactly as signed. */
  bytes: Uint8Array
}

export interface ExportHttpMirrorOptions {
  /** Signed index head records to publish next to the blocks. */
  heads?: IndexHeadRecord[]
  signal?: AbortSignal
}

type ExportMirror = (store: Blockstore, roots: CID[], dir: string, options?: { signal?: AbortSignal }) => Promise<unknown>

/** Writes a file under a temporary name and renames it, so no half-written file has a valid name. */
async function writeAtomic (path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`
  try {
    await writeFile(tmp, bytes)
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

/**
 * Exports the DAGs under `roots` from `store` into `dir` as a static mirror, plus the probe file
 * and the given index heads. Returns what core's exportMirror returned.
 */
export async function exportHttpMirror (store: Blockstore, roots: CID[], dir: string, options: ExportHttpMirrorOptions = {}): Promise<unknown> {
  const exportMirror = (core as unknown as { exportMirror?: ExportMirror }).exportMirror
  if (typeof exportMirror !== 'function') {
    throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, 'this build of @swarmpack/core has no exportMirror')
  }
  const result = await exportMirror(store, roots, dir, { signal: options.signal })
  await writeAtomic(join(dir, MIRROR_BLOCKS_DIR, PROBE_CID), new Uint8Array(0))
  for (const head of options.heads ?? []) {
    let rel: string
    try {
      rel = mirrorIndexHeadPath(head.indexerId)
    } catch (err) {
      throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, `invalid indexer id ${JSON.stringify(head.indexerId)}`, { cause: err })
    }
    await writeAtomic(join(dir, ...rel.split('/')), head.bytes)
  }
  return result
}

/**
 * An nginx `server` block that serves a mirror directory: blocks as `application/vnd.ipld.raw`,
 * cacheable forever (they are content-addressed), no directory listings.
 */
export function nginxMirrorConfig (opts: { root: string, listen: string }): string {
  return `server {
    listen ${opts.listen};
    root ${opts.root};
    autoindex off;
    location /ipfs/ {
        types { }
        default_type application/vnd.ipld.raw;
        add_header Cache-Control "public, max-age=29030400, immutable";
        add_header X-Content-Type-Options nosniff;
        try_files $uri =404;
    }
    location /indexes/ {
        types { }
        default_type application/octet-stream;
        add_header Cache-Control "no-cache";
        try_files $uri =404;
    }
    location = /swarmpack-mirror.json { }
    location / { return 404; }
}
`
}
