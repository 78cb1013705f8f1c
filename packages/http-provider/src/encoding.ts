/**
 * Content-Encoding. We ask for `identity` (blocks are hashed, not text: compression buys little and
 * costs CPU on both ends), but some servers and CDNs compress whatever they send. Such a body is
 * decoded with node:zlib rather than treated as bad data; the caps downstream (block size, CAR
 * section and unrequested-bytes caps) count decoded bytes, so a compression bomb is cut off the
 * same way an endless body is.
 */
import { Readable, pipeline, type Transform } from 'node:stream'
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib'
import { SwarmpackError } from '@swarmpack/core'
import { discard, type DestroyableBody } from './body.js'
import { HttpErrorCode } from './errors.js'

const DECODERS: Record<string, () => Transform> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress
}

/** At most this many codings stacked on one body (each stage costs a decoder). */
const MAX_CODINGS = 2

function badEncoding (source: string, message: string, cause?: unknown): SwarmpackError {
  return new SwarmpackError(HttpErrorCode.BAD_ENCODING, `${source}: ${message}`, { cause, details: { source } })
}

/**
 * The body as sent, or decoded when `Content-Encoding` names gzip, deflate or br. An unknown or
 * corrupt encoding is ERR_HTTP_BAD_ENCODING (the body is discarded).
 */
export function decodeBody (body: DestroyableBody, header: string | string[] | undefined, source: string): DestroyableBody {
  const codings = (Array.isArray(header) ? header.join(',') : header ?? '')
    .split(',').map(s => s.trim().toLowerCase()).filter(s => s !== '' && s !== 'identity')
  if (codings.length === 0) return body
  const unknown = codings.find(c => DECODERS[c] === undefined)
  if (unknown !== undefined || codings.length > MAX_CODINGS) {
    discard(body)
    throw badEncoding(source, `unsupported Content-Encoding: ${codings.join(', ')}`)
  }
  // Codings are listed in the order they were applied: undo them last first.
  const stages = codings.reverse().map(c => DECODERS[c]())
  const out = stages[stages.length - 1]
  pipeline([Readable.from(body), ...stages], () => {})
  return {
    async * [Symbol.asyncIterator] () {
      try {
        for await (const chunk of out) yield chunk as Uint8Array
      } catch (err) {
        if (err instanceof SwarmpackError) throw err
        const code = (err as { code?: string }).code ?? ''
        if (code.startsWith('Z_') || code.startsWith('ERR__ERROR')) throw badEncoding(source, `corrupt ${codings.join(', ')} body`, err)
        throw err
      } finally {
        if (!out.destroyed) out.destroy()
      }
    },
    destroy: (err?: Error) => { out.destroy(err) },
    on: (_event: 'error', _listener: (err: Error) => void) => { out.on('error', () => {}) }
  }
}
