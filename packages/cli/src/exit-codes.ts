/**
 * Stable exit codes, one per class of error, so scripts can tell "you typed it wrong" from
 * "the network is down" without parsing messages. Every error the node raises carries a stable
 * `code` (`ERR_…`); this maps each code to its class. The table is in the README.
 */

export const ExitCode = {
  OK: 0,
  /** Anything not in a class below (a host hook failed, an internal error). */
  FAILURE: 1,
  /** Bad arguments, flags, config file or lockfile. */
  USAGE: 2,
  /** A package, version, variant, generation, key or index head that does not exist. */
  NOT_FOUND: 3,
  /** The trust policy refused a release, an index or a head. */
  TRUST: 4,
  /** Constraints that cannot all hold: unresolvable versions, a stale lock, a conflicting index entry. */
  CONFLICT: 5,
  /** No source could supply what was needed in time (peers, mirrors, DHT). */
  NETWORK: 6,
  /** The disk: permissions, space, a damaged data dir or store. */
  IO: 7,
  /** Interrupted (SIGINT / SIGTERM). */
  INTERRUPTED: 130
} as const

export type ExitClass = 'failure' | 'usage' | 'not-found' | 'trust' | 'conflict' | 'network' | 'io' | 'interrupted'

const CLASS_CODE: Record<ExitClass, number> = {
  failure: ExitCode.FAILURE,
  usage: ExitCode.USAGE,
  'not-found': ExitCode.NOT_FOUND,
  trust: ExitCode.TRUST,
  conflict: ExitCode.CONFLICT,
  network: ExitCode.NETWORK,
  io: ExitCode.IO,
  interrupted: ExitCode.INTERRUPTED
}

const BY_CODE: Record<string, ExitClass> = {
  ERR_USAGE: 'usage',
  ERR_CONFIG_INVALID: 'usage',
  ERR_INVALID_ARGUMENT: 'usage',
  ERR_LOCK_INVALID: 'usage',
  ERR_PUBLISH_INVALID: 'usage',
  ERR_INVALID_NAME: 'usage',
  ERR_INVALID_VERSION: 'usage',
  ERR_INVALID_RANGE: 'usage',
  ERR_CATALOG_QUERY: 'usage',
  ERR_DHT_INVALID_CONFIG: 'usage',
  ERR_HTTP_INVALID_CONFIG: 'usage',
  ERR_FETCH_CONFIG: 'usage',
  ERR_UNSAFE_PATH: 'usage',
  ERR_INVALID_MANIFEST: 'usage',
  ERR_NOT_FOUND: 'not-found',
  ERR_GENERATION_NOT_FOUND: 'not-found',
  ERR_CATALOG_NOT_FOUND: 'not-found',
  ERR_NO_VARIANT: 'not-found',
  ERR_HEAD_NOT_FOUND: 'not-found',
  ERR_PIN_NOT_FOUND: 'not-found',
  ERR_KEY_NOT_FOUND: 'not-found',
  ERR_CONFIG_NOT_FOUND: 'not-found',
  ERR_CARD_NOT_FOUND: 'not-found',
  ERR_DHT_RECORD_NOT_FOUND: 'not-found',
  ERR_UNRESOLVABLE: 'conflict',
  ERR_RESOLVE_CONFLICT: 'conflict',
  ERR_LOCK_STALE: 'conflict',
  ERR_INDEX_CONFLICT: 'conflict',
  ERR_INDEXER_STATE: 'conflict',
  ERR_TARGET_EXISTS: 'conflict',
  ERR_EXISTS: 'conflict',
  ERR_STORE_LOCKED: 'conflict',
  ERR_INDEX_UNAVAILABLE: 'network',
  ERR_HEAD_SOURCE: 'network',
  ERR_FETCH_INCOMPLETE: 'network',
  ERR_TIMEOUT: 'network',
  ERR_DHT_NO_PROVIDERS: 'network',
  ERR_DHT_QUERY_FAILED: 'network',
  ERR_IO: 'io',
  ERR_STORE_IO: 'io',
  ERR_DATA_DIR_CORRUPT: 'io',
  ERR_PINS_CORRUPT: 'io',
  ERR_CORRUPT_BLOCK: 'io',
  ERR_MIRROR_INVALID: 'io',
  ERR_TRUST_KEY_FILE: 'io',
  ERR_ABORTED: 'interrupted',
  // the node's operations (scrub, doctor, updates)
  ERR_BLOCK_CORRUPT: 'io',
  ERR_BLOCK_UNRECOVERABLE: 'network',
  ERR_FILE_MODIFIED: 'io',
  ERR_FILE_RESTORE_FAILED: 'io',
  ERR_SCRUB_FAILED: 'io',
  ERR_CACHE_OVER_LIMIT: 'io',
  ERR_PACKAGE_REVOKED: 'trust',
  ERR_PACKAGE_REMOVED: 'trust',
  ERR_DHT_UNREACHABLE: 'network',
  ERR_BOOTSTRAP_UNREACHABLE: 'network',
  ERR_MIRROR_UNHEALTHY: 'network',
  ERR_HEAD_STALE: 'network',
  ERR_LISTEN_NOT_BOUND: 'network',
  ERR_UPDATE_FAILED: 'network'
}

