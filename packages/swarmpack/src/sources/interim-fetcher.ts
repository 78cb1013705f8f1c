/**
 * INTERIM: a sequential stand-in for the resolver's `createFetcher` (FETCHER-CONTRACT), used only
 * until that lands; it asks sources in priority order (peers first), verifies and stores each block.
 */
import { isSwarmpackError, verifyBlock, walkDag, type FsBlockstore, type Provider } from '@swarmpack/core'
import type { CID } from 'multiformats/cid'
import type { NodeFetcher, NodeFetchOptions, NodeFetchResult } from '../apply/fetcher.js'
import { SwarmpackError } from '@swarmpack/core'

export interface InterimSource { provider: Provider, kind: 'peer' | 'mirror', priority?: number }

export function createInterimFetcher (store: FsBlockstore, sources: InterimSource[]): NodeFetcher {
  const ordered = [...sources].sort((a, b) => (a.kind === b.kind ? (a.priority ?? 0) - (b.priority ?? 0) : a.kind === 'peer' ? -1 : 1))
  const perSource = new Map<string, { kind: string, blocks: number, bytes: number }>()
  let network = 0
  let local = 0
  const get = async (cid: CID, options: NodeFetchOptions = {}): Promise<Uint8Array> => {
    if (store.has(cid)) {
      const b = await store.getBytes(cid)
      local += b.byteLength
      return b
    }
    const tried: string[] = []
    for (const s of ordered) {
      tried.push(s.provider.name)
      try {
        const bytes = await s.provider.get(cid, { signal: options.signal ?? AbortSignal.timeout(15_000) })
        verifyBlock(cid, bytes)
        await store.put(cid, bytes)
        network += bytes.byteLength
        const st = perSource.get(s.provider.name) ?? { kind: s.kind, blocks: 0, bytes: 0 }
        st.blocks++
        st.bytes += bytes.byteLength
        perSource.set(s.provider.name, st)
        return bytes
      } catch (err) {
        if (isSwarmpackError(err, 'ERR_ABORTED') && options.signal?.aborted === true) throw err
      }
    }
    throw new SwarmpackError('ERR_FETCH_INCOMPLETE', `no source had ${cid.toString()}`, { details: { missing: [cid.toString()], missingCount: 1, tried } })
  }
  return {
    getBlock: get,
    async fetchDag (root: CID, options: NodeFetchOptions = {}): Promise<NodeFetchResult> {
      const t0 = Date.now()
      network = 0
      local = 0
      perSource.clear()
      for await (const _ of walkDag([root], async c => get(c, options), options.signal !== undefined ? { signal: options.signal } : {})) { /* stored */ }
      return {
        bytes: { network, local, total: network + local },
        sources: [...perSource].map(([source, s]) => ({ source, ...s })),
        ms: Date.now() - t0
      }
    }
  }
}
