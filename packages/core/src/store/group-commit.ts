/**
 * Group commit: items submitted while a batch is being written wait, and go out together as the
 * next batch, so a burst of puts costs one write and one sync per batch instead of one per block.
 *
 * A batch is finished in two steps: `write` (the segment append) runs one batch at a time; the
 * `committed` promise it returns (the segment's data sync and the index commit, side by side) may
 * still be running when the next batch's `write` starts, so batch n+1 is written while batch n syncs.
 */
export interface BatchWrite<R> {
  /** One result per item, in order. */
  results: R[]
  /** Resolves once the batch is committed; its items resolve then. */
  committed: Promise<void>
}

interface Queued<T, R> {
  item: T
  resolve: (r: R) => void
  reject: (err: unknown) => void
}

export class GroupCommit<T, R> {
  readonly #write: (items: T[]) => Promise<BatchWrite<R>>
  readonly #maxItems: number
  #queue: Array<Queued<T, R>> = []
  #running: Promise<void> | undefined
  readonly #commits = new Set<Promise<void>>()

  constructor (write: (items: T[]) => Promise<BatchWrite<R>>, maxItems = 1024) {
    this.#write = write
    this.#maxItems = maxItems
  }

  submit (item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject })
      this.#running ??= this.#run()
    })
  }

  async #run (): Promise<void> {
    // let the rest of the submitter's turn queue its items into the first batch
    await Promise.resolve()
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxItems)
      let out: BatchWrite<R>
      try {
        out = await this.#write(batch.map(q => q.item))
      } catch (err) {
        for (const q of batch) q.reject(err)
        continue
      }
      const commit = out.committed.then(
        () => { batch.forEach((q, i) => { q.resolve(out.results[i]) }) },
        (err: unknown) => { for (const q of batch) q.reject(err) })
      this.#commits.add(commit)
      void commit.finally(() => this.#commits.delete(commit))
    }
    this.#running = undefined
  }

  /** Resolves once nothing is queued, being written or being committed. */
  async idle (): Promise<void> {
    while (this.#running !== undefined || this.#commits.size > 0) {
      await this.#running
      await Promise.allSettled([...this.#commits])
    }
  }

  get busy (): boolean {
    return this.#running !== undefined || this.#commits.size > 0
  }
}
