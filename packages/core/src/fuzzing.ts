/**
 * What every fuzz test in the workspace checks (`@swarmpack/core/fuzzing`): a decoder fed
 * untrusted bytes must return, or throw a SwarmpackError with a stable ERR_ code, within 1 s of CPU
 * time (CPU, not wall clock: the machine running the fuzzer may be busy). Plus the byte mutations
 * the tests apply to real encodings. The tests bring fast-check (passed in: no runtime dependency).
 */
import { SwarmpackError } from './errors.js'
import type * as FastCheck from 'fast-check'

/** Most CPU time one input may take, in microseconds. */
export const FUZZ_CPU_LIMIT_US = 1_000_000

/**
 * Runs `fn` on one input. Resolves when it returned or threw a typed error; rejects (naming
 * `what`) on any other error, or when it used more than 1 s of CPU.
 */
export async function expectTypedOutcome (what: string, fn: () => unknown): Promise<void> {
  const cpu = process.cpuUsage()
  try {
    await fn()
  } catch (err) {
    if (!(err instanceof SwarmpackError) || !/^ERR_[A-Z0-9_]+$/.test(err.code)) throw new Error(`${what}: untyped error ${String(err)}`, { cause: err })
  } finally {
    const used = process.cpuUsage(cpu)
    if (used.user + used.system > FUZZ_CPU_LIMIT_US) throw new Error(`${what}: over 1 s of CPU`)
  }
}

/** The synchronous form, for properties that must not await. */
export function expectTypedOutcomeSync (what: string, fn: () => unknown): void {
  const cpu = process.cpuUsage()
  try {
    fn()
  } catch (err) {
    if (!(err instanceof SwarmpackError) || !/^ERR_[A-Z0-9_]+$/.test(err.code)) throw new Error(`${what}: untyped error ${String(err)}`, { cause: err })
  } finally {
    const used = process.cpuUsage(cpu)
    if (used.user + used.system > FUZZ_CPU_LIMIT_US) throw new Error(`${what}: over 1 s of CPU`)
  }
}

/** A mutation of a valid encoding: XOR flips at positions, then an insertion, then a cut. */
export interface ByteMutation {
  flips: Array<[at: number, xor: number]>
  insert: [at: number, bytes: Uint8Array] | null
  cut: number | null
}

export function mutateBytes (seed: Uint8Array, m: ByteMutation): Uint8Array {
  let b = seed.slice()
  for (const [at, x] of m.flips) b[at % b.length] ^= x
  if (m.insert !== null) b = new Uint8Array([...b.subarray(0, m.insert[0]), ...m.insert[1], ...b.subarray(m.insert[0])])
  if (m.cut !== null) b = b.subarray(0, m.cut)
  return b
}

/** fast-check inputs: mutations (flips, an insertion, a cut) of a valid encoding. */
export function mutatedBytes (fc: Pick<typeof FastCheck, 'record' | 'array' | 'tuple' | 'nat' | 'integer' | 'option' | 'uint8Array'>, seed: Uint8Array): FastCheck.Arbitrary<Uint8Array> {
  return fc.record({
    flips: fc.array(fc.tuple(fc.nat(seed.length - 1), fc.integer({ min: 1, max: 255 })), { maxLength: 6 }),
    insert: fc.option(fc.tuple(fc.nat(seed.length), fc.uint8Array({ minLength: 1, maxLength: 16 }))),
    cut: fc.option(fc.nat(seed.length + 16))
  }).map(m => mutateBytes(seed, m))
}
