import { connect, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { startGatewayServer } from '../src/index.js'

describe('gateway server limits', () => {
  it('refuses connections beyond maxConnections and keeps serving the others', async () => {
    const gw = await startGatewayServer({ blockstore: new MemoryBlockstore(), maxConnections: 2 })
    const sockets: Socket[] = []
    try {
      const open = async (): Promise<Socket> => await new Promise((resolve, reject) => {
        const s = connect(gw.port, '127.0.0.1', () => { resolve(s) })
        s.on('error', reject)
        sockets.push(s)
      })
      const a = await open()
      await open()
      const third = await open()
      const closed = await new Promise<boolean>(resolve => {
        // the bound only decides how long a broken build takes to fail: generous for a loaded machine
        const timer = setTimeout(() => { resolve(false) }, 30_000)
        third.once('close', () => { clearTimeout(timer); resolve(true) })
        third.on('error', () => {})
      })
      assert.equal(closed, true, 'the third connection is dropped')
      // The first two still work.
      const reply = await new Promise<string>(resolve => {
        let text = ''
        a.on('data', d => { text += String(d); if (text.includes('\r\n\r\n')) resolve(text) })
        a.write('GET /ipfs/bafkqaaa?format=raw HTTP/1.1\r\nHost: x\r\n\r\n')
      })
      assert.match(reply, /^HTTP\/1\.1 200/)
    } finally {
      for (const s of sockets) s.destroy()
      await gw.close()
    }
  })
})
