import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isSwarmpackError } from '@swarmpack/core'
import { Agent } from 'undici'
import { openStream } from '../src/stream.js'

const MIB = 1024 * 1024

describe('streamed response bodies', () => {
  let server: Server
  let base: string
  let written = 0
  const agent = new Agent()

  before(async () => {
    // /endless writes 64 KiB pieces as fast as the socket takes them, counting what it wrote.
    server = createServer((req, res) => {
      if (req.url === '/missing') { res.writeHead(404); res.end('no such thing\n'); return }
      written = 0
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      const piece = Buffer.alloc(64 * 1024, 7)
      const pump = (): void => {
        while (!res.destroyed && written < 256 * MIB) {
          written += piece.byteLength
          if (!res.write(piece)) { res.once('drain', pump); return }
        }
        res.end()
      }
      pump()
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => {
    await agent.destroy()
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })

  it('pauses the server when the reader stops reading (bounded memory)', async () => {
    const res = await openStream(`${base}/endless`, { dispatcher: agent, headers: {}, timeoutMs: 5000, source: 'test', highWaterMark: MIB })
    assert.equal(res.status, 200)
    const it = res.body[Symbol.asyncIterator]()
    try {
      let got = 0
      for (let i = 0; i < 4; i++) got += ((await it.next()).value as Uint8Array).byteLength
      await new Promise(resolve => setTimeout(resolve, 400))
      // The queue (1 MiB) plus kernel socket buffers on both sides: far below the 256 MiB on offer.
      assert.ok(written < 32 * MIB, `server wrote ${written} bytes while the reader slept`)
      // Reading again resumes the paused socket.
      while (got < 8 * MIB) got += ((await it.next()).value as Uint8Array).byteLength
    } finally {
      await it.return?.()
      res.done()
    }
  })

  it('turns an abort mid-body into ERR_ABORTED', async () => {
    const controller = new AbortController()
    const res = await openStream(`${base}/endless`, { dispatcher: agent, headers: {}, timeoutMs: 5000, source: 'test', highWaterMark: MIB, signal: controller.signal })
    const it = res.body[Symbol.asyncIterator]()
    await it.next()
    controller.abort()
    const err = await (async () => { while (true) { const r = await it.next(); if (r.done === true) return undefined } })().catch(e => e)
    assert.ok(isSwarmpackError(err, 'ERR_ABORTED'), String(err))
    res.done()
  })

  it('hands over error statuses with their short body', async () => {
    const res = await openStream(`${base}/missing`, { dispatcher: agent, headers: {}, timeoutMs: 5000, source: 'test', highWaterMark: MIB })
    assert.equal(res.status, 404)
    const chunks: Uint8Array[] = []
    for await (const c of res.body as AsyncIterable<Uint8Array>) chunks.push(c)
    assert.equal(Buffer.concat(chunks).toString(), 'no such thing\n')
    res.done()
  })
})
