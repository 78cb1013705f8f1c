export { HashErrorCode, Sha256Worker, liveSha256Workers } from './sha256-worker.js'
export type { HashedRange, Sha256WorkerInit } from './sha256-worker.js'
