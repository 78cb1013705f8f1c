/**
 * Attestations: an attester independently checked a release variant (rebuilt it from source and got
 * the same manifest, or found the same bytes on a mirror it trusts) and signs that manifest's CID.
 * The subject binds name and version too, so an attestation for one package never counts for
 * another that happens to share content. Who the attester *is* comes from the local policy (which
 * identity owns the signing key), never from the attestation itself.
 */
import type { CID } from 'multiformats/cid'
import { PayloadType, openEnvelope, signEnvelope, type SignedObject } from './envelope.js'
import type { Ed25519PrivateKey, KeyId } from './keys.js'
import { assertName, assertVersion } from './names.js'
import { asCid, asObject, asUint, expectKeys, malformed } from './schema.js'

export const AttestationKind = {
  REBUILT: 'rebuilt',
  MIRROR_MATCHED: 'mirror-matched'
} as const
export type AttestationKind = typeof AttestationKind[keyof typeof AttestationKind]
const KINDS: readonly string[] = Object.values(AttestationKind)

export interface Attestation {
  subject: { name: string, version: string, manifest: CID }
  kind: AttestationKind
  issued: number
  expires: number
}

export interface VerifiedAttestation extends Attestation {
  signer: KeyId
  /** CID (string) of the attestation envelope. */
  id: string
}

function validateAttestation (raw: unknown): Attestation {
  const what = 'attestation'
  const obj = asObject(raw, what)
  expectKeys(obj, what, ['subject', 'kind', 'issued', 'expires'])
  const subject = asObject(obj.subject, `${what}.subject`)
  expectKeys(subject, `${what}.subject`, ['name', 'version', 'manifest'])
  if (typeof obj.kind !== 'string' || !KINDS.includes(obj.kind)) throw malformed(what, 'unknown kind')
  const a: Attestation = {
    subject: {
      name: assertName(subject.name, `${what}.subject.name`),
      version: assertVersion(subject.version, `${what}.subject.version`),
      manifest: asCid(subject.manifest, `${what}.subject.manifest`)
    },
    kind: obj.kind as AttestationKind,
    issued: asUint(obj.issued, `${what}.issued`),
    expires: asUint(obj.expires, `${what}.expires`)
  }
  if (a.expires <= a.issued) throw malformed(what, 'expires before it is issued')
  return a
}

export async function signAttestation (key: Ed25519PrivateKey, attestation: Attestation): Promise<SignedObject> {
  validateAttestation(attestation)
  return signEnvelope(key, PayloadType.ATTESTATION, attestation)
}

export function openAttestation (bytes: Uint8Array): VerifiedAttestation {
  const env = openEnvelope(bytes, PayloadType.ATTESTATION)
  return { ...validateAttestation(env.value), signer: env.signer, id: env.cid.toString() }
}
