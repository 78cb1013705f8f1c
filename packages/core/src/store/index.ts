export { FsBlockstore } from './fs-blockstore.js'
export type {
  FsBlockstoreInit, FsBlockstoreEvents, DiskUsage, BlockEventDetail, StoreStats, GetBytesOptions, CorruptBlock,
  StoreProgressEvents, VerifyOptions, VerifyReport, GcOptions, GcReport
} from './fs-blockstore.js'
export { StoreErrorCode, BlockNotFoundError } from './errors.js'
export { storeProvider, readBlock } from './provider.js'
export type { BlockReader, BlockSource, StoreProviderInit } from './provider.js'
export { walkDag } from './walk.js'
export type { WalkedBlock } from './walk.js'
export { writeFileAtomic } from './atomic.js'
export type { AtomicWriteOptions } from './atomic.js'
