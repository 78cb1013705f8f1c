/**
 * The main thread's side of pack's chunk worker (chunk-worker.ts): one worker thread per pack,
 * fed a file's pieces in order, replying in order with the chunks cut and their SHA-256 digests.
 * The caller bounds the pieces in flight (each holds its own ArrayBuffer, transferred both ways).
 * Failures are typed (worker-channel.ts): the worker failing or exiting early rejects every
 * pending piece with ERR_PACK_WORKER, an abort with ERR_ABORTED; `close()` (always called by pack)
 * resolves only once the thread has exited.
 */
import { Worker } from 'node:worker_threads'
import { logger } from '@libp2p/logger'
import type { ChunkerParams } from '../chunker/index.js'
import { WorkerChannel } from '../worker-channel.js'
import type { ChunkReply, ChunkRequest } from './chunk-protocol.js'
import { PackageErrorCode } from './errors.js'

const log = logger('swarmpack:pack:worker')

export type { ChunkReply }

/**
 * The worker script next to this module. From the TypeScript sources (tests and benchmarks run
 * through tsx) a worker does not inherit tsx's loader, so it is registered in the worker first.
 */
const defaultWorkerUrl = new URL(import.meta.url.endsWith('.ts') ? './chunk-worker.ts' : './chunk-worker.js', import.meta.url)

function spawn (url: URL, params: ChunkerParams): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData: params })
  const tsx = import.meta.resolve('tsx/esm/api')
  return new Worker(`import(${JSON.stringify(tsx)}).then(m => { m.register(); return import(${JSON.stringify(url.href)}) })`, { eval: true, workerData: params })
}

let live = 0
/** Chunk workers started and not yet exited, in this process (for tests: none may outlive pack). */
export function liveChunkWorkers (): number { return live }

export interface ChunkHasherInit {
  params: ChunkerParams
  signal?: AbortSignal
  /** Another worker script speaking the same protocol (tests use failing ones). */
  workerUrl?: URL
}

export class ChunkHasher {
  readonly #channel: WorkerChannel<ChunkReply>

  constructor (init: ChunkHasherInit) {
    live++
    this.#channel = new WorkerChannel(spawn(init.workerUrl ?? defaultWorkerUrl, init.params), {
      errorCode: PackageErrorCode.WORKER,
      name: "pack's chunk worker",
      requests: 'pieces',
      log,
      ...(init.signal !== undefined ? { signal: init.signal } : {}),
      onExit: () => { live-- }
    })
  }

  /**
   * Sends the next piece of the current file (`final` on its last piece; an empty final piece is
   * allowed). The piece's ArrayBuffer is transferred: it is unusable here afterwards. Resolves
   * with the chunks cut so far, in order.
   */
  async submit (bytes: Uint8Array, final: boolean): Promise<ChunkReply> {
    const request: ChunkRequest = { bytes, final }
    return await this.#channel.request(request, [bytes.buffer as ArrayBuffer])
  }

  /** Terminates the worker and resolves once it has exited. Idempotent. */
  async close (): Promise<void> {
    await this.#channel.close()
  }
}
