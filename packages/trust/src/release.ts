/**
 * Releases: `{ name, version, variants: key -> { manifest CID, size }, dependencies, proofs }`,
 * signed by a publisher key. `proofs` is the bag of delegation certificates the signer offers;
 * they are inside the signed payload so a release travels as one self-contained block.
 */
import { CID } from 'multiformats/cid'
import { MAX_ENVELOPE_BYTES, PayloadType, openEnvelope, signEnvelope, type SignedObject } from './envelope.js'
import { type Ed25519PrivateKey, type KeyId } from './keys.js'
import { assertName, assertVersion, isValidRange } from './names.js'
import { MAX_PROOFS } from './delegation.js'
import { asArray, asBytes, asCid, asObject, asString, asUint, expectKeys, malformed, type Obj } from './schema.js'

export interface Variant {
  /** Root CID of the variant's manifest: what an attester attests and an installer checks. */
  manifest: CID
  /** Total unpacked size in bytes. */
  size: number
}

export interface Release {
  name: string
  version: string
  variants: Record<string, Variant>
  /** name -> semver range */
  dependencies: Record<string, string>
}

export interface VerifiedRelease extends Release {
  signer: KeyId
  proofs: Uint8Array[]
  /** CID of the release envelope. */
  cid: CID
  bytes: Uint8Array
}

export const MAX_VARIANTS = 64
export const MAX_DEPENDENCIES = 256
const VARIANT_KEY_RE = /^[a-z0-9][a-z0-9._+-]{0,63}$/

function plainRecord (value: unknown, what: string, maxKeys: number): Obj {
  const obj = asObject(value, what)
  if (Object.keys(obj).length > maxKeys) throw malformed(what, `more than ${maxKeys} entries`)
  return obj
}

export function validateVariants (value: unknown, what: string): Record<string, Variant> {
  const obj = plainRecord(value, what, MAX_VARIANTS)
  const out: Record<string, Variant> = {}
  if (Object.keys(obj).length === 0) throw malformed(what, 'no variants')
  for (const [key, v] of Object.entries(obj)) {
    if (!VARIANT_KEY_RE.test(key)) throw malformed(what, `invalid variant key ${JSON.stringify(key.slice(0, 64))}`)
    const variant = asObject(v, `${what}.${key}`)
    expectKeys(variant, `${what}.${key}`, ['manifest', 'size'])
    out[key] = { manifest: asCid(variant.manifest, `${what}.${key}.manifest`), size: asUint(variant.size, `${what}.${key}.size`) }
  }
  return out
}

export function validateDependencies (value: unknown, what: string): Record<string, string> {
  const obj = plainRecord(value, what, MAX_DEPENDENCIES)
  const out: Record<string, string> = {}
  for (const [name, range] of Object.entries(obj)) {
    assertName(name, `${what} name`)
    const r = asString(range, `${what}.${name}`, 1024)
    if (!isValidRange(r)) throw malformed(what, `invalid range for ${name}`)
    out[name] = r
  }
  return out
}

function validateRelease (raw: unknown): Release & { proofs: Uint8Array[] } {
  const what = 'release'
  const obj = asObject(raw, what)
  expectKeys(obj, what, ['name', 'version', 'variants', 'dependencies', 'proofs'])
  return {
    name: assertName(obj.name, `${what}.name`),
    version: assertVersion(obj.version, `${what}.version`),
    variants: validateVariants(obj.variants, `${what}.variants`),
    dependencies: validateDependencies(obj.dependencies, `${what}.dependencies`),
    proofs: asArray(obj.proofs, `${what}.proofs`, MAX_PROOFS).map((p, i) => asBytes(p, `${what}.proofs[${i}]`, MAX_ENVELOPE_BYTES[PayloadType.DELEGATION]))
  }
}

export async function signRelease (key: Ed25519PrivateKey, release: Release, proofs: Uint8Array[] = []): Promise<SignedObject> {
  const value = { ...release, proofs }
  validateRelease(value)
  return signEnvelope(key, PayloadType.RELEASE, value)
}

/** Verifies the envelope and shape of a release. Whether its signer may sign it is the chain's business. */
export function openRelease (bytes: Uint8Array): VerifiedRelease {
  const env = openEnvelope(bytes, PayloadType.RELEASE)
  const r = validateRelease(env.value)
  return { ...r, signer: env.signer, cid: env.cid, bytes }
}
