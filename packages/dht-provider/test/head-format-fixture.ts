/**
 * A minimal head format for testing dht-provider's generic record machinery on its own (the real
 * format, the trust package's signed head envelope, is injected by the node and tested in
 * packages/swarmpack and test/dht-records.test.ts). Value: dag-cbor { version, sig }, the
 * ed25519 signature by the key the record key names over the key and the version.
 */
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { SwarmpackError, decodeCbor, encodeCborBlock } from '@swarmpack/core'
import { keyIdOfHeadKey, type HeadRecordFormat } from '../src/records.js'
import type { PrivateKey } from '@libp2p/interface'

const signed = (key: Uint8Array, version: number): Uint8Array => encodeCborBlock({ key, version }).bytes

export async function fixtureRecord (privateKey: PrivateKey, key: Uint8Array, version: number): Promise<Uint8Array> {
  return encodeCborBlock({ version, sig: await privateKey.sign(signed(key, version)) }).bytes
}

function bad (message: string): SwarmpackError {
  return new SwarmpackError('ERR_TEST_BAD_HEAD', message)
}

function decode (value: Uint8Array): { version: number, sig: Uint8Array } {
  if (value.byteLength > 512) throw bad('too large')
  let v: any
  try { v = decodeCbor(value) } catch { throw bad('not cbor') }
  if (typeof v?.version !== 'number' || !(v.sig instanceof Uint8Array)) throw bad('bad shape')
  return v
}

export const fixtureFormat: HeadRecordFormat = {
  validate: async (key, value) => {
    const peer = peerIdFromString(keyIdOfHeadKey(key))
    const { version, sig } = decode(value)
    const pub = publicKeyFromRaw(peer.publicKey!.raw)
    if (!(await pub.verify(signed(key, version), sig))) throw bad('signature does not verify')
    return { version }
  },
  select: (_key, values) => {
    let best = 0
    let bestVersion = -1
    values.forEach((v, i) => {
      try {
        const { version } = decode(v)
        if (version > bestVersion) { best = i; bestVersion = version }
      } catch {}
    })
    return best
  }
}
