import '@swarmpack/core/polyfill'

export * from './pubgrub/index.js'
export { ResolverErrorCode } from './errors.js'
export * from './fetch/index.js'
