import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { resolve, MetadataCache, ResolverErrorCode, type MetadataSource, type ResolveOptions, type ResolveFailureDetails } from '../src/index.js'
import { isSwarmpackError, type SwarmpackError } from '@swarmpack/core'
import { MemorySource, type Registry, type MemorySourceOptions } from './registry.js'

async function solve (registry: Registry, dependencies: Record<string, string>, options: Partial<ResolveOptions> = {}, sourceOptions: MemorySourceOptions = {}): Promise<Record<string, string>> {
  const r = await resolve({ rootName: 'app', dependencies, source: new MemorySource(registry, sourceOptions), ...options })
  return Object.fromEntries(r.versions)
}

async function failure (registry: Registry, dependencies: Record<string, string>, options: Partial<ResolveOptions> = {}, sourceOptions: MemorySourceOptions = {}): Promise<SwarmpackError & { details: ResolveFailureDetails }> {
  try {
    await resolve({ rootName: 'app', dependencies, source: new MemorySource(registry, sourceOptions), ...options })
  } catch (err) {
    if (isSwarmpackError(err, ResolverErrorCode.CONFLICT)) return err as SwarmpackError & { details: ResolveFailureDetails }
    throw err
  }
  assert.fail('expected resolution to fail')
}

const lines = (err: { details: ResolveFailureDetails }): string[] => err.details.failure.lines

