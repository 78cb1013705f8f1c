/**
 * SVG charts of a distribution run: each peer's completion time (bars) and bytes received over
 * time per peer with the seed's upload (lines). Plain SVG text, no plotting dependency.
 */
import type { DistributionResult } from '../test/netns/swarm.js'

const W = 900
const H = 300
const M = { l: 70, r: 20, t: 30, b: 40 }

function esc (s: string): string {
  return s.replace(/[<>&]/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!)
}

function axis (x0: number, y0: number, w: number, h: number, xmax: number, ymax: number, xlabel: string, ylabel: string): string {
  const parts: string[] = [`<line x1="${x0}" y1="${y0 + h}" x2="${x0 + w}" y2="${y0 + h}" stroke="#333"/>`, `<line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y0 + h}" stroke="#333"/>`]
  for (let i = 0; i <= 5; i++) {
    const xv = xmax * i / 5
    const yv = ymax * i / 5
    parts.push(`<text x="${x0 + w * i / 5}" y="${y0 + h + 15}" font-size="11" text-anchor="middle">${xv.toFixed(xv < 10 ? 1 : 0)}</text>`)
    parts.push(`<text x="${x0 - 6}" y="${y0 + h - h * i / 5 + 4}" font-size="11" text-anchor="end">${yv.toFixed(yv < 10 ? 1 : 0)}</text>`)
    parts.push(`<line x1="${x0}" y1="${y0 + h - h * i / 5}" x2="${x0 + w}" y2="${y0 + h - h * i / 5}" stroke="#eee"/>`)
  }
  parts.push(`<text x="${x0 + w / 2}" y="${y0 + h + 32}" font-size="12" text-anchor="middle">${esc(xlabel)}</text>`)
  parts.push(`<text x="14" y="${y0 + h / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${y0 + h / 2})">${esc(ylabel)}</text>`)
  return parts.join('\n')
}

export function distributionSvg (r: DistributionResult, title: string): string {
  const sec = (ms: number): number => ms / 1000
  const lb = r.packageBytes / (r.options.uplinkMbit * 1e6 / 8)
  const done = r.peers.filter(p => p.ms !== undefined)
  const tmax = Math.max(sec(r.allMs), lb) * 1.1
  const w = W - M.l - M.r
  const h = H - M.t - M.b
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${2 * H + 20}" font-family="sans-serif">`, '<rect width="100%" height="100%" fill="white"/>']
  // completion times
  out.push(`<text x="${W / 2}" y="18" font-size="14" text-anchor="middle">${esc(title)}: completion time per peer (s)</text>`)
  out.push(axis(M.l, M.t, w, h, r.peers.length, tmax, 'peer', 'seconds'))
  const bw = w / Math.max(1, r.peers.length)
  r.peers.forEach((p, i) => {
    const x = M.l + i * bw + bw * 0.15
    if (p.ms === undefined) {
      out.push(`<text x="${x + bw * 0.35}" y="${M.t + h - 4}" font-size="10" text-anchor="middle" fill="#c00">${p.killed === true ? 'killed' : 'failed'}</text>`)
    } else {
      const bh = h * sec(p.ms) / tmax
      out.push(`<rect x="${x}" y="${M.t + h - bh}" width="${bw * 0.7}" height="${bh}" fill="${p.joined === true ? '#e59400' : '#3b75af'}"><title>${esc(p.name)} ${sec(p.ms).toFixed(1)} s</title></rect>`)
    }
    out.push(`<text x="${x + bw * 0.35}" y="${M.t + h + 28}" font-size="9" text-anchor="middle">${esc(p.name)}</text>`)
  })
  const lbY = M.t + h - h * lb / tmax
  out.push(`<line x1="${M.l}" y1="${lbY}" x2="${M.l + w}" y2="${lbY}" stroke="#2a2" stroke-dasharray="6 4"/><text x="${M.l + w - 4}" y="${lbY - 4}" font-size="11" text-anchor="end" fill="#2a2">lower bound S/u ${lb.toFixed(1)} s</text>`)
  // bytes over time
  const y1 = H + 20
  const ymax = Math.max(r.packageBytes, ...Object.values(r.traffic).flatMap(s => s.map(([, rx, tx]) => Math.max(rx, tx)))) / 2 ** 20
  out.push(`<text x="${W / 2}" y="${y1 + 18}" font-size="14" text-anchor="middle">bytes received per peer (grey) and sent by the seeds (red), MiB, over time (s)</text>`)
  out.push(axis(M.l, y1 + M.t, w, h, tmax, ymax, 'seconds since the common start', 'MiB'))
  for (const [name, samples] of Object.entries(r.traffic)) {
    const seed = name.startsWith('seed')
    const pts = samples.filter(([t]) => t >= 0 && sec(t) <= tmax).map(([t, rx, tx]) => `${(M.l + w * sec(t) / tmax).toFixed(1)},${(y1 + M.t + h - h * ((seed ? tx : rx) / 2 ** 20) / ymax).toFixed(1)}`)
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${seed ? '#c00' : '#888'}" stroke-width="${seed ? 2 : 1}" points="${pts.join(' ')}"><title>${esc(name)}</title></polyline>`)
  }
  out.push(`<text x="${M.l + 6}" y="${H + 20 + M.t + 14}" font-size="11">${done.length} completed; all done ${sec(r.allMs).toFixed(1)} s; seed upload ${(r.seedSent / r.packageBytes).toFixed(2)}x the package</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
