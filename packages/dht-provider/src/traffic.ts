/**
 * Counts the bytes a libp2p node sends and receives on its TCP sockets, everything included
 * (noise, yamux, identify, ping, DHT, bitswap). It plugs in as libp2p's `metrics` component,
 * which is handed every new multiaddr connection; all other metric calls are no-ops. Used to
 * measure idle DHT upkeep traffic and for the diagnostics report.
 */
import type { Metrics, MultiaddrConnection } from '@libp2p/interface'
import type { Socket } from 'node:net'

export interface TrafficTotals {
  /** Bytes read from sockets since the node started. */
  received: number
  /** Bytes written to sockets since the node started. */
  sent: number
  /** Connections seen since start. */
  connections: number
}

export class TrafficCounter {
  private readonly open = new Set<Socket>()
  private closedReceived = 0
  private closedSent = 0
  private connections = 0

  /** Called by the metrics component for every connection, inbound or outbound. */
  track (maConn: MultiaddrConnection): void {
    // TCP connections keep their socket in a public field; other transports are not counted.
    const socket = (maConn as unknown as { socket?: Socket }).socket
    if (socket == null || typeof socket.bytesRead !== 'number') return
    this.connections++
    this.open.add(socket)
    socket.once('close', () => {
      this.open.delete(socket)
      this.closedReceived += socket.bytesRead
      this.closedSent += socket.bytesWritten
    })
  }

  totals (): TrafficTotals {
    let received = this.closedReceived
    let sent = this.closedSent
    for (const s of this.open) {
      received += s.bytesRead
      sent += s.bytesWritten
    }
    return { received, sent, connections: this.connections }
  }

  /** A libp2p `metrics` factory that feeds this counter. */
  metrics (): () => Metrics {
    return () => createCountingMetrics(this)
  }
}

/** A metric object that accepts every call and records nothing. */
function noopMetric (): unknown {
  const fn = (): unknown => proxy
  const proxy: unknown = new Proxy(fn, {
    get: (_t, prop) => prop === 'then' ? undefined : (prop === 'timer' || prop === 'startTimer') ? () => () => {} : fn,
    apply: () => undefined
  })
  return proxy
}

function createCountingMetrics (counter: TrafficCounter): Metrics {
  const metric = noopMetric()
  const register = (_name: string, options?: { calculate?: unknown }): unknown => options?.calculate != null ? undefined : metric
  return {
    trackMultiaddrConnection: (maConn: MultiaddrConnection) => { counter.track(maConn) },
    trackProtocolStream: () => {},
    registerMetric: register,
    registerMetricGroup: register,
    registerCounter: register,
    registerCounterGroup: register,
    registerHistogram: register,
    registerHistogramGroup: register,
    registerSummary: register,
    registerSummaryGroup: register,
    traceFunction: (_name: string, fn: unknown) => fn,
    createTrace: () => undefined
  } as unknown as Metrics
}