describe('solutions', () => {
  it('resolves a graph without conflicts to the newest allowed versions', async () => {
    const reg: Registry = {
      http: { '1.0.0': { buffer: '^3.0.0' }, '1.2.0': { buffer: '^3.1.0' }, '2.0.0': { buffer: '^4.0.0' } },
      json: { '2.0.0': {}, '2.1.0': { buffer: '~3.2.0' } },
      buffer: { '3.0.0': {}, '3.1.0': {}, '3.2.0': {}, '3.2.5': {}, '3.3.0': {}, '4.0.0': {} }
    }
    assert.deepEqual(await solve(reg, { http: '^1.0.0', json: '^2.0.0' }), { http: '1.2.0', json: '2.1.0', buffer: '3.2.5' })
  })

  it('finds the version inside overlapping ranges of shared dependencies', async () => {
    const reg: Registry = {
      left: { '1.0.0': { core: '>=1.2.0 <2.0.0' } },
      right: { '1.0.0': { core: '>=1.0.0 <1.5.0' } },
      core: { '1.0.0': {}, '1.2.0': {}, '1.4.9': {}, '1.5.0': {}, '1.9.0': {} }
    }
    assert.deepEqual(await solve(reg, { left: '1', right: '1' }), { left: '1.0.0', right: '1.0.0', core: '1.4.9' })
  })

  it('avoids a conflict while deciding, without backtracking', async () => {
    const reg: Registry = {
      ui: { '1.0.0': {}, '1.1.0': { theme: '^2.0.0' } },
      theme: { '1.0.0': {}, '1.1.0': {}, '2.0.0': {} }
    }
    const r = await resolve({ dependencies: { ui: '^1.0.0', theme: '^1.0.0' }, source: new MemorySource(reg) })
    assert.deepEqual(Object.fromEntries(r.versions), { theme: '1.1.0', ui: '1.0.0' })
    assert.equal(r.stats.conflicts, 0)
  })

  it('resolves a conflict by learning, and drops a dependency no longer needed', async () => {
    const reg: Registry = {
      db: { '1.0.0': {}, '2.0.0': { driver: '^1.0.0' } },
      driver: { '1.0.0': { db: '^1.0.0' } }
    }
    assert.deepEqual(await solve(reg, { db: '>=1.0.0' }), { db: '1.0.0' })
  })

  it('backjumps over unrelated decisions', async () => {
    const reg: Registry = {
      pick: { '1.0.0': { dep: '^1.0.0' }, '2.0.0': { dep: '^2.0.0' } },
      dep: { '1.0.0': {}, '2.0.0': { gone: '^1.0.0' }, '2.1.0': { gone: '^1.0.0' }, '2.2.0': { gone: '^1.0.0' }, '2.3.0': { gone: '^1.0.0' } },
      n1: { '1.0.0': {}, '1.1.0': {}, '1.2.0': {} },
      n2: { '1.0.0': {}, '1.1.0': {}, '1.2.0': {} },
      n3: { '1.0.0': {}, '1.1.0': {}, '1.2.0': {} }
    }
    const source = new MemorySource(reg, { inline: true })
    const r = await resolve({ dependencies: { pick: '*', n1: '*', n2: '*', n3: '*' }, source })
    assert.deepEqual(Object.fromEntries(r.versions), { dep: '1.0.0', n1: '1.2.0', n2: '1.2.0', n3: '1.2.0', pick: '1.0.0' })
    // one conflict, learned for the whole dep 2.x run, then one jump back past n1..n3 to `pick`
    assert.ok(r.stats.conflicts <= 3, `conflicts: ${r.stats.conflicts}`)
    assert.equal(source.asked.filter(x => x === 'gone').length, 1)
  })

  it('resolves circular dependencies', async () => {
    const reg: Registry = {
      a: { '1.0.0': { b: '^1.0.0' }, '2.0.0': { b: '^2.0.0' } },
      b: { '1.0.0': { a: '^1.0.0' }, '2.0.0': { a: '^1.0.0' } }
    }
    assert.deepEqual(await solve(reg, { a: '*' }), { a: '1.0.0', b: '1.0.0' })
    assert.deepEqual(await solve({ x: { '1.0.0': { y: '1' } }, y: { '1.0.0': { x: '1' } } }, { x: '1' }), { x: '1.0.0', y: '1.0.0' })
  })

  it('accepts a package that depends on itself within range', async () => {
    assert.deepEqual(await solve({ loop: { '1.0.0': { loop: '^1.0.0' } } }, { loop: '1' }), { loop: '1.0.0' })
  })

  it('reads dependencies only of the versions it considers', async () => {
    const reg: Registry = {
      a: { '1.0.0': { old: '1' }, '2.0.0': { b: '^1.0.0' } },
      b: { '1.0.0': {}, '1.1.0': {} },
      old: { '1.0.0': {} },
      unrelated: { '1.0.0': {} }
    }
    const source = new MemorySource(reg)
    const r = await resolve({ dependencies: { a: '^2.0.0' }, source: new MetadataCache(source, { prefetchConcurrency: 0 }) })
    assert.deepEqual(Object.fromEntries(r.versions), { a: '2.0.0', b: '1.1.0' })
    assert.deepEqual(source.asked.sort(), ['a', 'a@2.0.0', 'b', 'b@1.1.0'])
    assert.deepEqual(r.stats.requests, { listVersions: 2, getDependencies: 2, prefetched: 0 })
    assert.deepEqual(r.dependencies.get('a'), { b: '^1.0.0' })
  })

  it('reports decisions and conflicts through onProgress', async () => {
    const reg: Registry = { db: { '1.0.0': {}, '2.0.0': { driver: '^1.0.0' } }, driver: { '1.0.0': { db: '^1.0.0' } } }
    const events: string[] = []
    await resolve({ dependencies: { db: '*' }, source: new MemorySource(reg), onProgress: (e) => { events.push(e.type) } })
    assert.ok(events.includes('resolve:decision'))
    assert.ok(events.includes('resolve:conflict'))
  })

  it('prefetches what it will likely need next and counts it', async () => {
    const reg: Registry = {
      a: { '1.0.0': { b: '1', c: '1' } },
      b: { '1.0.0': { d: '1' } },
      c: { '1.0.0': { d: '1' } },
      d: { '1.0.0': {} }
    }
    const source = new MemorySource(reg, { delayMs: 5 })
    const cache = new MetadataCache(source)
    const r = await resolve({ dependencies: { a: '1' }, source: cache })
    assert.deepEqual(Object.fromEntries(r.versions), { a: '1.0.0', b: '1.0.0', c: '1.0.0', d: '1.0.0' })
    assert.ok(r.stats.requests.prefetched > 0)
    // the cache keeps the answers: a second resolution asks nothing
    const again = await resolve({ dependencies: { a: '1' }, source: cache })
    assert.deepEqual(again.stats.requests, { listVersions: 0, getDependencies: 0, prefetched: 0 })
  })
})

