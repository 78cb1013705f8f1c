/**
 * Delegation certificates and chain walking (in the manner of UCAN proofs, narrowed to one
 * capability: "may sign releases of names matching these patterns").
 *
 * A certificate says: `issuer` lets `audience` sign releases whose names match `scope`, from
 * `notBefore` until `expires`, and the audience may delegate at most `maxDepth` further links.
 * A release carries a bag of certificates; the verifier searches from the release's signer
 * upward to a publisher root that the *local* policy configures for the name. Every link must
 * admit the name, lie within its parent's scope (no widening mid-chain, nor above the root's
 * own patterns), be valid now, be unrevoked, and respect every ancestor's depth limit. Search is
 * bounded in depth, in steps, and refuses to revisit a key (cycles).
 */
import { TrustErrorCode, trustError } from './errors.js'
import { PayloadType, openEnvelope, signEnvelope, type SignedObject } from './envelope.js'
import { keyIdOf, publicKeyFromKeyId, type Ed25519PrivateKey, type KeyId } from './keys.js'
import { anyPatternMatches, assertPattern, scopeWithin } from './names.js'
import { asObject, asString, asStringList, asUint, expectKeys, malformed } from './schema.js'
import type { SwarmpackError } from '@swarmpack/core'

export interface Delegation {
  issuer: KeyId
  audience: KeyId
  /** Name patterns the audience may sign releases for. */
  scope: string[]
  /** Milliseconds since the epoch. */
  notBefore: number
  expires: number
  /** How many further delegations below the audience are allowed (0: the audience signs, never delegates). */
  maxDepth: number
}

export interface VerifiedDelegation extends Delegation {
  /** CID (string) of the certificate envelope, the name revocations use. */
  id: string
  bytes: Uint8Array
}

export const MAX_SCOPE_PATTERNS = 32
export const MAX_PROOFS = 16
/** Hard ceiling on chain length whatever a policy says. */
export const MAX_CHAIN_DEPTH = 8

export interface IssueDelegationInput {
  audience: KeyId
  scope: string[]
  notBefore: number
  expires: number
  maxDepth?: number
}

export async function issueDelegation (issuer: Ed25519PrivateKey, input: IssueDelegationInput): Promise<SignedObject> {
  const value: Delegation = {
    issuer: keyIdOf(issuer),
    audience: input.audience,
    scope: input.scope,
    notBefore: input.notBefore,
    expires: input.expires,
    maxDepth: input.maxDepth ?? 0
  }
  validateDelegation(value)
  return signEnvelope(issuer, PayloadType.DELEGATION, value)
}

function validateDelegation (raw: unknown): Delegation {
  const what = 'delegation'
  const obj = asObject(raw, what)
  expectKeys(obj, what, ['issuer', 'audience', 'scope', 'notBefore', 'expires', 'maxDepth'])
  const issuer = asString(obj.issuer, `${what}.issuer`, 80)
  const audience = asString(obj.audience, `${what}.audience`, 80)
  publicKeyFromKeyId(issuer)
  publicKeyFromKeyId(audience)
  const scope = asStringList(obj.scope, `${what}.scope`, MAX_SCOPE_PATTERNS)
  if (scope.length === 0) throw malformed(what, 'empty scope')
  scope.forEach((p, i) => assertPattern(p, `${what}.scope[${i}]`))
  const notBefore = asUint(obj.notBefore, `${what}.notBefore`)
  const expires = asUint(obj.expires, `${what}.expires`)
  if (expires <= notBefore) throw malformed(what, 'expires before it starts')
  const maxDepth = asUint(obj.maxDepth, `${what}.maxDepth`)
  if (maxDepth > MAX_CHAIN_DEPTH) throw malformed(what, `maxDepth above ${MAX_CHAIN_DEPTH}`)
  if (issuer === audience) throw malformed(what, 'issuer delegates to itself')
  return { issuer, audience, scope, notBefore, expires, maxDepth }
}

/** Verifies a certificate's envelope and shape (not its place in a chain). */
export function openDelegation (bytes: Uint8Array): VerifiedDelegation {
  const env = openEnvelope(bytes, PayloadType.DELEGATION)
  const d = validateDelegation(env.value)
  if (d.issuer !== env.signer) {
    throw trustError(TrustErrorCode.BAD_SIGNATURE, `delegation names issuer ${d.issuer} but is signed by ${env.signer}`, { issuer: d.issuer, signer: env.signer })
  }
  return { ...d, id: env.cid.toString(), bytes }
}

export interface ChainContext {
  /** The name being signed for. */
  name: string
  /** Publisher roots from the local policy: key -> every pattern the policy trusts it for. */
  roots: ReadonlyMap<KeyId, readonly string[]>
  now: number
  /** Allowed clock skew, milliseconds. */
  skew: number
  revokedKeys: ReadonlySet<KeyId>
  revokedCertificates: ReadonlySet<string>
  /** Longest chain accepted (certificates), capped at MAX_CHAIN_DEPTH. */
  maxDepth: number
}

