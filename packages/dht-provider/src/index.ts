import '@swarmpack/core/polyfill'

export {}