describe('failures are explained', () => {
  it('an unsolvable diamond', async () => {
    const reg: Registry = {
      a: { '1.0.0': { shared: '^1.0.0' }, '2.0.0': { shared: '^1.0.0' } },
      b: { '1.0.0': { shared: '^2.0.0' }, '2.0.0': { shared: '^2.0.0' } },
      shared: { '1.0.0': {}, '2.0.0': {} }
    }
    const err = await failure(reg, { a: '*', b: '*' }, {}, { inline: true })
    assert.deepEqual(lines(err), [
      'Because every version of a depends on shared ^1.0.0 and every version of b depends on shared ^2.0.0, every version of a is incompatible with b.',
      'So, because app depends on both a * and b *, version solving failed.'
    ])
  })

  it('disjoint constraints', async () => {
    const reg: Registry = {
      foo: { '1.0.0': { shared: '<=2.0.0' } },
      bar: { '1.0.0': { shared: '>3.0.0' } },
      shared: { '2.0.0': {}, '4.0.0': {} }
    }
    const err = await failure(reg, { foo: '^1.0.0', bar: '^1.0.0' })
    assert.match(err.message, /every version of (bar depends on shared >3\.0\.0|foo depends on shared <=2\.0\.0) and every version of (foo depends on shared <=2\.0\.0|bar depends on shared >3\.0\.0)/)
    assert.match(err.message, /app depends on both (foo \^1\.0\.0 and bar \^1\.0\.0|bar \^1\.0\.0 and foo \^1\.0\.0), version solving failed\.$/)
  })

  it('no versions match', async () => {
    const err = await failure({ foo: { '1.0.0': {}, '1.5.0': {} } }, { foo: '^2.0.0' })
    assert.deepEqual(lines(err), ['Because no version of foo matches ^2.0.0 and app depends on foo ^2.0.0, version solving failed.'])
  })

  it('a package that does not exist', async () => {
    const err = await failure({ a: { '1.0.0': { ghost: '^1.0.0' } } }, { a: '1' })
    assert.deepEqual(lines(err), [
      'Because every version of a depends on ghost ^1.0.0 and ghost does not exist, every version of a is forbidden.',
      'So, because app depends on a 1, version solving failed.'
    ])
  })

  it('a chain of dependencies, linearly', async () => {
    const reg: Registry = {
      web: { '1.0.0': { router: '^2.0.0' } },
      router: { '2.0.0': { log: '^3.0.0' } },
      log: { '1.0.0': {}, '3.0.0': {} }
    }
    const err = await failure(reg, { web: '^1.0.0', log: '^1.0.0' })
    assert.deepEqual(lines(err), [
      'Because every version of web depends on router ^2.0.0 and every version of router depends on log ^3.0.0, every version of web requires log ^3.0.0.',
      'So, because app depends on both web ^1.0.0 and log ^1.0.0, version solving failed.'
    ])
  })

  it('branching causes, with a numbered line referred to later', async () => {
    const reg: Registry = {
      cli: { '1.0.0': { parse: '^1.0.0', color: '^1.0.0' }, '1.1.0': { net: '^1.0.0', tls: '^1.0.0' } },
      parse: { '1.0.0': { color: '^2.0.0' } },
      color: { '1.0.0': {}, '2.0.0': {} },
      net: { '1.0.0': { tls: '^2.0.0' } },
      tls: { '1.0.0': {}, '2.0.0': {} }
    }
    const err = await failure(reg, { cli: '^1.0.0' })
    assert.deepEqual(lines(err), [
      '    Because every version of parse depends on color ^2.0.0 and cli 1.0.0 depends on parse ^1.0.0, cli 1.0.0 requires color ^2.0.0.',
      '(1) So, because cli 1.0.0 depends on color ^1.0.0, cli 1.0.0 is forbidden.',
      '',
      '    Because every version of net depends on tls ^2.0.0 and cli 1.1.0 depends on net ^1.0.0, cli 1.1.0 requires tls ^2.0.0.',
      '    And because cli 1.1.0 depends on tls ^1.0.0, cli 1.1.0 is forbidden.',
      '    And because cli 1.0.0 is forbidden (1), every version of cli is forbidden.',
      '    So, because app depends on cli ^1.0.0, version solving failed.'
    ])
    // the data behind the words
    const d = err.details.failure.derivation
    assert.equal(d.cause, 'derived')
    assert.deepEqual(d.terms, [{ name: 'app', positive: true, range: '0.0.0' }])
    const walk = (n: typeof d, out: typeof d[] = []): typeof d[] => { out.push(n); for (const c of n.causes ?? []) walk(c, out); return out }
    const deps = walk(d).filter(n => n.cause === 'dependency').map(n => n.dependency)
    assert.ok(deps.some(x => x?.depender === 'net' && x.name === 'tls' && x.range === '^2.0.0'))
    assert.ok(err.details.stats.conflicts > 0)
  })

  it('the root depending on itself with a range that excludes it', async () => {
    const err = await failure({}, { app: '^2.0.0' }, { rootVersion: '1.0.0' })
    assert.deepEqual(lines(err), ['Because app depends on app ^2.0.0 (itself, in a range that excludes it), version solving failed.'])
    assert.deepEqual(await solve({}, { app: '^1.0.0' }, { rootVersion: '1.2.0' }), {})
  })

  it('a package depending on itself with a range that excludes it', async () => {
    const err = await failure({ a: { '1.0.0': { a: '^2.0.0' } } }, { a: '^1.0.0' })
    assert.match(err.message, /every version of a depends on a \^2\.0\.0 \(itself, in a range that excludes it\)/)
  })

  it('versions the trust policy rejects or that have no variant for the host', async () => {
    const reg: Registry = { a: { '1.0.0': { b: '^1' } }, b: { '1.0.0': {}, '1.1.0': {}, '2.0.0': {} } }
    const unavailable = {
      'b@1.0.0': { kind: 'trust' as const, message: 'signed by an unknown key' },
      'b@1.1.0': { kind: 'platform' as const, message: 'linux-arm64' }
    }
    const err = await failure(reg, { a: '^1.0.0' }, {}, { unavailable })
    assert.equal(lines(err)[0], 'Because every version of a depends on b ^1 and no usable version of b matches ^1: 1.0.0 is rejected by the trust policy (signed by an unknown key); 1.1.0 has no variant for linux-arm64, every version of a is forbidden.')
    const d = err.details.failure.derivation
    const reasons = JSON.stringify(d)
    assert.match(reasons, /"kind":"trust"/)
    assert.match(reasons, /"kind":"platform"/)
    // with an older usable version, that one is taken
    reg.b['0.9.0'] = {}
    assert.deepEqual(await solve(reg, { b: '<1.1.0 || ^1.1.0' }, {}, { unavailable }), { b: '0.9.0' })
  })

  it('a whole package the trust policy rejects', async () => {
    const err = await failure({ a: { '1.0.0': { b: '1' } }, b: { '1.0.0': {} } }, { a: '1' }, {}, { unavailable: { b: { kind: 'trust', message: 'publisher not followed' } } })
    assert.match(err.message, /b is rejected by the trust policy \(publisher not followed\)/)
  })

  it('a version whose metadata names a dependency range that is not semver', async () => {
    const reg: Registry = { a: { '1.0.0': {}, '2.0.0': { b: 'latest' } }, b: { '1.0.0': {} } }
    assert.deepEqual(await solve(reg, { a: '*' }), { a: '1.0.0' })
    const err = await failure(reg, { a: '^2.0.0' })
    assert.match(err.message, /a 2\.0\.0 has invalid metadata \(its dependency b has range "latest", which is not semver\)/)
  })
})

