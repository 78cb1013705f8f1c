/**
 * SIGKILL at every step of apply: after a restart the old or the new generation is in force,
 * never a mix, and the node says which. Each case copies one prepared data dir (generation 1
 * installed), lets a child process apply generation 2 and kill itself after step N, then starts
 * the node again in another child and inspects what it reports and what is on disk.
 */
import assert from 'node:assert/strict'
import { cp, mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { APPLY_STEPS } from 'swarmpack'
import { TestPublisher, seededBytes } from '../packages/swarmpack/test/helpers/publisher.js'
import { ChildPeer, ROOT } from './helpers/swarm.js'

const SCRIPT = join(ROOT, 'test/fixtures/swarmpack-node.ts')

async function runChild (name: string, dataDir: string, config: string, action: string, env: Record<string, string> = {}): Promise<{ child: ChildPeer, code: number | null, signal: string | null }> {
  const child = new ChildPeer(name, SCRIPT, [dataDir, config, action], env)
  const signal = new Promise<string | null>(resolve => child.proc.once('exit', (_c, s) => resolve(s)))
  const timer = setTimeout(() => child.kill(), 120_000)
  const code = await child.exited
  clearTimeout(timer)
  return { child, code, signal: await signal }
}

describe('apply survives SIGKILL at every step', () => {
  let dir: string
  let pub: TestPublisher
  let prepared: string
  let configFile: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-crash-'))
    pub = await TestPublisher.create(join(dir, 'publisher'))
    const files = (v: string, seed: number): Record<string, string | Uint8Array> => ({ 'index.js': `export const v = '${v}'\n`, 'data.bin': seededBytes(256 * 1024, seed) })
    await pub.publish({ name: 'b', version: '1.0.0', files: files('b1', 1), entry: 'index.js' })
    await pub.publish({ name: 'a', version: '1.0.0', files: files('a1', 2), dependencies: { b: '^1' }, entry: 'index.js' })
    await pub.publish({ name: 'a', version: '2.0.0', files: files('a2', 3), dependencies: { b: '^1' }, entry: 'index.js' })
    await pub.publishIndex()
    const config = (a: string): string => JSON.stringify({ ...pub.trustConfig(), modules: { a }, sources: { directories: [{ path: pub.mirrorDir }] }, sharing: 'off' })
    configFile = join(dir, 'deploy.json')
    await writeFile(configFile, config('1.0.0'))
    prepared = join(dir, 'prepared')
    const setup = await runChild('setup', prepared, configFile, 'apply')
    assert.equal(setup.code, 0, setup.child.stderr.join('\n'))
    assert.ok(setup.child.events.some(e => e.event === 'applied' && e.generation === 1), JSON.stringify(setup.child.events))
    await writeFile(configFile, config('2.0.0'))
  })
  after(async () => {
    await pub?.close()
    await rm(dir, { recursive: true, force: true })
  })

  for (const step of APPLY_STEPS) {
    it(`killed after "${step}"`, async () => {
      const dataDir = join(dir, `kill-${step}`)
      await cp(prepared, dataDir, { recursive: true, verbatimSymlinks: true })
      const killed = await runChild(`apply-${step}`, dataDir, configFile, 'apply', { SWARMPACK_TEST_KILL_AT: step })
      assert.equal(killed.signal, 'SIGKILL', `the child died at ${step}: ${killed.child.stderr.slice(-5).join('\n')}`)
      assert.ok(!killed.child.events.some(e => e.event === 'applied'))
      await stat(join(dataDir, 'journal.json'))

      const after = await runChild(`restart-${step}`, dataDir, configFile, 'status')
      assert.equal(after.code, 0, after.child.stderr.join('\n'))
      const ready = after.child.events.find(e => e.event === 'ready')
      assert.ok(ready !== undefined)
      const expectNew = APPLY_STEPS.indexOf(step) >= APPLY_STEPS.indexOf('switched')
      assert.equal(ready.recovery?.outcome, expectNew ? 'new' : 'old', JSON.stringify(ready.recovery))
      assert.equal(ready.recovery?.step, step)
      assert.equal(ready.generation, expectNew ? 2 : 1)
      assert.deepEqual(ready.generations, expectNew ? [1, 2] : [1], 'a generation never switched to is removed')
      // never a mix: every package of the generation in force is whole, in the version it names
      const want = expectNew ? 'a2' : 'a1'
      assert.equal(ready.packages.a.version, expectNew ? '2.0.0' : '1.0.0')
      assert.equal(await readFile(join(ready.packages.a.path, 'index.js'), 'utf8'), `export const v = '${want}'\n`)
      assert.equal((await stat(join(ready.packages.a.path, 'data.bin'))).size, 256 * 1024)
      assert.equal(await readFile(join(ready.packages.b.path, 'index.js'), 'utf8'), "export const v = 'b1'\n")
      assert.equal(await readlink(join(dataDir, 'current')), `generations/${expectNew ? 2 : 1}`)
      const lock = JSON.parse(await readFile(join(dataDir, 'swarmpack.lock'), 'utf8')) as { packages: Record<string, unknown> }
      assert.deepEqual(Object.keys(lock.packages).sort(), expectNew ? ['a@2.0.0', 'b@1.0.0'] : ['a@1.0.0', 'b@1.0.0'])
      await assert.rejects(stat(join(dataDir, 'journal.json')), 'the journal is cleared')
      // the host is told, and the generation in force is loaded at start in dependency order
      const loads = after.child.events.filter(e => e.event === 'hook').map(e => `${e.hook} ${e.name}@${e.version} ${e.reason}`)
      assert.deepEqual(loads, ['load b@1.0.0 start', `load a@${expectNew ? '2.0.0' : '1.0.0'} start`])
    })
  }
})
