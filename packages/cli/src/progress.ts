/**
 * The progress view: turns the node's `onProgress` events into one bar per package (bytes, rate,
 * ETA and the mix of peers and mirrors), redrawn in place on a terminal by cli-progress, or plain
 * lines when stderr is a file or a pipe; in `--json=stream` mode the same events become NDJSON
 * (block events folded into a throttled `progress` event per package). It also adds up where the
 * bytes came from for the final summary.
 */
import cliProgress from 'cli-progress'
import { bytes, duration, percent, shortId } from './format.js'
import type { Output } from './output.js'

interface Evt { type: string, detail?: any }

type Origin = 'peers' | 'mirrors' | 'local'

interface PackageProgress {
  key: string
  total: number
  done: number
  started: number
  from: Record<Origin, number>
  bar?: cliProgress.SingleBar
  lastQuarter: number
  lastStream: number
  finished: boolean
}

export interface TransferSummary {
  packages: Array<{ name: string, version: string, bytes: { network: number, local: number, total: number }, sources: Array<{ source: string, kind: string, bytes: number }>, ms: number }>
  bytes: { peers: number, mirrors: number, local: number }
  hooks: Array<{ hook: string, name: string, version: string, ok: boolean, error?: string }>
  banned: number
  hedges: number
}

const BAR_WIDTH = 24

function originOf (detail: { local?: boolean, kind?: string }): Origin {
  if (detail.local === true) return 'local'
  return detail.kind === 'mirror' ? 'mirrors' : 'peers'
}

function mix (from: Record<Origin, number>): string {
  const all = from.peers + from.mirrors + from.local
  if (all === 0) return 'waiting for sources'
  const parts: string[] = []
  if (from.peers > 0) parts.push(`peers ${percent(from.peers, all)}`)
  if (from.mirrors > 0) parts.push(`mirrors ${percent(from.mirrors, all)}`)
  if (from.local > 0) parts.push(`local ${percent(from.local, all)}`)
  return parts.join(' ')
}

export class ProgressView {
  readonly summary: TransferSummary = { packages: [], bytes: { peers: 0, mirrors: 0, local: 0 }, hooks: [], banned: 0, hedges: 0 }
  private readonly packages = new Map<string, PackageProgress>()
  private multibar?: cliProgress.MultiBar
  private nameWidth = 12

  /** `showHooks`: print hook lines (only when a host runs the modules; the node reports the load order either way). */
  constructor (private readonly out: Output, private readonly showHooks = true) {}

  readonly onProgress = (evt: Evt): void => {
    try {
      this.handle(evt)
    } catch {
      // a display problem never fails the operation
    }
  }

  private line (text: string): void {
    if (this.multibar !== undefined) this.multibar.log(text + '\n')
    else this.out.log(text)
  }

  private keyOf (detail: any): string | undefined {
    const p = detail?.package
    if (p !== undefined && typeof p.name === 'string') return `${p.name}@${p.version}`
    // untagged fetch events: only attributable while one package downloads
    const active = [...this.packages.values()].filter(x => !x.finished)
    return active.length === 1 ? active[0].key : undefined
  }

