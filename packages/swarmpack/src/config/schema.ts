/**
 * The deployment config schema (zod 4). Objects are strict: an unknown key is an error naming
 * its path, so a misspelt option never silently does nothing. Defaults are filled in here, so
 * the rest of the node reads one fully-specified `DeploymentConfig`.
 */
import { isValidPackageName } from '@swarmpack/core'
import semver from 'semver'
import { z } from 'zod'

const packageName = z.string().refine(isValidPackageName, { message: 'not a valid package name' })
const range = z.string().refine(r => semver.validRange(r) !== null, { message: 'not a valid semver range' })
const keyId = z.string().regex(/^12D3KooW[1-9A-HJ-NP-Za-km-z]{44,46}$/, { message: 'not an ed25519 key id (12D3KooW…)' })
const indexerId = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, { message: 'indexer ids are 1-128 of A-Z a-z 0-9 _ -' })
const httpUrl = z.string().refine(u => {
  try { return ['http:', 'https:'].includes(new URL(u).protocol) } catch { return false }
}, { message: 'not an http(s) URL' })
const multiaddr = z.string().regex(/^\/[a-z0-9]+\//, { message: 'not a multiaddr' })
const ms = z.int().min(0).max(24 * 3600_000)
const pattern = z.string().min(1).max(214)
const variantKey = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}(\+[a-z0-9][a-z0-9._-]{0,63})?$/, { message: 'not a variant key (`linux-x64`, `linux-x64+musl`, `musl`)' })

/** A wanted module: a range, or a range with a variant the host insists on. */
const moduleSpec = z.union([range, z.strictObject({ range, variant: variantKey.optional() })])

const headSources = z.strictObject({
  /** Look the head up in the DHT under the indexer's key (default true when the node runs a peer). */
  dht: z.boolean().default(true),
  /** Mirrors (base URLs) that publish `indexes/<id>/head`. */
  mirrors: z.array(httpUrl).default([]),
  /** Local mirror directories with `indexes/<id>/head`. */
  directories: z.array(z.string().min(1)).default([])
})

const indexer = z.strictObject({
  id: indexerId,
  keys: z.array(keyId).min(1),
  heads: headSources.prefault({})
})

const trust = z.strictObject({
  indexerThreshold: z.int().min(1).default(1),
  /** Empty: no release is trusted yet (a fresh `swarmpack init`); `follow` adds an indexer's publishers. */
  publishers: z.array(z.strictObject({ pattern, roots: z.array(keyId).min(1) })).default([]),
  attesters: z.array(z.strictObject({ id: z.string().min(1).max(128), keys: z.array(keyId).min(1) })).default([]),
  attestations: z.array(z.strictObject({
    pattern,
    threshold: z.int().min(0).max(64),
    kinds: z.array(z.enum(['rebuilt', 'mirror-matched'])).min(1).optional()
  })).default([]),
  clockSkewMs: ms.optional(),
  maxChainDepth: z.int().min(1).max(8).optional()
})

const mirror = z.strictObject({
  url: httpUrl,
  priority: z.int().min(0).max(1000).default(0),
  /** `mirror`: a static swarmpack mirror; `gateway`: an IPFS trustless gateway. */
  kind: z.enum(['mirror', 'gateway']).default('mirror')
})

const directory = z.strictObject({ path: z.string().min(1), priority: z.int().min(0).max(1000).default(0) })

const sources = z.strictObject({
  bootstrap: z.array(multiaddr).default([]),
  /** `swarmpack` (private DHT), `ipfs` (the public one) or a protocol id. */
  dhtProtocol: z.string().min(1).default('swarmpack'),
  mirrors: z.array(mirror).default([]),
  directories: z.array(directory).default([]),
  policy: z.enum(['peers-first', 'race', 'peers-only', 'mirrors-only']).default('peers-first'),
  hedgeAfterMs: ms.optional(),
  stallTimeoutMs: ms.optional()
})

/** Acting as a circuit relay v2 for others: `true`, or its limits. */
const relayServer = z.union([z.boolean(), z.strictObject({
  /** Reservations held at once. Default 64. */
  maxReservations: z.int().min(1).max(10_000).optional(),
  /**
   * Lift libp2p's per-connection limits (2 min, 128 KiB), so whole packages travel through the
   * relay (Bitswap does not run on limited connections). For a swarm's own relay. Default false.
   */
  unlimited: z.boolean().optional()
})])

