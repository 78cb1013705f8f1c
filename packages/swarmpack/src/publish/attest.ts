/**
 * attest: an attester signs that it checked a release's variants (rebuilt them, or found the same
 * bytes on a mirror it trusts): one attestation per variant manifest.
 */
import { SwarmpackError, throwIfAborted } from '@swarmpack/core'
import { AttestationKind, TrustErrorCode, openRelease, signAttestation, type Ed25519PrivateKey } from '@swarmpack/trust'
import type { CID } from 'multiformats/cid'
import { PublishErrorCode, publishError } from './errors.js'

export interface AttestOptions {
  key: Ed25519PrivateKey
  /** `rebuilt` (default) or `mirror-matched`. */
  kind?: AttestationKind
  /**
   * Manifest roots the attester obtained itself (by rebuilding): only these variants are attested,
   * and one that is no variant of the release is refused (ERR_TRUST_MISMATCH). Default: every variant.
   */
  manifests?: CID[]
  /** Validity: from `issued` (default now) for `ttlMs` (default 90 days). */
  issued?: number
  ttlMs?: number
  /** Stores each attestation envelope as a block too. */
  blockstore?: { put: (cid: CID, bytes: Uint8Array) => unknown }
  signal?: AbortSignal
}

export interface SignedAttestation { variant: string, manifest: CID, cid: CID, bytes: Uint8Array }

const DEFAULT_TTL = 90 * 24 * 3600_000

export async function attest (release: Uint8Array, options: AttestOptions): Promise<SignedAttestation[]> {
  throwIfAborted(options.signal)
  if (options.key?.type !== 'Ed25519') throw publishError(PublishErrorCode.PUBLISH_INVALID, 'attest needs an ed25519 signing key')
  const r = openRelease(release)
  const kind = options.kind ?? AttestationKind.REBUILT
  const issued = options.issued ?? Date.now()
  const expires = issued + (options.ttlMs ?? DEFAULT_TTL)
  let keys = Object.keys(r.variants).sort()
  if (options.manifests !== undefined) {
    for (const m of options.manifests) {
      if (!keys.some(k => r.variants[k].manifest.equals(m))) {
        throw new SwarmpackError(TrustErrorCode.MISMATCH, `manifest ${m.toString()} is no variant of ${r.name}@${r.version}`, { details: { name: r.name, version: r.version, manifest: m.toString() } })
      }
    }
    keys = keys.filter(k => options.manifests!.some(m => m.equals(r.variants[k].manifest)))
  }
  const out: SignedAttestation[] = []
  for (const variant of keys) {
    const manifest = r.variants[variant].manifest
    const signed = await signAttestation(options.key, { subject: { name: r.name, version: r.version, manifest }, kind, issued, expires })
    await options.blockstore?.put(signed.cid, signed.bytes)
    out.push({ variant, manifest, cid: signed.cid, bytes: signed.bytes })
  }
  return out
}