describe('pre-releases', () => {
  const reg: Registry = {
    x: { '1.0.0': {}, '1.1.0-beta.1': {}, '1.1.0-beta.2': {}, '2.0.0-rc.1': {} },
    y: { '1.0.1-beta': {} },
    z: { '1.0.0': { x: '^1.1.0-beta.1' } }
  }
  it('are excluded unless a range names one of the same version', async () => {
    assert.deepEqual(await solve(reg, { x: '^1.0.0' }), { x: '1.0.0' })
    assert.deepEqual(await solve(reg, { x: '^1.1.0-beta.1' }), { x: '1.1.0-beta.2' })
    assert.deepEqual(await solve(reg, { z: '1' }), { z: '1.0.0', x: '1.1.0-beta.2' })
    assert.deepEqual(await solve(reg, { x: '>=1.1.0-beta.1', z: '1' }), { z: '1.0.0', x: '1.1.0-beta.2' })
    // the root's >=1.0.0 names no pre-release, so it excludes the betas z needs
    const err = await failure(reg, { x: '>=1.0.0', z: '1' })
    assert.deepEqual(lines(err), [
      'Because no version of x matches ^1.1.0 and every version of z depends on x ^1.1.0-beta.1, every version of z requires x >=1.1.0-beta.1 <1.1.0.',
      'So, because app depends on both x >=1.0.0 and z 1, version solving failed.'
    ])
  })
  it('are included everywhere when the caller opts in', async () => {
    assert.deepEqual(await solve(reg, { x: '>=1.0.0' }, { includePrerelease: true }), { x: '2.0.0-rc.1' })
    assert.deepEqual(await solve(reg, { y: '^1.0.0' }, { includePrerelease: true }), { y: '1.0.1-beta' })
  })
  it('a range with only pre-release candidates fails and says so', async () => {
    const err = await failure(reg, { y: '^1.0.0' })
    assert.deepEqual(lines(err), ['Because no version of y matches ^1.0.0 and app depends on y ^1.0.0, version solving failed.'])
  })
})

