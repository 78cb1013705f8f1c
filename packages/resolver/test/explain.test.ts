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

describe('wording', () => {
  const lines = (err: { details: ResolveFailureDetails }): string[] => err.details.failure.lines

  it('one package that needs one of several others "requires" them (no "together")', async () => {
    const reg: Registry = {
      menu: { '1.0.0': { dropdown: '1.1.0' }, '1.1.0': { icons: '1.1.0' }, '2.0.0': { dropdown: '1.1.0' } },
      icons: { '1.1.0': { dropdown: '1.1.0' } },
      dropdown: { '1.0.0': {}, '2.0.0': {} }
    }
    assert.deepEqual(lines(await failure(reg, { menu: '*' })), [
      'Because menu 1.0.0 depends on dropdown 1.1.0 and menu 1.1.0 depends on icons 1.1.0, menu <2.0.0 requires dropdown 1.1.0 or icons 1.1.0.',
      'And because every version of icons depends on dropdown 1.1.0 and menu 2.0.0 depends on dropdown 1.1.0, every version of menu requires dropdown 1.1.0.',
      'So, because no version of dropdown matches 1.1.0 and app depends on menu *, version solving failed.'
    ])
  })

  it('ranges name pre-releases only when the package lists one in them', async () => {
    const reg: Registry = {
      menu: { '1.0.0': { dropdown: '1.1.0' }, '1.1.0': { icons: '1.1.0' }, '2.0.0-beta.1': { dropdown: '1.1.0' }, '2.0.0': { dropdown: '1.1.0' } },
      icons: { '1.1.0': { dropdown: '1.1.0' } },
      dropdown: { '1.0.0': {}, '2.0.0': {} }
    }
    let err: unknown
    try {
      await resolve({ rootName: 'app', dependencies: { menu: '*' }, includePrerelease: true, source: new MemorySource(reg) })
    } catch (e) { err = e }
    assert.ok(isSwarmpackError(err, ResolverErrorCode.CONFLICT))
    assert.deepEqual(lines(err as SwarmpackError & { details: ResolveFailureDetails }), [
      'Because menu 1.0.0 depends on dropdown 1.1.0 and menu 1.1.0 depends on icons 1.1.0, menu <2.0.0 requires dropdown 1.1.0 or icons 1.1.0.',
      'And because every version of icons depends on dropdown 1.1.0 and menu >=2.0.0 (pre-releases >=2.0.0-beta.1) depends on dropdown 1.1.0, every version of menu requires dropdown 1.1.0.',
      'So, because no version of dropdown matches 1.1.0 and app depends on menu *, version solving failed.'
    ])
  })

  it('versions keep their build metadata, in explanations and in the resolution', async () => {
    const reg: Registry = { a: { '1.0.2+2': { b: '^2.0.0' }, '1.1.0': { b: '^3.0.0' } }, b: { '1.0.0': {} } }
    assert.deepEqual(lines(await failure(reg, { a: '^1.0.0' })), [
      'Because a 1.0.2+2 depends on b ^2.0.0 and no version of b matches ^2.0.0, a 1.0.2+2 is forbidden.',
      'And because a 1.1.0 depends on b ^3.0.0, every version of a requires b ^3.0.0.',
      'So, because no version of b matches ^3.0.0 and app depends on a ^1.0.0, version solving failed.'
    ])
    // the source is asked about the version it listed, and the resolution names it the same way
    const source = new MemorySource({ a: { '1.0.2+2': {} } })
    const r = await resolve({ dependencies: { a: '^1.0.0' }, source })
    assert.deepEqual(Object.fromEntries(r.versions), { a: '1.0.2+2' })
    assert.deepEqual(source.asked, ['a', 'a@1.0.2+2'])
    const unavailable = { 'a@1.0.2+build.5': { kind: 'trust' as const, message: 'unknown key' } }
    assert.deepEqual(lines(await failure({ a: { '1.0.2+build.5': {} } }, { a: '^1.0.0' }, { unavailable })), [
      'Because no usable version of a exists: 1.0.2+build.5 is rejected by the trust policy (unknown key) and app depends on a ^1.0.0, version solving failed.'
    ])
  })
})