const ERRNO_IO = new Set(['EACCES', 'EPERM', 'ENOSPC', 'EROFS', 'EIO', 'EMFILE', 'ENOTDIR', 'EISDIR', 'EDQUOT'])
const ERRNO_NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EADDRINUSE'])

interface Coded { code?: unknown, details?: { errors?: unknown[] }, cause?: unknown }

/** The class of an error: by its code; an apply that failed takes the class of its first cause. */
export function classify (err: unknown, depth = 0): ExitClass {
  const e = err as Coded | undefined
  const code = typeof e?.code === 'string' ? e.code : undefined
  if (code === 'ERR_APPLY_FAILED' && depth < 4) {
    const first = e?.details?.errors?.[0] ?? e?.cause
    return first !== undefined ? classify(first, depth + 1) : 'failure'
  }
  if (code === undefined) return 'failure'
  const known = BY_CODE[code]
  if (known !== undefined) return known
  if (code.startsWith('ERR_TRUST_')) return 'trust'
  if (code.startsWith('ERR_HTTP_') || code.startsWith('ERR_BITSWAP_') || code.startsWith('ERR_DHT_')) return 'network'
  if (ERRNO_IO.has(code)) return 'io'
  if (ERRNO_NETWORK.has(code)) return 'network'
  if (code === 'ENOENT') return 'not-found'
  if (code.startsWith('ERR_STORE_')) return 'io'
  return 'failure'
}

export function exitCodeOf (cls: ExitClass): number {
  return CLASS_CODE[cls]
}

/** What to try next, per class (a specific code can say more). */
const HINT_BY_CODE: Record<string, string> = {
  ERR_CONFIG_NOT_FOUND: 'run `swarmpack init` to write a starter config, or pass --config <file>',
  ERR_CONFIG_INVALID: 'fix the config file at the path named above (`swarmpack doctor` checks it)',
  ERR_INDEX_UNAVAILABLE: 'follow an indexer (`swarmpack follow <url>`), check that its mirrors or peers are up (`swarmpack doctor`)',
  ERR_UNRESOLVABLE: 'widen the ranges named above, or `swarmpack info <name>` to see the versions that exist',
  ERR_LOCK_STALE: 'the config changed since the lock was written: `swarmpack resolve --write`, or drop --frozen',
  ERR_LOCK_INVALID: 'write the lockfile again with `swarmpack resolve --write`',
  ERR_GENERATION_NOT_FOUND: '`swarmpack generations` lists the generations that exist',
  ERR_KEY_NOT_FOUND: 'create one with `swarmpack keys generate`',
  ERR_NO_VARIANT: 'the release has no build for this platform; `swarmpack info <name>` lists its variants',
  ERR_FETCH_INCOMPLETE: 'no peer or mirror had the missing blocks in time; check `swarmpack status` and the mirrors in the config',
  ERR_STORE_LOCKED: 'another swarmpack process (a `serve`?) holds this data dir; stop it or use another --data-dir',
  ERR_EXISTS: 'pass --force to overwrite'
}

const HINT_BY_CLASS: Record<ExitClass, string> = {
  failure: 'run again with DEBUG=swarmpack* for the logs',
  usage: 'see `swarmpack <command> --help`',
  'not-found': 'check the name and that the followed indexes list it (`swarmpack search`)',
  trust: 'the trust policy in the config decides which publishers, indexers and attesters count',
  conflict: 'see the message for the constraints that clash',
  network: 'check the peers and mirrors (`swarmpack doctor`); retrying resumes where it stopped',
  io: 'check permissions and free space of the data dir (`swarmpack verify`)',
  interrupted: 'run the command again: completed downloads are kept'
}

export function hintFor (err: unknown, cls: ExitClass): string {
  const code = (err as Coded | undefined)?.code
  return (typeof code === 'string' ? HINT_BY_CODE[code] : undefined) ?? HINT_BY_CLASS[cls]
}