describe('locked versions', () => {
  const reg: Registry = {
    a: { '1.0.0': { b: '^1.0.0' }, '1.1.0': { b: '^1.0.0' }, '1.2.0': { b: '^1.2.0' } },
    b: { '1.0.0': {}, '1.1.0': {}, '1.2.0': {}, '1.3.0': {} },
    c: { '1.0.0': {}, '1.5.0': {} }
  }
  const locked = { a: '1.0.0', b: '1.1.0', c: '1.0.0' }
  it('are kept while they satisfy the constraints', async () => {
    assert.deepEqual(await solve(reg, { a: '^1.0.0', c: '^1.0.0' }, { locked }), { a: '1.0.0', b: '1.1.0', c: '1.0.0' })
  })
  it('change only where the constraints force it', async () => {
    assert.deepEqual(await solve(reg, { a: '^1.0.0', c: '^1.2.0' }, { locked }), { a: '1.0.0', b: '1.1.0', c: '1.5.0' })
    assert.deepEqual(await solve(reg, { a: '^1.2.0', c: '^1.0.0' }, { locked }), { a: '1.2.0', b: '1.3.0', c: '1.0.0' })
  })
  it('update releases only the named package and what it forces', async () => {
    assert.deepEqual(await solve(reg, { a: '^1.0.0', c: '^1.0.0' }, { locked, update: ['a'] }), { a: '1.2.0', b: '1.3.0', c: '1.0.0' })
    assert.deepEqual(await solve(reg, { a: '^1.0.0', c: '^1.0.0' }, { locked, update: ['c'] }), { a: '1.0.0', b: '1.1.0', c: '1.5.0' })
    assert.deepEqual(await solve(reg, { a: '^1.0.0', c: '^1.0.0' }, { locked, update: true }), { a: '1.2.0', b: '1.3.0', c: '1.5.0' })
  })
  it('a locked version that became unavailable is replaced', async () => {
    assert.deepEqual(await solve(reg, { c: '^1.0.0' }, { locked }, { unavailable: { 'c@1.0.0': { kind: 'trust', message: 'revoked' } } }), { c: '1.5.0' })
  })
})

