import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { isSwarmpackError, verifyBlock } from '@swarmpack/core'
import { HttpProvider } from '../src/index.js'
import { makeDag, type TestDag } from './helpers/blocks.js'
import { startProxy, type TestProxy } from './helpers/proxy.js'

/** A private CA is not at hand without openssl; the tests that need one skip clearly. */
function haveOpenssl (): boolean {
  try { execFileSync('openssl', ['version'], { stdio: 'ignore' }); return true } catch { return false }
}

describe('HTTPS mirrors', { skip: haveOpenssl() ? false : 'openssl is not installed' }, () => {
  let tmp: string
  let dag: TestDag
  let server: Server
  let url: string
  let cert: Buffer
  let proxy: TestProxy

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'swarmpack-http-tls-'))
    // A self-signed certificate for 127.0.0.1: trusted only when passed as `tls.ca`.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(tmp, 'key.pem'), '-out', join(tmp, 'cert.pem')], { stdio: 'ignore' })
    cert = await readFile(join(tmp, 'cert.pem'))
    dag = makeDag({ files: 1, chunksPerFile: 4, chunkSize: 10_000 })
    const byPath = new Map(dag.blocks.map(b => [`/ipfs/${b.cid.toString()}`, b.bytes]))
    server = createServer({ key: await readFile(join(tmp, 'key.pem')), cert }, (req, res) => {
      const bytes = byPath.get((req.url ?? '').split('?')[0])
      if (bytes === undefined) { res.writeHead(404).end(); return }
      res.writeHead(200, { 'content-length': bytes.byteLength }).end(bytes)
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`
    proxy = await startProxy()
  })
  after(async () => {
    await proxy?.close()
    await new Promise<void>(resolve => { server?.close(() => { resolve() }); server?.closeAllConnections() })
    await rm(tmp, { recursive: true, force: true })
  })

  it('verifies certificates by default and refuses an untrusted one', async () => {
    const p = new HttpProvider({ mirrors: [url], retries: 0, proxy: false })
    try {
      const err = await p.get(dag.blocks[1].cid).catch(e => e)
      assert.ok(isSwarmpackError(err, 'ERR_HTTP_ALL_MIRRORS_FAILED'))
      assert.equal((err.details.errors as Array<{ code: string }>)[0].code, 'ERR_HTTP_NETWORK')
    } finally {
      await p.close()
    }
  })

  it('trusts a private CA given as tls.ca, directly and through a CONNECT proxy', async () => {
    const direct = new HttpProvider({ mirrors: [url], tls: { ca: cert }, proxy: false })
    const proxied = new HttpProvider({ mirrors: [url], tls: { ca: cert }, proxy: { https: proxy.url } })
    try {
      let n = 0
      for await (const b of direct.getDag(dag.root)) { verifyBlock(b.cid, b.bytes); n++ }
      assert.equal(n, dag.blocks.length)
      verifyBlock(dag.blocks[2].cid, await proxied.get(dag.blocks[2].cid))
      assert.ok(proxy.seen.some(s => s.startsWith('CONNECT 127.0.0.1:')), 'tunnelled through the proxy')
    } finally {
      await direct.close()
      await proxied.close()
    }
  })
})
