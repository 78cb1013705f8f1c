import '@swarmpack/core/polyfill'

// The embeddable node (issue: packages/swarmpack). Modules are added as they are built.
export * from './publish/index.js'
export * from './heads/index.js'
export * from './catalog/index.js'
