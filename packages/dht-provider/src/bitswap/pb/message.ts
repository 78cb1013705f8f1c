/**
 * Hand-written protobuf codec for the Bitswap 1.2.0 message in message.proto (the protons
 * compiler installed here targets a different protons-runtime major than the one we depend on,
 * and this message is small). Decoding checks every length against the buffer, skips unknown
 * fields as protobuf requires, and rejects groups, truncation and absurd entry counts.
 */

export enum WantType {
  WantBlock = 0,
  WantHave = 1
}

export enum BlockPresenceType {
  Have = 0,
  DontHave = 1
}

export interface WantlistEntry {
  block: Uint8Array
  priority: number
  cancel?: boolean
  wantType?: WantType
  sendDontHave?: boolean
}

export interface Wantlist {
  entries: WantlistEntry[]
  full?: boolean
}

export interface Block {
  prefix: Uint8Array
  data: Uint8Array
}

export interface BlockPresence {
  cid: Uint8Array
  type: BlockPresenceType
}

export interface Message {
  wantlist?: Wantlist
  payload: Block[]
  blockPresences: BlockPresence[]
  pendingBytes: number
}

export interface DecodeLimits {
  /** Most wantlist entries, payload blocks and presences accepted in one message. */
  maxEntries: number
}

export class ProtobufError extends Error {
  override readonly name = 'ProtobufError'
}

// ---------- encoding ----------

function varintSize (value: number): number {
  if (value < 0) return 10 // negative int32 is sign-extended to 64 bits
  let n = 1
  while (value >= 0x80) { value = Math.floor(value / 128); n++ }
  return n
}

class Writer {
  readonly buf: Uint8Array
  pos = 0
  constructor (size: number) { this.buf = new Uint8Array(size) }

  varint (value: number): void {
    if (value < 0) {
      // two's complement over 64 bits: low 32 bits, then all ones
      let lo = value >>> 0
      for (let i = 0; i < 4; i++) { this.buf[this.pos++] = (lo & 0x7f) | 0x80; lo >>>= 7 }
      this.buf[this.pos++] = (lo & 0x0f) | 0x70 | 0x80
      for (let i = 0; i < 4; i++) this.buf[this.pos++] = 0xff
      this.buf[this.pos++] = 0x01
      return
    }
    while (value >= 0x80) {
      this.buf[this.pos++] = (value & 0x7f) | 0x80
      value = Math.floor(value / 128)
    }
    this.buf[this.pos++] = value
  }

  tag (field: number, wireType: number): void { this.varint((field << 3) | wireType) }
  bytes (field: number, value: Uint8Array): void {
    this.tag(field, 2)
    this.varint(value.byteLength)
    this.buf.set(value, this.pos)
    this.pos += value.byteLength
  }
}

const bytesField = (length: number): number => 1 + varintSize(length) + length
const varintField = (value: number): number => 1 + varintSize(value)

function entrySize (e: WantlistEntry): number {
  let n = 0
  if (e.block.byteLength > 0) n += bytesField(e.block.byteLength)
  if (e.priority !== 0) n += varintField(e.priority)
  if (e.cancel !== undefined) n += 2
  if (e.wantType !== undefined) n += 2
  if (e.sendDontHave !== undefined) n += 2
  return n
}

function wantlistSize (w: Wantlist): number {
  let n = 0
  for (const e of w.entries) n += bytesField(entrySize(e))
  if (w.full !== undefined) n += 2
  return n
}

const blockSize = (b: Block): number =>
  (b.prefix.byteLength > 0 ? bytesField(b.prefix.byteLength) : 0) + (b.data.byteLength > 0 ? bytesField(b.data.byteLength) : 0)
const presenceSize = (p: BlockPresence): number =>
  (p.cid.byteLength > 0 ? bytesField(p.cid.byteLength) : 0) + (p.type !== 0 ? varintField(p.type) : 0)

/** Encoded size of each part as a field of Message; used to split content under the cap. */
export const encodedSize = {
  entry: (e: WantlistEntry): number => bytesField(entrySize(e)),
  block: (b: Block): number => bytesField(blockSize(b)),
  presence: (p: BlockPresence): number => bytesField(presenceSize(p)),
  /** The wantlist wrapper without its entries, plus pendingBytes at its largest. */
  overhead: 1 + 5 + 2 + 1 + 5
}

/**
 * Encodes a message. With `lengthPrefixed`, the varint length that frames it on a stream comes
 * first in the same buffer: one write (one muxer frame, one encryption) per message, no copy.
 */
