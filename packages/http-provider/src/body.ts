/**
 * Reading HTTP bodies with a hard cap: a mirror can send a `Content-Length` that lies, or no
 * length and endless data. We stop reading (and drop the connection) as soon as more than `cap`
 * bytes arrived, so memory stays bounded whatever the server does.
 */
import { SwarmpackError } from '@swarmpack/core'
import { HttpErrorCode } from './errors.js'

export interface DestroyableBody extends AsyncIterable<Uint8Array> {
  destroy?: (err?: Error) => unknown
  on?: (event: 'error', listener: (err: Error) => void) => unknown
  dump?: (opts?: { limit: number }) => Promise<void>
}

/**
 * Drops a body we will not read. A short one (an error page) is drained so the connection can be
 * reused; otherwise the connection is closed. Errors from the dropped body are swallowed.
 */
export function discard (body: DestroyableBody, drain = false): void {
  body.on?.('error', () => {})
  if (drain && body.dump !== undefined) { body.dump({ limit: 64 * 1024 }).catch(() => {}); return }
  body.destroy?.()
}

export function tooLarge (source: string, cap: number, what = 'response body'): SwarmpackError {
  return new SwarmpackError(HttpErrorCode.TOO_LARGE, `${what} from ${source} exceeds ${cap} bytes`, { details: { source, cap } })
}

/** Reads the whole body, or throws ERR_HTTP_TOO_LARGE after reading at most `cap + 1` bytes. */
export async function readCapped (body: DestroyableBody, cap: number, source: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let total = 0
  for await (const chunk of body) {
    total += chunk.byteLength
    if (total > cap) {
      discard(body)
      throw tooLarge(source, cap)
    }
    chunks.push(chunk)
  }
  if (chunks.length === 1) return chunks[0]
  const out = new Uint8Array(total)
  let offset = 0
  for (const c of chunks) { out.set(c, offset); offset += c.byteLength }
  return out
}
