/**
 * Error codes raised by @swarmpack/trust. Every refusal names the rule that failed, so a host can
 * tell "not signed by anyone we trust" from "signed, but the index is stale". Codes never change.
 */
import { SwarmpackError } from '@swarmpack/core'

export const TrustErrorCode = {
  /** No delegation path leads from the signing key to a publisher root the policy has for the name. */
  NO_CHAIN: 'ERR_TRUST_NO_CHAIN',
  /** A link's scope does not admit the name, or a link widens its parent's scope. */
  SCOPE: 'ERR_TRUST_SCOPE',
  /** A certificate, attestation, head or index is outside its validity window (expired or not yet valid). */
  EXPIRED: 'ERR_TRUST_EXPIRED',
  /** A key or certificate is revoked by a followed index. */
  REVOKED: 'ERR_TRUST_REVOKED',
  /** A chain is longer than a link or the policy allows. */
  DEPTH: 'ERR_TRUST_DEPTH',
  /** A chain visits the same key twice. */
  CYCLE: 'ERR_TRUST_CYCLE',
  /** Fewer distinct indexers or attester identities than the policy requires. */
  THRESHOLD: 'ERR_TRUST_THRESHOLD',
  /** A head or index is older than the one already accepted. */
  ROLLBACK: 'ERR_TRUST_ROLLBACK',
  /** The newest head or index known is expired: updates are being withheld. */
  FREEZE: 'ERR_TRUST_FREEZE',
  /** Two different heads carry the same version (kept as evidence). */
  EQUIVOCATION: 'ERR_TRUST_EQUIVOCATION',
  /** A newer index silently drops or rewrites a release an older one listed. */
  DROPPED: 'ERR_TRUST_DROPPED',
  /** A signature does not verify, or is made by a key the verifier does not accept for this role. */
  BAD_SIGNATURE: 'ERR_TRUST_BAD_SIGNATURE',
  /** An envelope carries another kind of object than the one expected. */
  PAYLOAD_TYPE: 'ERR_TRUST_PAYLOAD_TYPE',
  /** Bytes fail decoding, canonical form, schema, size or nesting limits. */
  MALFORMED: 'ERR_TRUST_MALFORMED',
  /** The bytes at hand do not match what the signed objects describe (tampered release or manifest). */
  MISMATCH: 'ERR_TRUST_MISMATCH',
  /** No followed index lists name@version (or it was removed). */
  NOT_LISTED: 'ERR_TRUST_NOT_LISTED',
  /** Followed indexers list different releases for one name@version. */
  CONFLICT: 'ERR_TRUST_CONFLICT',
  /** The local policy is invalid (for instance one key under two identities). */
  POLICY: 'ERR_TRUST_POLICY',
  /** A key file is missing, unreadable, of the wrong type or readable by others. */
  KEY_FILE: 'ERR_TRUST_KEY_FILE',
  /** A block the check needs is not available. */
  MISSING_BLOCK: 'ERR_TRUST_MISSING_BLOCK',
  /** Another process held an indexer's state lock for longer than the wait allows. */
  STATE_LOCKED: 'ERR_TRUST_STATE_LOCKED'
} as const

export type TrustErrorCode = typeof TrustErrorCode[keyof typeof TrustErrorCode]

export function trustError (code: TrustErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown): SwarmpackError {
  return new SwarmpackError(code, message, { details, cause })
}
