// Property tests on random small registries: every solution satisfies every constraint, and every
// failure is confirmed by brute force (no assignment of versions satisfies the constraints).
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import semver from 'semver'
import { resolve, ResolverErrorCode } from '../src/index.js'
import { isSwarmpackError } from '@swarmpack/core'
import { MemorySource, type Registry } from './registry.js'
import type { Unavailable } from '../src/index.js'

const NAMES = ['a', 'b', 'c', 'd', 'e']
const VERSIONS = ['1.0.0', '1.1.0', '1.2.0-beta.1', '2.0.0', '2.1.0', '3.0.0-rc.1', '3.0.0']
const RANGES = ['*', '^1.0.0', '~1.1.0', '>=2.0.0', '<2.0.0', '1.x || 3.x', '^2.0.0', '>1.0.0 <3.0.0', '^1.2.0-beta.1', '3.0.0-rc.1 - 3.0.0', '2.0.0']

interface Case {
  registry: Registry
  root: Record<string, string>
  unavailable: Record<string, Unavailable>
  includePrerelease: boolean
  inline: boolean
  locked: Record<string, string>
  update: string[]
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  packages: fc.array(fc.record({
    versions: fc.uniqueArray(fc.constantFrom(...VERSIONS), { minLength: 1, maxLength: 4 }),
    deps: fc.array(fc.array(fc.tuple(fc.constantFrom(...NAMES), fc.constantFrom(...RANGES)), { maxLength: 2 }), { minLength: 4, maxLength: 4 }),
    rejected: fc.array(fc.integer({ min: 0, max: 5 }).map(x => x === 0), { minLength: 4, maxLength: 4 })
  }), { minLength: NAMES.length, maxLength: NAMES.length }),
  present: fc.array(fc.integer({ min: 0, max: 5 }).map(x => x !== 0), { minLength: NAMES.length, maxLength: NAMES.length }),
  root: fc.array(fc.tuple(fc.constantFrom(...NAMES), fc.constantFrom(...RANGES)), { minLength: 1, maxLength: 2 }),
  includePrerelease: fc.boolean(),
  inline: fc.boolean(),
  lockPicks: fc.array(fc.nat(), { minLength: NAMES.length, maxLength: NAMES.length }),
  update: fc.subarray(NAMES, { maxLength: 2 })
}).map(({ packages, present, root, includePrerelease, inline, lockPicks, update }) => {
  const registry: Registry = {}
  const unavailable: Record<string, Unavailable> = {}
  const locked: Record<string, string> = {}
  packages.forEach((p, i) => {
    if (!present[i] && i !== 0) return // some packages do not exist
    const name = NAMES[i]
    registry[name] = {}
    p.versions.forEach((v, j) => {
      registry[name][v] = Object.fromEntries(p.deps[j])
      if (p.rejected[j] && j > 0) unavailable[`${name}@${v}`] = { kind: 'trust', message: 'test' }
    })
    if (lockPicks[i] % 3 === 0) locked[name] = p.versions[lockPicks[i] % p.versions.length]
  })
  return { registry, root: Object.fromEntries(root), unavailable, includePrerelease, inline, locked, update }
})

function satisfies (version: string, range: string, includePrerelease: boolean): boolean {
  return semver.satisfies(version, range, { includePrerelease })
}

/** Whether `chosen` (name -> version) meets the root's and every chosen package's constraints. */
function valid (c: Case, chosen: Record<string, string>): boolean {
  const meets = (deps: Record<string, string>): boolean => Object.entries(deps).every(([n, r]) => chosen[n] !== undefined && satisfies(chosen[n], r, c.includePrerelease))
  if (!meets(c.root)) return false
  return Object.entries(chosen).every(([n, v]) => {
    if (c.registry[n]?.[v] === undefined || c.unavailable[`${n}@${v}`] !== undefined) return false
    return meets(c.registry[n][v])
  })
}

function bruteForce (c: Case): boolean {
  const names = Object.keys(c.registry)
  const options = names.map(n => [undefined, ...Object.keys(c.registry[n]).filter(v => c.unavailable[`${n}@${v}`] === undefined)])
  const chosen: Record<string, string> = {}
  const go = (i: number): boolean => {
    if (i === names.length) return valid(c, chosen)
    for (const v of options[i]) {
      if (v === undefined) delete chosen[names[i]]; else chosen[names[i]] = v
      if (go(i + 1)) return true
    }
    delete chosen[names[i]]
    return false
  }
  return go(0)
}

describe('random registries', () => {
  it('solutions satisfy every constraint; failures are truly unsolvable', async () => {
    let solved = 0; let failed = 0
    await fc.assert(fc.asyncProperty(caseArb, async (c) => {
      const source = new MemorySource(c.registry, { unavailable: c.unavailable, inline: c.inline })
      try {
        const r = await resolve({ rootName: 'root', dependencies: c.root, source, includePrerelease: c.includePrerelease, locked: c.locked, update: c.update })
        const chosen = Object.fromEntries(r.versions)
        assert.ok(valid(c, chosen), `invalid solution ${JSON.stringify(chosen)}`)
        // nothing selected that nothing needs
        const needed = new Set<string>(); const queue = Object.keys(c.root)
        while (queue.length > 0) { const n = queue.pop() as string; if (needed.has(n)) continue; needed.add(n); queue.push(...Object.keys(c.registry[n]?.[chosen[n]] ?? {})) }
        assert.deepEqual(Object.keys(chosen).sort(), [...needed].sort())
        // locked versions that fit are kept when they can all be kept together
        if (valid(c, { ...chosen, ...Object.fromEntries(Object.entries(c.locked).filter(([n]) => chosen[n] !== undefined)) })) {
          for (const [n, v] of Object.entries(c.locked)) if (!c.update.includes(n) && chosen[n] !== undefined && chosen[n] !== v && valid(c, { ...chosen, [n]: v })) assert.fail(`locked ${n}@${v} dropped for ${chosen[n]}`)
        }
        solved++
      } catch (err) {
        if (!isSwarmpackError(err, ResolverErrorCode.CONFLICT)) throw err
        assert.equal(bruteForce(c), false, `solver failed but a solution exists:\n${err.message}`)
        assert.match(err.message, /version solving failed\.$/)
        failed++
      }
    }), { numRuns: 800 })
    assert.ok(solved > 100 && failed > 100, `solved ${solved}, failed ${failed}`)
  })
})
