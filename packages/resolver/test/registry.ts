// An in-memory metadata source for tests: package -> version -> dependencies.
import type { MetadataSource, PackageListing, VersionMetadata, Unavailable } from '../src/index.js'

export type Registry = Record<string, Record<string, Record<string, string>>>

export interface MemorySourceOptions {
  /** Versions that exist but cannot be used: "name@version" or "name" -> reason. */
  unavailable?: Record<string, Unavailable>
  /** Carry dependencies in the listing (like npm packuments) instead of one request per version. */
  inline?: boolean
  /** Answer after this many ms. */
  delayMs?: number
}

export class MemorySource implements MetadataSource {
  readonly registry: Registry
  readonly options: MemorySourceOptions
  readonly asked: string[] = []

  constructor (registry: Registry, options: MemorySourceOptions = {}) {
    this.registry = registry
    this.options = options
  }

  private async wait (): Promise<void> {
    if (this.options.delayMs !== undefined) await new Promise(resolve => setTimeout(resolve, this.options.delayMs))
  }

  async listVersions (name: string): Promise<PackageListing> {
    this.asked.push(name)
    await this.wait()
    const pkg = this.registry[name]
    if (pkg === undefined) return { versions: [], unavailable: { kind: 'not-found', message: '' } }
    const unavailable = this.options.unavailable ?? {}
    return {
      unavailable: unavailable[name],
      versions: Object.keys(pkg).map(version => ({
        version,
        unavailable: unavailable[`${name}@${version}`],
        dependencies: this.options.inline === true ? pkg[version] : undefined
      }))
    }
  }

  async getDependencies (name: string, version: string): Promise<VersionMetadata> {
    this.asked.push(`${name}@${version}`)
    await this.wait()
    return { dependencies: this.registry[name][version] }
  }
}
