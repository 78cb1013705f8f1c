/**
 * The peer's identity: an ed25519 key kept in the data directory, so a node keeps its peer id
 * (and the provider records pointing at it) across restarts.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { SwarmpackError, writeFileAtomic } from '@swarmpack/core'
import { DhtErrorCode } from './errors.js'
import type { PrivateKey } from '@libp2p/interface'

export const PEER_KEY_FILE = 'peer.key'

/** Loads `<dataDir>/peer.key` (libp2p protobuf), creating it (mode 0600, written atomically) if absent. */
export async function loadOrCreatePeerKey (dataDir: string): Promise<PrivateKey> {
  const path = join(dataDir, PEER_KEY_FILE)
  let bytes: Uint8Array | undefined
  try {
    bytes = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (bytes !== undefined) {
    try {
      return privateKeyFromProtobuf(bytes)
    } catch (err) {
      throw new SwarmpackError(DhtErrorCode.INVALID_KEY, `unreadable peer key at ${path}`, { cause: err })
    }
  }
  const key = await generateKeyPair('Ed25519')
  await mkdir(dataDir, { recursive: true })
  await writeFileAtomic(path, privateKeyToProtobuf(key), { mode: 0o600, syncDir: true })
  return key
}
