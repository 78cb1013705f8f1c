// The `swarmpack` command as a module: `main(argv)` runs it and resolves to the exit code.
export { main } from './main.js'
export type { MainOptions } from './main.js'
export { ExitCode, classify, exitCodeOf } from './exit-codes.js'
export type { ExitClass } from './exit-codes.js'
export { JSON_SCHEMA } from './output.js'