  private handle (evt: Evt): void {
    const d = evt.detail ?? {}
    if (evt.type !== 'swarmpack:fetch:block') this.out.event(evt.type, d)
    switch (evt.type) {
      case 'swarmpack:node:follow':
        if (d.error !== undefined) this.line(`follow ${d.indexer}: ${d.error.code} ${d.error.message}`)
        else this.line(`follow ${d.indexer}: index version ${d.version}${d.changed === true ? ' (new)' : ''}${d.source !== '' && d.source !== undefined ? ` from ${d.source}` : ''}`)
        break
      case 'swarmpack:node:resolve':
        this.line(`resolved ${d.packages} package${d.packages === 1 ? '' : 's'} in ${duration(d.ms)}`)
        break
      case 'swarmpack:node:plan':
        this.plan(d)
        break
      case 'swarmpack:node:fetch-start':
        this.start(`${d.name}@${d.version}`, d.size)
        break
      case 'swarmpack:fetch:start': {
        const p = this.packages.get(this.keyOf(d) ?? '')
        if (p !== undefined && typeof d.totalBytes === 'number' && d.totalBytes > 0) {
          p.total = d.totalBytes
          p.bar?.setTotal(p.total)
        }
        break
      }
      case 'swarmpack:fetch:block':
        this.block(d)
        break
      case 'swarmpack:fetch:hedge':
        this.summary.hedges++
        break
      case 'swarmpack:fetch:ban':
        this.summary.banned++
        this.line(`banned ${d.peer ?? d.source}: ${d.reason}`)
        break
      case 'swarmpack:node:fetched':
        this.fetched(d)
        break
      case 'swarmpack:node:hook':
        this.summary.hooks.push({ hook: d.hook, name: d.name, version: d.version, ok: d.ok, ...(d.error !== undefined ? { error: d.error } : {}) })
        if (this.showHooks || d.ok !== true) this.line(d.ok === true ? `${d.hook === 'load' ? 'loaded' : 'unloaded'} ${d.name}@${d.version}${d.reason !== 'apply' ? ` (${d.reason})` : ''}` : `${d.hook} hook of ${d.name}@${d.version} failed: ${d.error}`)
        break
      case 'swarmpack:node:switch':
        this.stopBars()
        this.line(`switched to generation ${d.to ?? 'none'}${d.from !== undefined ? ` (was ${d.from})` : ''}`)
        break
      default:
        break
    }
  }

  private plan (d: any): void {
    const changes: any[] = Array.isArray(d.changes) ? d.changes : []
    const shown = changes.filter(c => c.action !== 'unchanged')
    if (shown.length === 0) {
      this.line('plan: nothing to change')
      return
    }
    this.line(`plan: ${d.add} to add, ${d.replace} to replace, ${d.remove} to remove; ${bytes(d.fetchBytes)} to download`)
    for (const c of shown) {
      const sign = c.action === 'add' ? '+' : c.action === 'remove' ? '-' : '~'
      const what = c.action === 'replace' ? `${c.name} ${c.from?.version} -> ${c.to?.version}` : `${c.name}@${(c.to ?? c.from)?.version}`
      const size = c.to !== undefined ? `  ${bytes(c.to.size)}${c.fetchBytes !== c.to.size ? ` (${bytes(c.fetchBytes)} to fetch)` : ''}` : ''
      this.line(`  ${sign} ${what}${size}`)
    }
  }

  private start (key: string, size: number): void {
    const p: PackageProgress = { key, total: Math.max(1, size), done: 0, started: Date.now(), from: { peers: 0, mirrors: 0, local: 0 }, lastQuarter: -1, lastStream: 0, finished: false }
    this.packages.set(key, p)
    this.nameWidth = Math.max(this.nameWidth, Math.min(key.length, 32))
    if (this.out.tty) {
      this.multibar ??= new cliProgress.MultiBar({
        stream: this.out.streams.stderr,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        autopadding: true,
        fps: 8,
        barCompleteChar: '\u2588',
        barIncompleteChar: '\u2591',
        format: (options, params, payload: { p: PackageProgress }) => this.barLine(options, params, payload.p)
      })
      p.bar = this.multibar.create(p.total, 0, { p })
    } else if (this.out.mode === 'human') {
      this.out.log(`fetching ${key} (${bytes(size)})`)
    }
  }

  private barLine (options: cliProgress.Options, params: cliProgress.Params, p: PackageProgress): string {
    const share = Math.min(1, params.value / Math.max(1, params.total))
    const filled = Math.round(share * BAR_WIDTH)
    const bar = (options.barCompleteChar ?? '#').repeat(filled) + (options.barIncompleteChar ?? '-').repeat(BAR_WIDTH - filled)
    const elapsed = Math.max(1, Date.now() - p.started) / 1000
    const net = p.from.peers + p.from.mirrors
    const rate = net / elapsed
    const left = Math.max(0, params.total - params.value)
    const eta = p.finished ? 'done' : rate > 0 ? `ETA ${duration(left / rate * 1000)}` : 'ETA ?'
    const name = p.key.length > this.nameWidth ? p.key.slice(0, this.nameWidth - 1) + '…' : p.key.padEnd(this.nameWidth)
    return `${name} ${bar} ${bytes(params.value).padStart(9)}/${bytes(params.total).padEnd(9)} ${(bytes(rate) + '/s').padStart(11)} ${eta.padEnd(10)} ${mix(p.from)}`
  }

