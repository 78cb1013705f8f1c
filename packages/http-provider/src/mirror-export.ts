/**
 * `mirror export` for HTTP: the static layout that any web server can serve. Blocks, descriptor
 * and the `ipfs/bafkqaaa` probe file are written by core's `exportMirror`; this adds the indexers'
 * signed head records under `indexes/`, which HTTP clients poll for updates, and an nginx config
 * that serves the directory with the right content type.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { CoreErrorCode, SwarmpackError, exportMirror, mirrorIndexHeadPath } from '@swarmpack/core'
import type { BlockSource, ExportMirrorOptions, ExportMirrorReport } from '@swarmpack/core'
import type { CID } from 'multiformats/cid'

export interface IndexHeadRecord {
  /** The indexer's id as used in the layout (`indexes/<indexerId>/head`). */
  indexerId: string
  /** The signed head record, bytes exactly as signed. */
  bytes: Uint8Array
}

export interface ExportHttpMirrorOptions extends ExportMirrorOptions {
  /** Signed index head records to publish next to the blocks. */
  heads?: IndexHeadRecord[]
}

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
 * Exports the DAGs under `roots` from `store` into `dir` as a static mirror (core's exportMirror),
 * then the given index heads. Head ids are checked before anything is written.
 */
export async function exportHttpMirror (store: BlockSource, roots: CID[], dir: string, options: ExportHttpMirrorOptions = {}): Promise<ExportMirrorReport> {
  const heads = (options.heads ?? []).map(head => {
    try {
      return { rel: mirrorIndexHeadPath(head.indexerId), bytes: head.bytes }
    } catch (err) {
      throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, `invalid indexer id ${JSON.stringify(head.indexerId)}`, { cause: err })
    }
  })
  const report = await exportMirror(store, roots, dir, options)
  for (const head of heads) await writeAtomic(join(dir, ...head.rel.split('/')), head.bytes)
  return report
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
