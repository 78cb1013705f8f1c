/**
 * A structural pre-scan of CBOR bytes, run before the real decoder touches untrusted input. It
 * walks the item headers without building values (iteratively, so hostile nesting cannot blow
 * the stack) and refuses nesting deeper than `maxDepth`, more than `maxItems` items, lengths that
 * run past the end, indefinite-length items (never valid dag-cbor) and trailing bytes.
 */
import { CoreErrorCode, SwarmpackError } from '../errors.js'

export interface CborScanLimits {
  maxDepth: number
  maxItems: number
}

function bad (why: string): SwarmpackError {
  return new SwarmpackError(CoreErrorCode.INVALID_MANIFEST, `malformed CBOR: ${why}`, { details: { reason: why } })
}

export function scanCbor (bytes: Uint8Array, limits: CborScanLimits): void {
  const len = bytes.length
  let pos = 0
  let items = 0
  // Items still expected by each open container; the bottom entry is the single top-level item.
  const stack: number[] = [1]
  while (stack.length > 0) {
    if (pos >= len) throw bad('truncated')
    stack[stack.length - 1]--
    const ib = bytes[pos++]
    const major = ib >> 5
    const ai = ib & 31
    let arg: number
    if (ai < 24) {
      arg = ai
    } else if (ai <= 27) {
      const n = 1 << (ai - 24)
      if (pos + n > len) throw bad('truncated header')
      arg = 0
      for (let i = 0; i < n; i++) arg = arg * 256 + bytes[pos + i]
      pos += n
    } else {
      throw bad(ai === 31 ? 'indefinite length or break' : 'reserved additional info')
    }
    const room = len - pos
    if (major === 2 || major === 3) {
      if (arg > room) throw bad('string runs past the end')
      pos += arg
    } else if (major === 4) {
      if (arg > room) throw bad('array longer than the input')
      if (arg > 0) stack.push(arg)
    } else if (major === 5) {
      if (arg * 2 > room) throw bad('map longer than the input')
      if (arg > 0) stack.push(arg * 2)
    } else if (major === 6) {
      stack.push(1)
    }
    if (++items > limits.maxItems) throw bad(`more than ${limits.maxItems} items`)
    if (stack.length - 1 > limits.maxDepth) throw bad(`nested deeper than ${limits.maxDepth}`)
    while (stack.length > 0 && stack[stack.length - 1] === 0) stack.pop()
  }
  if (pos !== len) throw bad('trailing bytes')
}
