/** Runs `fn` over items with at most `limit` in flight; results in input order; first error wins after all settle. */
export async function mapLimit<T, R> (items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  let failed: { err: unknown } | undefined
  const worker = async (): Promise<void> => {
    while (next < items.length && failed === undefined) {
      const i = next++
      try {
        out[i] = await fn(items[i], i)
      } catch (err) {
        failed ??= { err }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  if (failed !== undefined) throw failed.err
  return out
}
