// Failure explanations: exact wording (modelled on pub's), and explanations of very deep
// derivations, which must not overflow the call stack.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { resolve, ResolverErrorCode, type ResolveFailureDetails } from '../src/index.js'
import { isSwarmpackError, type SwarmpackError } from '@swarmpack/core'
import { MemorySource, type Registry, type MemorySourceOptions } from './registry.js'

async function failure (registry: Registry, dependencies: Record<string, string>, sourceOptions: MemorySourceOptions = {}): Promise<SwarmpackError & { details: ResolveFailureDetails }> {
  try {
    await resolve({ rootName: 'app', dependencies, source: new MemorySource(registry, sourceOptions) })
  } catch (err) {
    if (isSwarmpackError(err, ResolverErrorCode.CONFLICT)) return err as SwarmpackError & { details: ResolveFailureDetails }
    throw err
  }
  assert.fail('expected resolution to fail')
}

describe('deep derivations', () => {
  it('a failing 20,000-deep dependency chain is explained on the main thread', async () => {
    const depth = 20_000
    const reg: Registry = {}
    for (let i = 0; i < depth; i++) reg[`p${i}`] = { '1.0.0': { [i + 1 < depth ? `p${i + 1}` : 'missing']: '^1.0.0' } }
    const err = await failure(reg, { p0: '^1.0.0' }, { inline: true })
    const lines = err.details.failure.lines
    assert.equal(lines.length, depth / 2 + 1)
    assert.equal(lines[0], 'Because every version of p0 depends on p1 ^1.0.0 and every version of p1 depends on p2 ^1.0.0, every version of p0 requires p2 ^1.0.0.')
    // each line folds two links of the chain into what p0 requires
    assert.equal(lines[1], 'And because every version of p2 depends on p3 ^1.0.0 and every version of p3 depends on p4 ^1.0.0, every version of p0 requires p4 ^1.0.0.')
    assert.equal(lines.at(-2), `And because every version of p${depth - 2} depends on p${depth - 1} ^1.0.0 and every version of p${depth - 1} depends on missing ^1.0.0, every version of p0 requires missing ^1.0.0.`)
    assert.equal(lines.at(-1), 'So, because missing does not exist and app depends on p0 ^1.0.0, version solving failed.')
    // the graph behind it is as deep, and complete
    let node = err.details.failure.derivation
    let hops = 0
    while (node.causes !== undefined) { node = node.causes.find(c => c.cause === 'derived') ?? node.causes[0]; hops++ }
    assert.ok(hops >= depth - 1, `derivation depth ${hops}`)
  })
})
