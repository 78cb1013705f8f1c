/**
 * The ecosystem's own compliance suite for interface-blockstore v7 (interface-blockstore-tests),
 * run against FsBlockstore under node:test: its mocha-style globals map onto node:test's, and its
 * `aegir/chai` import onto chai 4 with the two plugins it uses (fixtures/aegir-chai).
 */
import { rm } from 'node:fs/promises'
import { register } from 'node:module'
import { join } from 'node:path'
import { after, afterEach, before, beforeEach, describe, it } from 'node:test'
import { FsBlockstore } from '../src/store/index.js'
import { tempDir } from './fixtures/blocks.js'

register('./fixtures/aegir-chai/hook.mjs', import.meta.url)
Object.assign(globalThis, { describe, it, before, after, beforeEach, afterEach })
const { interfaceBlockstoreTests } = await import('interface-blockstore-tests')

describe('interface-blockstore-tests compliance', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let n = 0
  before(async () => { ({ dir, cleanup } = await tempDir('swarmpack-compliance-')) })
  after(async () => { await cleanup() })

  interfaceBlockstoreTests({
    async setup () {
      return await FsBlockstore.open(join(dir, `s${n++}`))
    },
    async teardown (store) {
      await (store as FsBlockstore).close()
      await rm((store as FsBlockstore).dir, { recursive: true, force: true })
    }
  })
})
