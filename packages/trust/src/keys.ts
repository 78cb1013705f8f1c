/**
 * Signing keys: ed25519 in the libp2p key format. A key id is the libp2p peer id string of the
 * public key (`12D3KooW…`): it embeds the whole public key, so an id alone is enough to verify.
 */
import { writeFileAtomic } from '@swarmpack/core'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { ed25519 } from '@noble/curves/ed25519.js'
import { createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { TrustErrorCode, trustError } from './errors.js'
import type { Ed25519PrivateKey, Ed25519PublicKey, PrivateKey } from '@libp2p/interface'

export type { Ed25519PrivateKey, Ed25519PublicKey }

/** Text form of a public key: its libp2p peer id. */
export type KeyId = string

export async function generateSigningKey (): Promise<Ed25519PrivateKey> {
  return generateKeyPair('Ed25519')
}

export function keyIdOf (key: Ed25519PublicKey | Ed25519PrivateKey): KeyId {
  const pub = 'publicKey' in key ? key.publicKey : key
  return pub.toString()
}

const KEY_ID_RE = /^[1-9A-HJ-NP-Za-km-z]{40,60}$/
const publicKeyCache = new Map<string, Ed25519PublicKey>()
/** node:crypto key objects per key id: building one per verification costs more than the verification. */
const keyObjectCache = new Map<string, KeyObject>()

/**
 * Public key behind a key id. Refuses non-ed25519 ids, malformed ids and small-order points
 * (a small-order key "verifies" signatures over many messages, so it proves nothing).
 */
export function publicKeyFromKeyId (id: unknown): Ed25519PublicKey {
  if (typeof id !== 'string' || !KEY_ID_RE.test(id)) throw trustError(TrustErrorCode.MALFORMED, 'not an ed25519 key id', { keyId: String(id).slice(0, 80) })
  const cached = publicKeyCache.get(id)
  if (cached !== undefined) return cached
  let pub: Ed25519PublicKey
  try {
    const peerId = peerIdFromString(id)
    if (peerId.type !== 'Ed25519' || peerId.publicKey === undefined) throw new Error('not an ed25519 peer id')
    pub = peerId.publicKey
    if (pub.toString() !== id) throw new Error('key id is not in canonical form')
    if (ed25519.Point.fromBytes(pub.raw).isSmallOrder()) throw new Error('small-order public key')
  } catch (err) {
    throw trustError(TrustErrorCode.MALFORMED, `not an acceptable ed25519 key id: ${(err as Error).message}`, { keyId: id }, err)
  }
  if (publicKeyCache.size >= 4096) publicKeyCache.delete(publicKeyCache.keys().next().value as string)
  publicKeyCache.set(id, pub)
  return pub
}

/** The group order L of ed25519; a signature's S half must be below it (no malleable twins). */
const ED25519_L = (1n << 252n) + 27742317777372353535851937790883648493n

function scalarIsCanonical (sig: Uint8Array): boolean {
  let s = 0n
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i])
  return s < ED25519_L
}

/** Verifies an ed25519 signature by `keyId` over `data`. Returns false for anything malformed. */
export function verifySignature (keyId: KeyId, data: Uint8Array, signature: Uint8Array): boolean {
  if (!(signature instanceof Uint8Array) || signature.byteLength !== 64 || !scalarIsCanonical(signature)) return false
  let ko = keyObjectCache.get(keyId)
  if (ko === undefined) {
    const pub = publicKeyFromKeyId(keyId)
    ko = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(pub.raw).toString('base64url') }, format: 'jwk' })
    if (keyObjectCache.size >= 4096) keyObjectCache.delete(keyObjectCache.keys().next().value as string)
    keyObjectCache.set(keyId, ko)
  }
  try {
    return nodeVerify(null, data, ko, signature)
  } catch {
    return false
  }
}

export async function sign (key: Ed25519PrivateKey, data: Uint8Array): Promise<Uint8Array> {
  return key.sign(data)
}

/** Writes a private key (libp2p protobuf form) with mode 0600, atomically. Refuses to overwrite unless asked. */
export async function saveKeyFile (path: string, key: PrivateKey, options: { overwrite?: boolean } = {}): Promise<void> {
  if (options.overwrite !== true) {
    const exists = await stat(path).then(() => true, () => false)
    if (exists) throw trustError(TrustErrorCode.KEY_FILE, `key file ${path} exists`, { path })
  }
  await writeFileAtomic(path, privateKeyToProtobuf(key), { mode: 0o600, syncDir: true })
}

/** Loads an ed25519 private key. Refuses files others can read (as ssh does) and other key types. */
export async function loadKeyFile (path: string): Promise<Ed25519PrivateKey> {
  let bytes: Uint8Array
  try {
    const st = await stat(path)
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw trustError(TrustErrorCode.KEY_FILE, `key file ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`, { path })
    }
    if (st.size > 4096) throw trustError(TrustErrorCode.KEY_FILE, `key file ${path} is too large`, { path })
    bytes = await readFile(path)
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_TRUST_') === true) throw err
    throw trustError(TrustErrorCode.KEY_FILE, `cannot read key file ${path}`, { path }, err)
  }
  let key: PrivateKey
  try {
    key = privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw trustError(TrustErrorCode.KEY_FILE, `key file ${path} does not hold a libp2p private key`, { path }, err)
  }
  if (key.type !== 'Ed25519') throw trustError(TrustErrorCode.KEY_FILE, `key file ${path} holds a ${key.type} key, not ed25519`, { path })
  return key
}
