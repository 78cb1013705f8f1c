import '@swarmpack/core/polyfill'

export * from './errors.js'
export * from './peer.js'
export * from './keys.js'
export * from './traffic.js'
export * from './discovery.js'
export * from './records.js'
