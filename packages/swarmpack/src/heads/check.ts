/**
 * The checks a head gets wherever it came from (DHT, mirror, directory), before the trust verifier
 * reads the index it names: trust's envelope and shape verification (`openIndexHead`), the signer
 * among the indexer's accepted keys, the indexer named, the validity window, and the comparison with
 * the head already accepted (rollback, equivocation). Failures carry trust's codes.
 */
import { SwarmpackError } from '@swarmpack/core'
import { TrustErrorCode, openIndexHead, type KeyId, type VerifiedHead } from '@swarmpack/trust'
import { equals } from 'uint8arrays/equals'

/** The head a follower accepted last (trust state), for rollback and equivocation checks. */
export interface AcceptedHead {
  version: number
  /** The accepted head envelope, bytes as received. */
  head: Uint8Array
}

export interface HeadCheckContext {
  /** Indexer id the head must name; undefined accepts any (the DHT, which knows only keys). */
  indexer?: string
  /** Keys whose signatures are accepted; undefined: only the key named by `signer`. */
  keys?: readonly KeyId[]
  accepted?: AcceptedHead
  now: number
  skewMs: number
}

function trustFailure (code: string, message: string, details: Record<string, unknown>): SwarmpackError {
  return new SwarmpackError(code, message, { details })
}

/**
 * Opens and checks a head. Returns the verified head and whether it is newer than the accepted
 * one (false: the very head already accepted). Throws ERR_TRUST_* otherwise.
 */
export function checkHead (bytes: Uint8Array, ctx: HeadCheckContext): { head: VerifiedHead, newer: boolean } {
  const head = openIndexHead(bytes)
  const indexer = ctx.indexer ?? head.indexer
  if (ctx.keys !== undefined && !ctx.keys.includes(head.signer)) {
    throw trustFailure(TrustErrorCode.BAD_SIGNATURE, `head signed by ${head.signer}, which is not a key of indexer ${indexer}`, { indexer, signer: head.signer })
  }
  if (head.indexer !== indexer) throw trustFailure(TrustErrorCode.MISMATCH, `head is for indexer ${head.indexer}, not ${indexer}`, { indexer, got: head.indexer })
  if (ctx.accepted !== undefined) {
    if (head.version < ctx.accepted.version) {
      throw trustFailure(TrustErrorCode.ROLLBACK, `head version ${head.version} of ${indexer} is older than the accepted ${ctx.accepted.version}`, { indexer, version: head.version, stored: ctx.accepted.version })
    }
    if (head.version === ctx.accepted.version) {
      if (equals(openIndexHead(ctx.accepted.head).payload, head.payload)) return { head, newer: false }
      throw trustFailure(TrustErrorCode.EQUIVOCATION, `indexer ${indexer} signed two different heads with version ${head.version}`, { indexer, version: head.version })
    }
  }
  if (ctx.now + ctx.skewMs < head.issued) throw trustFailure(TrustErrorCode.EXPIRED, `head of ${indexer} is issued in the future`, { indexer, issued: head.issued, now: ctx.now })
  if (ctx.now - ctx.skewMs >= head.expires) throw trustFailure(TrustErrorCode.FREEZE, `head version ${head.version} of ${indexer} expired`, { indexer, expires: head.expires, now: ctx.now })
  return { head, newer: true }
}
