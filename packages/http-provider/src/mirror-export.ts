/**
 * `mirror export` for HTTP: the static layout that any web server can serve. Blocks, descriptor
 * and the `ipfs/bafkqaaa` probe file are written by core's `exportMirror`; this adds the indexers'
 * signed head records under `indexes/`, which HTTP clients poll for updates, and an nginx config
 * that serves the directory with the right content type.
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { access, mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { once } from 'node:events'
import { CoreErrorCode, SwarmpackError, exportMirror, mirrorIndexHeadPath, readBlock, throwIfAborted, walkDag } from '@swarmpack/core'
import type { BlockSource, ExportMirrorOptions, ExportMirrorReport } from '@swarmpack/core'
import type { CID } from 'multiformats/cid'
import { carHeader, carSectionPrefix } from './car-writer.js'

/** Directory of whole-package CARs in the static layout: `car/<root>.car`. */
export const MIRROR_CARS_DIR = 'car'

export function mirrorCarPath (root: CID): string {
  return `${MIRROR_CARS_DIR}/${root.toV1().toString()}.car`
}

export interface IndexHeadRecord {
  /** The indexer's id as used in the layout (`indexes/<indexerId>/head`). */
  indexerId: string
  /** The signed head record, bytes exactly as signed. */
  bytes: Uint8Array
}

export interface ExportHttpMirrorOptions extends ExportMirrorOptions {
  /** Signed index head records to publish next to the blocks. */
  heads?: IndexHeadRecord[]
  /**
   * Also write one CAR per root under `car/` (depth-first, no duplicates), so a web server
   * configured as in `nginxMirrorConfig` answers `?format=car` for a whole package with one
   * static file. Doubles the mirror's size. Default false.
   */
  cars?: boolean
}

/** Writes the CAR of `root`'s DAG to `path` (through a temp file), reading blocks one at a time. */
async function writeCarFile (store: BlockSource, root: CID, path: string, signal?: AbortSignal): Promise<void> {
  try {
    await access(path)
    return // written before: the rename below makes a present file a complete one
  } catch {}
  await mkdir(dirname(path), { recursive: true })
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`
  const out = createWriteStream(tmp)
  const put = async (bytes: Uint8Array): Promise<void> => { if (!out.write(bytes)) await once(out, 'drain') }
  try {
    await put(carHeader([root]))
    for await (const block of walkDag([root], async cid => await readBlock(store, cid, { signal }), { signal })) {
      throwIfAborted(signal)
      await put(carSectionPrefix(block.cid, block.bytes.byteLength))
      await put(block.bytes)
    }
    out.end()
    await once(out, 'finish')
    await rename(tmp, path)
  } catch (err) {
    out.destroy()
    await rm(tmp, { force: true })
    throw err
  }
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
  if (options.cars === true) {
    for (const root of roots) await writeCarFile(store, root, join(dir, ...mirrorCarPath(root).split('/')), options.signal)
  }
  for (const head of heads) await writeAtomic(join(dir, ...head.rel.split('/')), head.bytes)
  return report
}

/**
 * nginx configuration that serves a mirror directory: a `map` (http level) and a `server` block.
 * Blocks go out as `application/vnd.ipld.raw`, cacheable forever (they are content-addressed);
 * `?format=car` requests for a root with a pre-built CAR (`cars: true` at export) get that file,
 * others a 404 (the client then fetches raw blocks). No listings, nothing outside the layout.
 */
export function nginxMirrorConfig (opts: { root: string, listen: string }): string {
  return `map "$arg_format|$args" $swarmpack_car {
    default 0;
    "~^car\\|(.*&)?dag-scope=block(&|$)" 2;
    "~^car\\|" 1;
}
server {
    listen ${opts.listen};
    root ${opts.root};
    autoindex off;
    location ~ "^/ipfs/(?<cid>[A-Za-z0-9]+)/?$" {
        if ($swarmpack_car = 1) { rewrite ^ /${MIRROR_CARS_DIR}/$cid.car last; }
        if ($swarmpack_car = 2) { return 400; }
        types { }
        default_type application/vnd.ipld.raw;
        add_header Cache-Control "public, max-age=29030400, immutable";
        add_header X-Content-Type-Options nosniff;
        try_files /ipfs/$cid =404;
    }
    location /${MIRROR_CARS_DIR}/ {
        internal;
        types { }
        default_type "application/vnd.ipld.car; version=1; order=dfs; dups=n";
        add_header Cache-Control "public, max-age=29030400, immutable";
        add_header X-Content-Type-Options nosniff;
    }
    location /indexes/ {
        types { }
        default_type application/octet-stream;
        add_header Cache-Control "no-cache";
    }
    location = /swarmpack-mirror.json { }
    location / { return 404; }
}
`
}
