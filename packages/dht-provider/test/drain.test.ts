/**
 * Backpressure on libp2p 3 streams (drain.ts), on real nodes over TCP on 127.0.0.1: a writer that
 * waits with `drained()` after `send()` returns false waits every time the receiver stops
 * reading, not only the first time. `stream.onDrain()` in @libp2p/utils 7.4.1 does not: after one
 * drain it resolves at once, which left Bitswap's sends without backpressure.
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { drained } from '../src/drain.js'
import { connect, createNode } from './bitswap-helpers.js'
import type { Libp2p, Stream } from '@libp2p/interface'

const PROTOCOL = '/swarmpack/test/sink/1.0.0'

/** Whether `promise` settles within `ms`. */
async function settlesWithin (promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const result = await Promise.race([promise.then(() => true, () => true), new Promise<boolean>(resolve => { timer = setTimeout(() => { resolve(false) }, ms) })])
  clearTimeout(timer)
  return result
}

/** Sends 64 KiB chunks until the stream says its buffer is full (bounded). */
function fill (stream: Stream): number {
  const chunk = new Uint8Array(64 * 1024)
  for (let i = 1; i <= 4096; i++) if (!stream.send(chunk)) return i
  throw new Error('the stream never pushed back')
}

describe('drained(): waiting for a stream to drain', () => {
  const nodes: Libp2p[] = []
  after(async () => { await Promise.all(nodes.map(async n => { await n.stop() })) })

  it('waits each time the receiver stops reading, where onDrain() waits only the first time', async () => {
    const a = await createNode()
    const b = await createNode()
    nodes.push(a, b)
    let inbound: Stream | undefined
    let received = 0
    await b.handle(PROTOCOL, (stream) => {
      inbound = stream
      stream.pause()
      stream.addEventListener('message', (evt) => { received += evt.data.byteLength })
    })
    await connect(a, b)
    const out = await a.dialProtocol(b.peerId, PROTOCOL)
    for (let round = 1; round <= 2; round++) {
      fill(out)
      const wait = drained(out)
      // the library's own wait, asked each round too
      const libraryWait = out.onDrain()
      assert.equal(await settlesWithin(wait, 1000), false, `round ${round}: no drain while the receiver is paused`)
      if (round === 2) {
        // the library's own wait, after the first drain: already resolved (if this fails,
        // @libp2p/utils fixed onDrain and drain.ts can go)
        assert.equal(await settlesWithin(libraryWait, 200), true, 'onDrain() resolves at once after a first drain')
      }
      inbound!.resume()
      await wait
      await libraryWait
      inbound!.pause()
    }
    assert.ok(received > 0)
    out.abort(new Error('done'))
  })

  it('rejects when the stream closes or the signal aborts while waiting', async () => {
    const a = await createNode()
    const b = await createNode()
    nodes.push(a, b)
    await b.handle(PROTOCOL, (stream) => { stream.pause() })
    await connect(a, b)
    const out = await a.dialProtocol(b.peerId, PROTOCOL)
    fill(out)
    const controller = new AbortController()
    const waiting = drained(out, controller.signal)
    controller.abort(new Error('given up'))
    await assert.rejects(waiting, /given up/)
    const closing = drained(out)
    out.abort(new Error('reset'))
    await assert.rejects(closing)
  })
})
