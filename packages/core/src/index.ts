import './polyfill.js'

export * from './errors.js'
export * from './block.js'
export type * from './provider.js'
export * from './mirror/layout.js'
export * from './store/index.js'
