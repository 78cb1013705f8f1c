/**
 * The progress bars on a real terminal: `swarmpack install` runs inside tmux; the pane
 * (`capture-pane`) must show one finished bar per package, redrawn in place (not one line per
 * update), followed by the summary, and the raw output must hide and restore the cursor.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { NODE_ARGS, expectCode, seeded, swarmpack, writePackage } from './helpers.js'

const TMUX = spawnSync('tmux', ['-V']).status === 0
const MiB = 1024 * 1024

describe('progress bars in a terminal (tmux)', { skip: TMUX ? false : 'tmux is not installed', timeout: 600_000 }, () => {
  let dir: string
  const socket = `swarmpack-test-${process.pid}`
  const tmux = (...args: string[]): string => {
    const r = spawnSync('tmux', ['-u', '-L', socket, ...args], { encoding: 'utf8', env: { ...process.env, LANG: 'C.UTF-8' } })
    if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-bars-'))
    const server = join(dir, 'server')
    const client = join(dir, 'client')
    await mkdir(server)
    await mkdir(client)
    await writePackage(join(dir, 'big'), { name: 'big', version: '1.0.0', dependencies: { small: '^1' } }, { 'data.bin': seeded(16 * MiB, 11) })
    await writePackage(join(dir, 'small'), { name: 'small', version: '1.0.0' }, { 'data.bin': seeded(2 * MiB, 12) })
    for (const args of [['init', '--sharing', 'off'], ['keys', 'generate'], ['publish', join(dir, 'small')], ['publish', join(dir, 'big')]]) expectCode(await swarmpack(args, { cwd: server }), 0)
    expectCode(await swarmpack(['init', '--sharing', 'off'], { cwd: client }), 0)
    expectCode(await swarmpack(['follow', join(server, '.swarmpack', 'mirror')], { cwd: client }), 0)
  })

  after(async () => {
    try { tmux('kill-server') } catch { /* already gone */ }
    await rm(dir, { recursive: true, force: true })
  })

  it('draws one bar per package in place and ends with the summary', async () => {
    const raw = join(dir, 'raw.log')
    const command = [process.execPath, ...NODE_ARGS, 'install', 'big@^1'].map(a => `'${a}'`).join(' ')
    // the pane is the terminal; the shell waits a moment so pipe-pane is attached before any output
    tmux('new-session', '-d', '-x', '160', '-y', '40', '-s', 'bars', '-c', join(dir, 'client'), `sleep 1; ${command}; echo "EXIT=$?"; sleep 600`)
    tmux('pipe-pane', '-o', '-t', 'bars', `cat >> '${raw}'`)
    let pane = ''
    const deadline = Date.now() + 300_000
    while (!/EXIT=\d+/.test(pane)) {
      assert.ok(Date.now() < deadline, `install did not finish in the pane:\n${pane}`)
      await sleep(500)
      pane = tmux('capture-pane', '-p', '-t', 'bars')
    }
    assert.match(pane, /EXIT=0/, pane)
    const lines = pane.split('\n')
    const bars = lines.filter(l => l.includes('█') || l.includes('░'))
    // one line per package, each finished (full bar, "done"), showing bytes and the source mix
    assert.deepEqual(bars.map(l => l.split(' ')[0]).sort(), ['big@1.0.0', 'small@1.0.0'], pane)
    for (const b of bars) {
      assert.ok(!b.includes('░'), `unfinished bar: ${b}`)
      assert.match(b, /done/)
      assert.match(b, /mirrors 100%/)
      assert.match(b, /\/s/)
    }
    assert.match(bars.find(b => b.startsWith('big@'))!, /16\.0 MiB\/16\.0 MiB/)
    // after the bars: the summary, on lines of its own
    const summary = lines.findIndex(l => l.startsWith('generation 1: +big@1.0.0 +small@1.0.0'))
    assert.ok(summary > lines.indexOf(bars.at(-1)!), pane)
    assert.match(lines[summary + 1], /^18\.0 MiB downloaded/)
    const bytes = await readFile(raw, 'latin1')
    assert.ok(bytes.includes('\x1b[?25l') && bytes.includes('\x1b[?25h'), 'the cursor is hidden while drawing and shown again')
    assert.ok(/\x1b\[\d*[AF]|\x1b\[\d*G|\r/.test(bytes), 'bars are redrawn in place (cursor moves), not appended')
  })
})
