export { GEAR, GEAR_SEED } from './gear.js'
export { BoundaryCutter, Chunker, DEFAULT_CHUNKER, chunkLengths, chunkStream, validateChunkerParams } from './fastcdc.js'
export type { ChunkerParams } from './fastcdc.js'
