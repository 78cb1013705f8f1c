/**
 * The gear-hash inner loop as a tiny WebAssembly function, about twice as fast as the same loop in
 * JavaScript (no typed-array bounds checks, plain 32-bit arithmetic). The module is assembled here
 * from its opcodes, so there is no build step and no binary blob to trust. Memory layout:
 * bytes [0, 1024) hold the gear table (256 little-endian int32), the data window starts at 1024.
 *
 *   cut(p, n, min, normal, maskS, maskL) -> length of the chunk starting at p (n > min):
 *     h = 0; i = min
 *     while i < normal: h = (h << 1) + gear[mem[p+i]]; i++; if (h & maskS) == 0: return i
 *     while i < n:      h = (h << 1) + gear[mem[p+i]]; i++; if (h & maskL) == 0: return i
 *     return n
 */
import { GEAR } from './gear.js'

export const WASM_DATA_OFFSET = 1024

function uleb (n: number): number[] {
  const out: number[] = []
  do {
    let b = n & 0x7f
    n >>>= 7
    if (n !== 0) b |= 0x80
    out.push(b)
  } while (n !== 0)
  return out
}

function section (id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body]
}

function name (s: string): number[] {
  return [...uleb(s.length), ...[...s].map(c => c.charCodeAt(0))]
}

// Opcodes used below.
const BLOCK = 0x02; const LOOP = 0x03; const IF = 0x04; const END = 0x0b; const BR = 0x0c; const BR_IF = 0x0d; const RETURN = 0x0f
const GET = 0x20; const SET = 0x21; const CONST = 0x41; const LOAD = 0x28; const LOAD8U = 0x2d
const EQZ = 0x45; const GE_U = 0x4f; const ADD = 0x6a; const AND = 0x71; const SHL = 0x74
const VOID = 0x40; const I32 = 0x7f
// Locals: 0 p, 1 n, 2 min, 3 normal, 4 maskS, 5 maskL, 6 i, 7 h.
const P = 0; const N = 1; const MIN = 2; const NORMAL = 3; const MASK_S = 4; const MASK_L = 5; const I = 6; const H = 7

/** One step: h = (h << 1) + gear[mem[p + i]]; i++; then break out to `done` (depth) if (h & mask) == 0. */
function step (mask: number, doneDepth: number): number[] {
  return [
    GET, H, CONST, 1, SHL,
    GET, P, GET, I, ADD, LOAD8U, 0, 0,
    CONST, 2, SHL, LOAD, 2, 0,
    ADD, SET, H,
    GET, I, CONST, 1, ADD, SET, I,
    GET, H, GET, mask, AND, EQZ, BR_IF, doneDepth
  ]
}

function moduleBytes (): Uint8Array {
  const body = [
    1, 2, I32, // two i32 locals: i, h
    GET, MIN, SET, I,
    BLOCK, VOID, // $done
    BLOCK, VOID, // $phase2
    LOOP, VOID, // $l1
    GET, I, GET, NORMAL, GE_U, BR_IF, 1, // -> $phase2
    ...step(MASK_S, 2), // -> $done
    BR, 0,
    END, // $l1
    END, // $phase2
    LOOP, VOID, // $l2
    GET, I, GET, N, GE_U, IF, VOID, GET, N, RETURN, END,
    ...step(MASK_L, 1), // -> $done
    BR, 0,
    END, // $l2
    END, // $done
    GET, I,
    END
  ]
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 6, I32, I32, I32, I32, I32, I32, 1, I32]),
    ...section(3, [1, 0]),
    ...section(5, [1, 0x00, 1]),
    ...section(7, [2, ...name('cut'), 0x00, 0, ...name('memory'), 0x02, 0]),
    ...section(10, [1, ...uleb(body.length), ...body])
  ]
  return Uint8Array.from(bytes)
}

/** The few WebAssembly APIs used here (TypeScript's lib for Node has no WebAssembly types). */
interface WasmMemory { buffer: ArrayBuffer, grow: (pages: number) => number }
interface WasmApi {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> }
}
const wasmApi = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly

let compiled: object | undefined

export interface WasmCutter {
  /** The data window inside WebAssembly memory (offset WASM_DATA_OFFSET). */
  window: Uint8Array
  cut: (p: number, n: number, min: number, normal: number, maskS: number, maskL: number) => number
}

/** A fresh instance (its own memory) with room for a window of `windowSize` bytes. */
export function createWasmCutter (windowSize: number): WasmCutter | undefined {
  if (wasmApi === undefined) return undefined
  try {
    compiled ??= new wasmApi.Module(moduleBytes())
    const instance = new wasmApi.Instance(compiled, {})
    const memory = instance.exports.memory as WasmMemory
    const pages = Math.ceil((WASM_DATA_OFFSET + windowSize) / 65536)
    memory.grow(pages - 1)
    new Int32Array(memory.buffer, 0, 256).set(GEAR)
    return {
      window: new Uint8Array(memory.buffer, WASM_DATA_OFFSET, windowSize),
      cut: instance.exports.cut as WasmCutter['cut']
    }
  } catch {
    return undefined // no WebAssembly (unusual runtimes): the JavaScript loop is used instead
  }
}