export function encodeMessage (m: Message, options: { lengthPrefixed?: boolean } = {}): Uint8Array {
  let size = 0
  const wl = m.wantlist !== undefined ? wantlistSize(m.wantlist) : -1
  if (wl >= 0) size += bytesField(wl)
  for (const b of m.payload) size += bytesField(blockSize(b))
  for (const p of m.blockPresences) size += bytesField(presenceSize(p))
  if (m.pendingBytes !== 0) size += varintField(m.pendingBytes)
  const head = options.lengthPrefixed === true ? varintSize(size) : 0
  const w = new Writer(head + size)
  if (head > 0) w.varint(size)
  if (m.wantlist !== undefined) {
    w.tag(1, 2)
    w.varint(wl)
    for (const e of m.wantlist.entries) {
      w.tag(1, 2)
      w.varint(entrySize(e))
      if (e.block.byteLength > 0) w.bytes(1, e.block)
      if (e.priority !== 0) { w.tag(2, 0); w.varint(e.priority) }
      if (e.cancel !== undefined) { w.tag(3, 0); w.varint(e.cancel ? 1 : 0) }
      if (e.wantType !== undefined) { w.tag(4, 0); w.varint(e.wantType) }
      if (e.sendDontHave !== undefined) { w.tag(5, 0); w.varint(e.sendDontHave ? 1 : 0) }
    }
    if (m.wantlist.full !== undefined) { w.tag(2, 0); w.varint(m.wantlist.full ? 1 : 0) }
  }
  for (const b of m.payload) {
    w.tag(3, 2)
    w.varint(blockSize(b))
    if (b.prefix.byteLength > 0) w.bytes(1, b.prefix)
    if (b.data.byteLength > 0) w.bytes(2, b.data)
  }
  for (const p of m.blockPresences) {
    w.tag(4, 2)
    w.varint(presenceSize(p))
    if (p.cid.byteLength > 0) w.bytes(1, p.cid)
    if (p.type !== 0) { w.tag(2, 0); w.varint(p.type) }
  }
  if (m.pendingBytes !== 0) { w.tag(5, 0); w.varint(m.pendingBytes) }
  if (w.pos !== head + size) throw new Error(`bitswap encoder size mismatch ${w.pos - head} != ${size}`)
  return w.buf
}

// ---------- decoding ----------

/** Field-level reading shared by the two readers below; they differ in where a byte comes from. */
abstract class FieldReader {
  pos: number
  constructor (start: number, readonly end: number) { this.pos = start }

  protected abstract byteAt (index: number): number

  /** The bytes of the length-delimited field that starts here, as a reader of their own. */
  abstract sub (): Reader

  /** A varint as a 32-bit signed value (int32, enum, bool, tags); longer ones keep their low bits. */
  int32 (): number {
    let result = 0
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= this.end) throw new ProtobufError('truncated varint')
      const byte = this.byteAt(this.pos++)
      if (shift < 32) result |= (byte & 0x7f) << shift
      if ((byte & 0x80) === 0) return result | 0
    }
    throw new ProtobufError('varint too long')
  }

  /** A non-negative length, checked against what is left. */
  length (): number {
    const n = this.int32()
    if (n < 0 || n > this.end - this.pos) throw new ProtobufError('length exceeds message')
    return n
  }

  skip (wireType: number): void {
    switch (wireType) {
      case 0: this.int32(); break
      case 1: this.advance(8); break
      case 2: this.advance(this.length()); break
      case 5: this.advance(4); break
      default: throw new ProtobufError(`unsupported wire type ${wireType}`)
    }
  }

  private advance (n: number): void {
    if (n > this.end - this.pos) throw new ProtobufError('truncated field')
    this.pos += n
  }

  /** Next field as [number, wire type]. */
  tag (): [number, number] {
    const t = this.int32() >>> 0
    const field = t >>> 3
    if (field === 0) throw new ProtobufError('field number 0')
    return [field, t & 7]
  }

  expect (wireType: number, want: number): void {
    if (wireType !== want) throw new ProtobufError(`wire type ${wireType}, expected ${want}`)
  }
}

class Reader extends FieldReader {
  constructor (readonly buf: Uint8Array, start: number, end: number) { super(start, end) }

  protected byteAt (index: number): number { return this.buf[index] }

