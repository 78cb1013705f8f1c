#!/usr/bin/env node
// The `swarmpack` command. Loads the package by its own name so the `swarmpack-src` condition
// (node --import tsx --conditions=swarmpack-src) runs the TypeScript sources and a plain node the
// build in dist/.
import { main } from '@swarmpack/cli'

const code = await main(process.argv.slice(2))
// libp2p and undici keep handles open for a while after stop: exit once stdout has drained
process.stdout.write('', () => { process.exit(code) })
