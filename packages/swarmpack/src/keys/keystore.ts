/**
 * Named signing keys in a data dir (`<dataDir>/keys/<name>.key`, libp2p protobuf form, mode 0600):
 * the publisher's, the indexer's, an attester's. A key's id (`12D3KooW…`) is its public key, the
 * form followers put into their configs.
 */
import { mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { generateSigningKey, keyIdOf, loadKeyFile, saveKeyFile, type Ed25519PrivateKey } from '@swarmpack/trust'
import { SwarmpackNodeErrorCode, nodeError } from '../errors.js'

const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/

export interface KeyInfo { name: string, id: string, path: string }

export class KeyStore {
  constructor (readonly dir: string) {}

  static of (dataDir: string): KeyStore {
    return new KeyStore(join(dataDir, 'keys'))
  }

  path (name: string): string {
    if (!NAME_RE.test(name)) throw nodeError(SwarmpackNodeErrorCode.INVALID_ARGUMENT, `key names are 1-64 of A-Z a-z 0-9 _ -, not ${JSON.stringify(name.slice(0, 80))}`)
    return join(this.dir, `${name}.key`)
  }

  /** Creates a key; an existing one is kept unless `overwrite` (ERR_TRUST_KEY_FILE). */
  async generate (name: string, options: { overwrite?: boolean } = {}): Promise<KeyInfo> {
    const path = this.path(name)
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    const key = await generateSigningKey()
    await saveKeyFile(path, key, options)
    return { name, id: keyIdOf(key), path }
  }

  /** Loads a key; ERR_KEY_NOT_FOUND when there is none of that name. */
  async load (name: string): Promise<Ed25519PrivateKey> {
    const path = this.path(name)
    const names = await this.names()
    if (!names.includes(name)) throw nodeError(SwarmpackNodeErrorCode.KEY_NOT_FOUND, `no key named ${name} in ${this.dir}`, { name, dir: this.dir, keys: names })
    return loadKeyFile(path)
  }

  async info (name: string): Promise<KeyInfo> {
    return { name, id: keyIdOf(await this.load(name)), path: this.path(name) }
  }

  async names (): Promise<string[]> {
    const entries = await readdir(this.dir).catch(() => [] as string[])
    return entries.filter(n => n.endsWith('.key')).map(n => n.slice(0, -4)).filter(n => NAME_RE.test(n)).sort()
  }

  async list (): Promise<KeyInfo[]> {
    return Promise.all((await this.names()).map(async n => this.info(n)))
  }
}

export { keyIdOf }