export interface ChainResult {
  /** Root key the chain ends at. */
  root: KeyId
  /** Certificates from the signer's up to the root's. Empty when the signer is a root. */
  links: VerifiedDelegation[]
}

const MAX_SEARCH_STEPS = 512

/**
 * Finds a valid delegation path from `signer` to a root for `ctx.name` among `proofs`.
 * Throws the first specific rule a candidate path broke (REVOKED, EXPIRED, SCOPE, DEPTH, CYCLE),
 * or ERR_TRUST_NO_CHAIN when nothing leads towards a root at all.
 */
export function verifyChain (signer: KeyId, proofs: readonly Uint8Array[], ctx: ChainContext): ChainResult {
  if (proofs.length > MAX_PROOFS) throw trustError(TrustErrorCode.MALFORMED, `more than ${MAX_PROOFS} delegation proofs`, { count: proofs.length })
  const byAudience = new Map<KeyId, VerifiedDelegation[]>()
  for (const bytes of proofs) {
    const d = openDelegation(bytes)
    const list = byAudience.get(d.audience) ?? []
    list.push(d)
    byAudience.set(d.audience, list)
  }
  const maxDepth = Math.min(ctx.maxDepth, MAX_CHAIN_DEPTH)
  let failure: SwarmpackError | undefined
  let steps = 0
  const fail = (err: SwarmpackError): undefined => { failure ??= err; return undefined }

  // `below` is the certificate just under `key` in the path (null at the signer); `path` the certificates so far
  const walk = (key: KeyId, below: VerifiedDelegation | null, path: VerifiedDelegation[], visited: Set<KeyId>): ChainResult | undefined => {
    if (++steps > MAX_SEARCH_STEPS) return fail(trustError(TrustErrorCode.DEPTH, 'delegation search exceeded its step budget', { name: ctx.name }))
    if (ctx.revokedKeys.has(key)) return fail(trustError(TrustErrorCode.REVOKED, `key ${key} is revoked`, { keyId: key, name: ctx.name }))
    const authority = ctx.roots.get(key)
    if (authority !== undefined && anyPatternMatches(authority, ctx.name)) {
      if (below !== null && !scopeWithin(below.scope, authority)) {
        return fail(trustError(TrustErrorCode.SCOPE, `certificate ${below.id} grants more than root ${key} holds`, { certificate: below.id, root: key, name: ctx.name }))
      }
      return { root: key, links: path }
    }
    for (const cert of byAudience.get(key) ?? []) {
      const depthBelow = path.length // certificates between this one and the signer; fixed once placed
      if (ctx.revokedCertificates.has(cert.id)) { fail(trustError(TrustErrorCode.REVOKED, `certificate ${cert.id} is revoked`, { certificate: cert.id, name: ctx.name })); continue }
      if (ctx.now + ctx.skew < cert.notBefore) { fail(trustError(TrustErrorCode.EXPIRED, `certificate ${cert.id} is not valid yet`, { certificate: cert.id, notBefore: cert.notBefore, now: ctx.now })); continue }
      if (ctx.now - ctx.skew >= cert.expires) { fail(trustError(TrustErrorCode.EXPIRED, `certificate ${cert.id} expired`, { certificate: cert.id, expires: cert.expires, now: ctx.now })); continue }
      if (!anyPatternMatches(cert.scope, ctx.name)) { fail(trustError(TrustErrorCode.SCOPE, `certificate ${cert.id} does not admit ${ctx.name}`, { certificate: cert.id, scope: cert.scope, name: ctx.name })); continue }
      if (below !== null && !scopeWithin(below.scope, cert.scope)) { fail(trustError(TrustErrorCode.SCOPE, `certificate ${below.id} widens the scope of ${cert.id}`, { certificate: below.id, parent: cert.id, name: ctx.name })); continue }
      if (depthBelow > cert.maxDepth) { fail(trustError(TrustErrorCode.DEPTH, `chain below certificate ${cert.id} is deeper than it allows`, { certificate: cert.id, maxDepth: cert.maxDepth })); continue }
      if (depthBelow + 1 > maxDepth) { fail(trustError(TrustErrorCode.DEPTH, `chain longer than ${maxDepth} certificates`, { maxDepth, name: ctx.name })); continue }
      if (visited.has(cert.issuer)) { fail(trustError(TrustErrorCode.CYCLE, `delegation cycle through ${cert.issuer}`, { keyId: cert.issuer, name: ctx.name })); continue }
      visited.add(cert.issuer)
      const found = walk(cert.issuer, cert, [...path, cert], visited)
      visited.delete(cert.issuer)
      if (found !== undefined) return found
    }
    return undefined
  }

  const found = walk(signer, null, [], new Set([signer]))
  if (found !== undefined) return found
  throw failure ?? trustError(TrustErrorCode.NO_CHAIN, `no delegation chain from ${signer} to a publisher root for ${ctx.name}`, { signer, name: ctx.name })
}