  bytes (): Uint8Array {
    const n = this.length()
    const out = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  sub (): Reader {
    const n = this.length()
    const r = new Reader(this.buf, this.pos, this.pos + n)
    this.pos += n
    return r
  }
}

function decodeEntry (r: Reader): WantlistEntry {
  const e: WantlistEntry = { block: new Uint8Array(0), priority: 0 }
  while (r.pos < r.end) {
    const [field, wt] = r.tag()
    switch (field) {
      case 1: r.expect(wt, 2); e.block = r.bytes(); break
      case 2: r.expect(wt, 0); e.priority = r.int32(); break
      case 3: r.expect(wt, 0); e.cancel = r.int32() !== 0; break
      case 4: r.expect(wt, 0); e.wantType = r.int32() === 1 ? WantType.WantHave : WantType.WantBlock; break
      case 5: r.expect(wt, 0); e.sendDontHave = r.int32() !== 0; break
      default: r.skip(wt)
    }
  }
  return e
}

function decodeBlock (r: Reader): Block {
  const b: Block = { prefix: new Uint8Array(0), data: new Uint8Array(0) }
  while (r.pos < r.end) {
    const [field, wt] = r.tag()
    if (field === 1) { r.expect(wt, 2); b.prefix = r.bytes() } else if (field === 2) { r.expect(wt, 2); b.data = r.bytes() } else r.skip(wt)
  }
  return b
}

function decodePresence (r: Reader): BlockPresence {
  const p: BlockPresence = { cid: new Uint8Array(0), type: BlockPresenceType.Have }
  while (r.pos < r.end) {
    const [field, wt] = r.tag()
    if (field === 1) { r.expect(wt, 2); p.cid = r.bytes() } else if (field === 2) {
      r.expect(wt, 0)
      const t = r.int32()
      if (t !== 0 && t !== 1) throw new ProtobufError(`unknown presence type ${t}`)
      p.type = t
    } else r.skip(wt)
  }
  return p
}

/**
 * A message that arrived in several chunks (what a stream hands over): `Uint8ArrayList` fits.
 * Decoding it reads the top-level fields across the chunks and copies only a field that straddles
 * two of them, instead of joining the whole message (megabytes) into one buffer first.
 */
export interface ChunkedBytes {
  readonly byteLength: number
  get(index: number): number
  /** The bytes in [begin, end): a view when they lie in one chunk, else a copy. */
  subarray(begin: number, end: number): Uint8Array
}

/** Reads the top-level fields of a chunked message; nested messages are read from their own bytes. */
class ChunkedReader extends FieldReader {
  constructor (readonly list: ChunkedBytes) { super(0, list.byteLength) }

  protected byteAt (index: number): number { return this.list.get(index) }

  sub (): Reader {
    const n = this.length()
    const chunk = this.list.subarray(this.pos, this.pos + n)
    this.pos += n
    // a plain Uint8Array view (stream chunks are often Buffers), so the blocks handed out are plain too
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    return new Reader(bytes, 0, bytes.byteLength)
  }
}

export function decodeMessage (buf: Uint8Array | ChunkedBytes, limits: DecodeLimits = { maxEntries: 65_536 }): Message {
  const m: Message = { payload: [], blockPresences: [], pendingBytes: 0 }
  const r = buf instanceof Uint8Array ? new Reader(buf, 0, buf.byteLength) : new ChunkedReader(buf)
  let count = 0
  const countOne = (): void => {
    if (++count > limits.maxEntries) throw new ProtobufError('too many entries in one message')
  }
  while (r.pos < r.end) {
    const [field, wt] = r.tag()
    switch (field) {
      case 1: {
        r.expect(wt, 2)
        const wr = r.sub()
        const wantlist: Wantlist = m.wantlist ?? { entries: [] }
        while (wr.pos < wr.end) {
          const [f, w] = wr.tag()
          if (f === 1) { wr.expect(w, 2); countOne(); wantlist.entries.push(decodeEntry(wr.sub())) } else if (f === 2) { wr.expect(w, 0); wantlist.full = wr.int32() !== 0 } else wr.skip(w)
        }
        m.wantlist = wantlist
        break
      }
      case 3: r.expect(wt, 2); countOne(); m.payload.push(decodeBlock(r.sub())); break
      case 4: r.expect(wt, 2); countOne(); m.blockPresences.push(decodePresence(r.sub())); break
      case 5: r.expect(wt, 0); m.pendingBytes = r.int32(); break
      default: r.skip(wt)
    }
  }
  return m
}