const network = z.strictObject({
  listen: z.array(multiaddr).optional(),
  announce: z.array(multiaddr).default([]),
  /**
   * `internet` drops private addresses from the DHT; `lan` keeps them and finds peers on the link
   * by mDNS; `loopback` for one machine.
   */
  mode: z.enum(['internet', 'lan', 'loopback']).default('internet'),
  /** HTTP(S) proxy for mirrors; false: never; unset: the environment's HTTP_PROXY. */
  proxy: z.union([httpUrl, z.literal(false)]).optional(),
  noProxy: z.string().optional(),
  maxConnections: z.int().min(1).max(100_000).optional(),
  /** mDNS discovery of peers on the local link (no bootstrap list needed). Unset: on in `lan` mode only. */
  mdns: z.union([z.boolean(), z.strictObject({ intervalMs: z.int().min(1000).max(3600_000) })]).optional(),
  relay: z.strictObject({
    /** Use relays: take a circuit relay v2 reservation on a connected relay and announce the `/p2p-circuit` address (behind a NAT). */
    client: z.boolean().default(false),
    /** Act as a relay for others (a publicly reachable node). */
    server: relayServer.default(false)
  }).prefault({}),
  /** DCUtR: upgrade relayed connections to direct ones by hole punching. Unset: on when the relay client or server is. */
  dcutr: z.boolean().optional(),
  /** AutoNAT: ask peers to dial back our public addresses to learn whether we are reachable (and answer their asks). */
  autonat: z.boolean().default(false),
  /** Map the listen port on a UPnP gateway (home routers). Off by default: with no gateway it only costs SSDP queries. */
  upnp: z.boolean().default(false)
}).superRefine((n, ctx) => {
  // combinations that can do nothing: say so rather than silently ignore them
  const issue = (path: string, message: string): void => { ctx.addIssue({ code: 'custom', path: [path], message }) }
  if (n.mode === 'loopback') {
    if (n.upnp) issue('upnp', 'UPnP maps ports on a LAN gateway; there is none in loopback mode')
    if (n.autonat) issue('autonat', 'AutoNAT checks public addresses; loopback mode has none')
  }
  if (n.dcutr === true && !n.relay.client && n.relay.server === false) {
    issue('dcutr', 'DCUtR upgrades relayed connections: it needs relay.client or relay.server')
  }
})

// ---- operations (src/ops): automatic updates, scrub, structured logs
const clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, { message: 'a time of day HH:MM (24 h)' })
const interval = z.int().min(50).max(30 * 24 * 3600_000)

const updates = z.strictObject({
  /** `off`: never look; `notify`: emit `update:available`, change nothing; `apply`: apply (inside `window` when given). */
  policy: z.enum(['off', 'notify', 'apply']).default('off'),
  /** How often the followed heads are read again (DHT and mirrors), ms. Default 1 h. */
  intervalMs: interval.default(3600_000),
  /** `apply` only inside this daily window (start inclusive, end exclusive; crosses midnight when end < start). */
  window: z.strictObject({ start: clock, end: clock, utc: z.boolean().default(true) }).optional()
})

const scrub = z.strictObject({
  /** Scheduled scrub every this many ms; 0: on demand only. Default 24 h. */
  intervalMs: z.union([z.literal(0), interval]).default(24 * 3600_000),
  /** Bytes read per second at most (store re-hash and installed files). Default 32 MiB/s. */
  rateBytesPerSec: z.int().min(4096).default(32 * 1024 * 1024),
  /** Restore modified or deleted installed files from the store. Default true. */
  restore: z.boolean().default(true),
  /** A release revoked or removed upstream: `report` it, or `uninstall` the wanted modules that use it. */
  revoked: z.enum(['report', 'uninstall']).default('report')
})

const logs = z.strictObject({
  /** Write structured logs as JSON lines (fetch sources, follows, updates, scrub, errors). */
  json: z.boolean().default(false),
  /** File the JSON lines are appended to (default: standard error). */
  file: z.string().min(1).optional()
})

export const deploymentSchema = z.strictObject({
  /** Schema version of this file. */
  version: z.literal(1).default(1),
  /** Host platform for variant selection (default `<os>-<arch>` of this process, e.g. linux-x64). */
  platform: variantKey.optional(),
  modules: z.record(packageName, moduleSpec).default({}),
  /** Empty: nothing to resolve against yet (a fresh `swarmpack init`, or a node that only publishes or serves). */
  indexers: z.array(indexer).default([]),
  trust: trust.prefault({}),
  sources: sources.prefault({}),
  /** `off`: no libp2p peer at all; `consume`: fetch, never serve; `share`: serve what is held; `mirror`. */
  sharing: z.enum(['off', 'consume', 'share', 'mirror']).default('share'),
  network: network.prefault({}),
  cache: z.strictObject({
    maxSize: z.int().min(1).optional(),
    /** How often the cache policy checks the store against `maxSize` (obsolete versions first, then LRU), ms. Default 10 min. */
    checkIntervalMs: interval.default(600_000)
  }).prefault({}),
  generations: z.strictObject({ keep: z.int().min(1).max(1000).default(5) }).prefault({}),
  hooks: z.strictObject({ timeoutMs: z.int().min(1).max(3600_000).default(30_000) }).prefault({}),
  updates: updates.prefault({}),
  scrub: scrub.prefault({}),
  logs: logs.prefault({})
})

/** The deployment config as written (defaults optional). */
export type DeploymentConfigInput = z.input<typeof deploymentSchema>
/** The deployment config with every default filled in. */
export type DeploymentConfig = z.output<typeof deploymentSchema>
export type ModuleSpec = z.output<typeof moduleSpec>