  private block (d: any): void {
    const key = this.keyOf(d)
    const p = key !== undefined ? this.packages.get(key) : undefined
    if (p === undefined) return
    const n = typeof d.bytes === 'number' ? d.bytes : 0
    p.done += n
    p.from[originOf(d)] += n
    if (p.done > p.total) { p.total = p.done; p.bar?.setTotal(p.total) }
    if (p.bar !== undefined) {
      p.bar.update(p.done, { p })
    } else if (this.out.mode === 'human') {
      const quarter = Math.floor(p.done / p.total * 4)
      if (quarter > p.lastQuarter && quarter < 4) {
        p.lastQuarter = quarter
        if (quarter > 0) this.out.log(`  ${p.key} ${percent(p.done, p.total)} ${bytes(p.done)}/${bytes(p.total)} (${mix(p.from)})`)
      }
    } else if (this.out.mode === 'stream') {
      const now = Date.now()
      if (now - p.lastStream >= 200) {
        p.lastStream = now
        this.out.event('progress', { package: p.key, bytes: p.done, total: p.total, from: p.from })
      }
    }
  }

  private fetched (d: any): void {
    const key = `${d.name}@${d.version}`
    const p = this.packages.get(key)
    const sources: Array<{ source: string, kind: string, bytes: number }> = (d.sources ?? []).map((s: any) => ({ source: s.origin ?? s.source, kind: s.kind, bytes: s.bytes }))
    this.summary.packages.push({ name: d.name, version: d.version, bytes: d.bytes, sources, ms: d.ms })
    for (const s of sources) this.summary.bytes[s.kind === 'mirror' ? 'mirrors' : 'peers'] += s.bytes
    this.summary.bytes.local += d.bytes?.local ?? 0
    if (p === undefined) return
    p.finished = true
    if (p.bar !== undefined) {
      p.total = Math.max(p.done, d.bytes?.total ?? p.done)
      p.bar.setTotal(p.total)
      p.bar.update(p.total, { p })
    } else if (this.out.mode === 'human') {
      const from = sources.map(s => `${s.kind === 'mirror' ? s.source : `peer ${shortId(s.source)}`} ${bytes(s.bytes)}`).join(', ')
      this.out.log(`fetched ${key}: ${bytes(d.bytes?.network ?? 0)} over the network, ${bytes(d.bytes?.local ?? 0)} already here, in ${duration(d.ms)}${from !== '' ? ` (${from})` : ''}`)
    } else if (this.out.mode === 'stream') {
      this.out.event('progress', { package: p.key, bytes: p.done, total: p.total, from: p.from, done: true })
    }
  }

  private stopBars (): void {
    if (this.multibar === undefined) return
    this.multibar.stop()
    this.multibar = undefined
  }

  /** Ends the bars (leaving them drawn in their final state). */
  stop (): void {
    this.stopBars()
  }

  /** One line: where the bytes came from. */
  sourcesLine (): string {
    const b = this.summary.bytes
    const network = b.peers + b.mirrors
    if (network === 0 && b.local === 0) return 'nothing downloaded'
    const parts = [`${bytes(network)} downloaded`]
    if (network > 0) parts.push(`${bytes(b.peers)} from peers (${percent(b.peers, network)}), ${bytes(b.mirrors)} from mirrors (${percent(b.mirrors, network)})`)
    if (b.local > 0) parts.push(`${bytes(b.local)} already in the local store`)
    return parts.join('; ')
  }
}
