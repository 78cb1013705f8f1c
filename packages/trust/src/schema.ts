/**
 * Shape checks for decoded objects. Decoded CBOR is attacker-controlled, so every field is
 * checked for type and bounds, and unknown fields are refused (an unsigned-looking extra field
 * inside a signed object must never change its meaning for one reader and not another).
 */
import { CID } from 'multiformats/cid'
import { TrustErrorCode, trustError } from './errors.js'

export type Obj = Record<string, unknown>

export function malformed (what: string, why: string, details: Record<string, unknown> = {}): Error {
  return trustError(TrustErrorCode.MALFORMED, `${what}: ${why}`, { what, ...details })
}

export function asObject (value: unknown, what: string): Obj {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array || CID.asCID(value) !== null) {
    throw malformed(what, 'expected a map')
  }
  return value as Obj
}

/** Checks that `obj` has every required key and nothing outside required + optional. */
export function expectKeys (obj: Obj, what: string, required: readonly string[], optional: readonly string[] = []): void {
  for (const k of required) if (!(k in obj)) throw malformed(what, `missing field "${k}"`)
  for (const k of Object.keys(obj)) {
    if (!required.includes(k) && !optional.includes(k)) throw malformed(what, `unknown field "${k.slice(0, 64)}"`)
  }
}

export function asString (value: unknown, what: string, maxLength = 256): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) throw malformed(what, `expected a string of 1..${maxLength} characters`)
  return value
}

export function asUint (value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw malformed(what, 'expected a non-negative integer')
  return value
}

export function asCid (value: unknown, what: string): CID {
  const cid = CID.asCID(value)
  if (cid === null || cid.version !== 1) throw malformed(what, 'expected a CIDv1')
  return cid
}

export function asBytes (value: unknown, what: string, maxLength: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.byteLength > maxLength) throw malformed(what, `expected at most ${maxLength} bytes`)
  return value
}

export function asArray (value: unknown, what: string, maxItems: number): unknown[] {
  if (!Array.isArray(value) || value.length > maxItems) throw malformed(what, `expected a list of at most ${maxItems} items`)
  return value
}

export function asStringList (value: unknown, what: string, maxItems: number, maxLength = 256): string[] {
  return asArray(value, what, maxItems).map((v, i) => asString(v, `${what}[${i}]`, maxLength))
}
