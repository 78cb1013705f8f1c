import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { isSwarmpackError } from '@swarmpack/core'
import { SwarmpackNodeErrorCode, configDigest, editConfigFile, loadConfigFile, parseConfig, starterConfigText, writeModules } from '../src/index.js'

const KEY = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
const base = { indexers: [{ id: 'main', keys: [KEY] }], trust: { publishers: [{ pattern: '*', roots: [KEY] }] } }

function issuesOf (fn: () => unknown): Array<{ path: string, message: string }> {
  try {
    fn()
  } catch (err) {
    assert.ok(isSwarmpackError(err, SwarmpackNodeErrorCode.CONFIG_INVALID), String(err))
    return err.details.issues as Array<{ path: string, message: string }>
  }
  assert.fail('no error')
}

describe('deployment config', () => {
  it('fills in defaults', () => {
    const c = parseConfig({ ...base, modules: { a: '^1.0.0', b: { range: '~2.1', variant: 'musl' } } })
    assert.equal(c.sharing, 'share')
    assert.equal(c.sources.policy, 'peers-first')
    assert.equal(c.generations.keep, 5)
    assert.equal(c.hooks.timeoutMs, 30_000)
    assert.deepEqual(c.indexers[0].heads, { dht: true, mirrors: [], directories: [] })
  })

  it('names the path of a bad value and of an unknown key', () => {
    const issues = issuesOf(() => parseConfig({
      ...base,
      sources: { mirrors: [{ url: 'http://ok.example/' }, { url: 'ftp://nope' }], colour: 'red' },
      modules: { a: 'not a range', 'Bad Name': '^1' }
    }))
    const paths = issues.map(i => i.path).sort()
    assert.deepEqual(paths, ['modules.a', 'modules["Bad Name"]', 'sources.colour', 'sources.mirrors[1].url'])
    assert.equal(issues.find(i => i.path === 'sources.colour')?.message, 'unknown key')
  })

  it('refuses bad keys, duplicate indexers and impossible thresholds', () => {
    assert.deepEqual(issuesOf(() => parseConfig({ ...base, indexers: [{ id: 'main', keys: ['nope'] }] })).map(i => i.path), ['indexers[0].keys[0]'])
    assert.deepEqual(issuesOf(() => parseConfig({ ...base, indexers: [{ id: 'm', keys: [KEY] }, { id: 'm', keys: [KEY] }] })).map(i => i.path), ['indexers[1].id'])
    assert.deepEqual(issuesOf(() => parseConfig({ ...base, trust: { ...base.trust, indexerThreshold: 2 } })).map(i => i.path), ['trust.indexerThreshold'])
    assert.deepEqual(issuesOf(() => parseConfig({ ...base, sharing: 'sometimes' })).map(i => i.path), ['sharing'])
  })

  it('reads a file, resolving relative directories against it, and says where a bad file is', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'swarmpack-config-'))
    try {
      const file = join(dir, 'deploy.json')
      await writeFile(file, JSON.stringify({ ...base, sources: { directories: [{ path: 'mirror' }] } }))
      const c = await loadConfigFile(file)
      assert.equal(c.sources.directories[0].path, join(dir, 'mirror'))
      await writeFile(file, '{ "indexers": ')
      await assert.rejects(loadConfigFile(file), (err: unknown) => isSwarmpackError(err, SwarmpackNodeErrorCode.CONFIG_INVALID) && /not JSON/.test(err.message))
      await writeFile(file, JSON.stringify({ ...base, network: { listen: ['/ip4/1.2.3.4/tcp/1'], maxConnections: -1 } }))
      await assert.rejects(loadConfigFile(file), (err: unknown) => isSwarmpackError(err) && err.message.includes(file) && err.message.includes('network.maxConnections'))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('digests what decides a resolution only', () => {
    const a = parseConfig({ ...base, modules: { a: '^1' } })
    const b = parseConfig({ ...base, modules: { a: '^1' }, network: { maxConnections: 5 }, sources: { mirrors: [{ url: 'http://m/' }] } })
    const c = parseConfig({ ...base, modules: { a: '^2' } })
    assert.equal(configDigest(a), configDigest(b))
    assert.notEqual(configDigest(a), configDigest(c))
  })

  it('reads comments, keeps them when install or follow edit the file, and accepts a starter config with no indexers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'swarmpack-config-'))
    try {
      const file = join(dir, 'swarmpack.json')
      await writeFile(file, starterConfigText())
      const fresh = await loadConfigFile(file)
      assert.deepEqual(fresh.indexers, [])
      assert.deepEqual(fresh.trust.publishers, [])
      await editConfigFile(file, ['indexers'], base.indexers)
      await editConfigFile(file, ['trust', 'publishers'], base.trust.publishers)
      await writeModules(file, { a: '^1.0.0' })
      const text = await readFile(file, 'utf8')
      assert.match(text, /\/\/ Wanted modules: name -> semver range/)
      assert.match(text, /\/\/ Whose releases are trusted/)
      const c = await loadConfigFile(file)
      assert.deepEqual(c.modules, { a: '^1.0.0' })
      assert.equal(c.indexers[0].keys[0], KEY)
      // an edit that breaks the config writes nothing
      await assert.rejects(editConfigFile(file, ['sharing'], 'sometimes'), (err: unknown) => isSwarmpackError(err, SwarmpackNodeErrorCode.CONFIG_INVALID))
      assert.equal(await readFile(file, 'utf8'), text)
      await writeFile(file, '{ "indexers": [], // trailing\n }')
      await assert.rejects(loadConfigFile(file).then(() => writeFile(file, '{ "indexers": [ }')).then(async () => loadConfigFile(file)), (err: unknown) => isSwarmpackError(err, SwarmpackNodeErrorCode.CONFIG_INVALID) && /line 1/.test(err.message))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
