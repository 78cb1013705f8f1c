/**
 * The gear table: 256 fixed pseudo-random 32-bit values, one per byte value. It must be identical
 * on every node (otherwise two nodes would cut the same file differently and share nothing), so
 * it is generated here from a fixed seed with a small, fully specified generator (splitmix32)
 * instead of being taken from Math.random or a library whose output might change.
 */

/** Seed of the gear table. Changing it changes every chunk boundary: never change it. */
export const GEAR_SEED = 0x5377_6172 // "Swar"

/** splitmix32: one 32-bit output per call; simple, well mixed and specified by its arithmetic. */
function splitmix32 (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x9e3779b9) >>> 0
    let z = state
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
}

function makeGearTable (seed: number): Int32Array {
  const next = splitmix32(seed)
  const table = new Int32Array(256)
  for (let i = 0; i < 256; i++) table[i] = next() | 0
  return table
}

/** Signed view (Int32Array) so the hot loop stays in small-integer arithmetic. */
export const GEAR: Int32Array = makeGearTable(GEAR_SEED)
