export { resolveLock } from './resolve.js'
export type { ResolveInit } from './resolve.js'
export { IndexMetadataSource } from './index-source.js'
export type { FollowedIndex, Refusal, VariantMiss } from './index-source.js'