describe('limits and errors', () => {
  // a registry where every `hard` version fails only after deciding a pile of others
  const hard: Registry = {}
  for (let i = 0; i < 30; i++) hard.hard = { ...hard.hard, [`1.${i}.0`]: { [`p${i}`]: '1' } }
  for (let i = 0; i < 30; i++) hard[`p${i}`] = { '1.0.0': { missing: '1' } }

  it('stops at the step limit with ERR_RESOLVE_LIMIT', async () => {
    await assert.rejects(resolve({ dependencies: { hard: '1' }, source: new MemorySource(hard), maxSteps: 20 }), (err: unknown) => {
      assert.ok(isSwarmpackError(err, ResolverErrorCode.LIMIT))
      assert.match((err as Error).message, /20 steps/)
      return true
    })
  })

  // a source that never answers: only the time limit or the signal can end these resolutions, so
  // no wall-clock bound is needed (one would fail on a loaded machine)
  const silent = (onAsk: () => void = () => {}): MetadataSource => ({
    listVersions: async () => { onAsk(); return await new Promise<never>(() => {}) },
    getDependencies: async () => await new Promise<never>(() => {})
  })

  it('stops at the time limit even while metadata never arrives', { timeout: 60_000 }, async () => {
    // the solver's deadline timer does not hold the process open (unref), and a silent source
    // holds nothing: keep the event loop alive as a real source's sockets would
    const alive = setInterval(() => {}, 1000)
    try {
      await assert.rejects(resolve({ dependencies: { hard: '1' }, source: silent(), timeoutMs: 120 }), (err: unknown) => isSwarmpackError(err, ResolverErrorCode.LIMIT))
    } finally {
      clearInterval(alive)
    }
  })

  it('stops when aborted while waiting for metadata', { timeout: 60_000 }, async () => {
    const controller = new AbortController()
    await assert.rejects(resolve({ dependencies: { hard: '1' }, source: silent(() => { controller.abort() }), signal: controller.signal }), (err: unknown) => isSwarmpackError(err, 'ERR_ABORTED'))
  })

  it('rejects bad input with typed errors', async () => {
    await assert.rejects(resolve({ dependencies: { a: 'not a range' }, source: new MemorySource({}) }), (err: unknown) => isSwarmpackError(err, ResolverErrorCode.INVALID_RANGE))
    await assert.rejects(resolve({ dependencies: {}, locked: { a: 'x' }, source: new MemorySource({}) }), (err: unknown) => isSwarmpackError(err, ResolverErrorCode.INVALID_VERSION))
    await assert.rejects(resolve({ dependencies: {}, rootVersion: '1', source: new MemorySource({}) }), (err: unknown) => isSwarmpackError(err, ResolverErrorCode.INVALID_VERSION))
  })

  it('reports a failing metadata source as ERR_RESOLVE_METADATA', async () => {
    const source = {
      listVersions: async () => { throw new Error('index unreachable') },
      getDependencies: async () => ({ dependencies: {} })
    }
    await assert.rejects(resolve({ dependencies: { a: '1' }, source }), (err: unknown) => {
      assert.ok(isSwarmpackError(err, ResolverErrorCode.METADATA))
      assert.match((err as Error).message, /index unreachable/)
      return true
    })
  })
})
