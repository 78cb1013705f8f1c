/**
 * The block sources a node fetches from, built from the config: the swarm (the sharing node's
 * DhtProvider), one HttpProvider per mirror or gateway (so each has its own priority and health
 * in the fetcher's accounting), and one FsProvider per mirror directory.
 */
import { FsProvider, type Provider } from '@swarmpack/core'
import { HttpProvider } from '@swarmpack/http-provider'
import type { SwarmNode } from '@swarmpack/dht-provider'
import type { DeploymentConfig } from '../config/schema.js'

export interface BuiltSource { provider: Provider, kind: 'peer' | 'mirror', priority: number }

export function httpProxyOption (config: DeploymentConfig): { proxy?: false | { http: string, https: string, noProxy?: string } } {
  const p = config.network.proxy
  if (p === undefined) return {}
  if (p === false) return { proxy: false }
  return { proxy: { http: p, https: p, ...(config.network.noProxy !== undefined ? { noProxy: config.network.noProxy } : {}) } }
}

export async function buildSources (config: DeploymentConfig, swarm: SwarmNode | undefined): Promise<BuiltSource[]> {
  const out: BuiltSource[] = []
  if (swarm !== undefined) out.push({ provider: swarm.provider, kind: 'peer', priority: 0 })
  for (const m of config.sources.mirrors) {
    out.push({ provider: new HttpProvider({ mirrors: [{ url: m.url, car: true }], retries: 1, ...httpProxyOption(config) }), kind: 'mirror', priority: m.priority })
  }
  for (const d of config.sources.directories) {
    out.push({ provider: await FsProvider.open(d.path), kind: 'mirror', priority: d.priority })
  }
  return out
}

export async function closeSources (sources: BuiltSource[]): Promise<void> {
  await Promise.all(sources.filter(s => s.kind === 'mirror').map(async s => s.provider.close?.().catch(() => {})))
}
