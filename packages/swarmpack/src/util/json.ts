/** JSON with object keys sorted at every level: one text per value, so digests and lockfiles are deterministic. */
export function canonicalJson (value: unknown, indent?: number): string {
  return JSON.stringify(sortKeys(value), null, indent)
}

function sortKeys (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k]
      if (v !== undefined) out[k] = sortKeys(v)
    }
    return out
  }
  return value
}
