/**
 * A structural pre-scan of CBOR bytes, run before the real decoder touches untrusted input (the
 * dag-cbor decoder recurses, so hostile nesting could exhaust the stack). It walks the item
 * headers without building values, iteratively, and refuses nesting deeper than `maxDepth`, more
 * than `maxItems` items, lengths that run past the end, indefinite-length items and reserved
 * headers (never valid dag-cbor), and trailing bytes. A tag wraps one item and counts as one level
 * of nesting, like an array of one: the decoder recurses into tags too, so a block of nothing but
 * nested tags must be cut here as well (a CID link, tag 42 around bytes, is one level).
 *
 * Each caller says which typed error a refusal is (a malformed manifest, a malformed signed
 * object, ...); by default it is ERR_INVALID_MANIFEST.
 */
import { CoreErrorCode, SwarmpackError } from './errors.js'

export interface CborScanLimits {
  maxDepth: number
  /** Most items (of any kind) in the whole value; default unlimited. */
  maxItems?: number
  /** Builds the error thrown for a refusal; `offset` is where the scan stopped. */
  error?: (why: string, offset: number) => Error
}

function manifestError (why: string): SwarmpackError {
  return new SwarmpackError(CoreErrorCode.INVALID_MANIFEST, `malformed CBOR: ${why}`, { details: { reason: why } })
}

export function scanCbor (bytes: Uint8Array, limits: CborScanLimits): void {
  const len = bytes.length
  const maxItems = limits.maxItems ?? Number.POSITIVE_INFINITY
  const fail = (why: string): never => { throw (limits.error ?? manifestError)(why, pos) }
  let pos = 0
  let items = 0
  // Items still expected by each open container; the bottom entry is the single top-level item.
  const stack: number[] = [1]
  while (stack.length > 0) {
    if (pos >= len) fail('truncated')
    stack[stack.length - 1]--
    const ib = bytes[pos++]
    const major = ib >> 5
    const ai = ib & 31
    let arg: number
    if (ai < 24) {
      arg = ai
    } else if (ai <= 27) {
      const n = 1 << (ai - 24)
      if (pos + n > len) fail('truncated header')
      // 8-byte lengths lose precision past 2^53, but anything that large runs past the end anyway
      arg = 0
      for (let i = 0; i < n; i++) arg = arg * 256 + bytes[pos + i]
      pos += n
    } else {
      fail(ai === 31 ? 'indefinite length or break' : 'reserved additional info')
    }
    const room = len - pos
    if (major === 2 || major === 3) {
      if (arg! > room) fail('string runs past the end')
      pos += arg!
    } else if (major === 4 || major === 5) {
      const children = major === 5 ? arg! * 2 : arg!
      if (children > room) fail(major === 5 ? 'map longer than the input' : 'array longer than the input')
      if (children > 0) {
        if (stack.length > limits.maxDepth) fail(`nested deeper than ${limits.maxDepth}`)
        stack.push(children)
      }
    } else if (major === 6) {
      // the tagged item follows one level down: the recursive decoder descends into it
      if (stack.length > limits.maxDepth) fail(`nested deeper than ${limits.maxDepth}`)
      stack.push(1)
    }
    if (++items > maxItems) fail(`more than ${maxItems} items`)
    while (stack.length > 0 && stack[stack.length - 1] === 0) stack.pop()
  }
  if (pos !== len) fail('trailing bytes')
}
