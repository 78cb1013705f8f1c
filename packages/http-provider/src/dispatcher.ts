/**
 * The undici dispatcher every request goes through: keep-alive connection pools per origin,
 * optional HTTP(S) proxies, TLS verification, and a bounded number of redirects. Redirects are
 * followed for reachability only (object stores and CDNs redirect); integrity comes from the CID.
 */
import { Agent, EnvHttpProxyAgent, interceptors, type Dispatcher } from 'undici'

export interface ProxyConfig {
  /** Proxy for http:// mirrors, e.g. `http://proxy.local:3128` (credentials in the URL are used). */
  http?: string
  /** Proxy for https:// mirrors (CONNECT tunnel); defaults to `http`. */
  https?: string
  /** Comma-separated hosts that bypass the proxy, as in NO_PROXY (`localhost,.internal,10.0.0.1:8080`). */
  noProxy?: string
}

export interface TlsOptions {
  /** Verify server certificates (default true). Turning this off is for tests only. */
  rejectUnauthorized?: boolean
  /** Extra CA certificates (PEM) to trust, e.g. an organisation's private CA. */
  ca?: string | Buffer | Array<string | Buffer>
}

export interface DispatcherOptions {
  /**
   * `undefined` (default): use HTTP_PROXY / HTTPS_PROXY / NO_PROXY from the environment when set.
   * An object: use exactly these proxies. `false`: never use a proxy.
   */
  proxy?: ProxyConfig | false
  tls?: TlsOptions
  /** Connections kept per origin (default 16). */
  connections?: number
  /** How long an idle connection stays open for reuse, ms (default 30 s). */
  keepAliveTimeoutMs?: number
  /** Time to establish a TCP/TLS connection, ms (default 10 s). */
  connectTimeoutMs?: number
  /** Redirects followed per request (default 3; 0 disables). */
  maxRedirections?: number
}

const PROXY_ENV = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy']

export function envHasProxy (env: NodeJS.ProcessEnv = process.env): boolean {
  return PROXY_ENV.some(k => (env[k] ?? '') !== '')
}

export function createDispatcher (opts: DispatcherOptions = {}): Dispatcher {
  const tls = {
    rejectUnauthorized: opts.tls?.rejectUnauthorized ?? true,
    ...(opts.tls?.ca !== undefined ? { ca: opts.tls.ca } : {}),
    timeout: opts.connectTimeoutMs ?? 10_000
  }
  const agentOptions = {
    connections: opts.connections ?? 16,
    keepAliveTimeout: opts.keepAliveTimeoutMs ?? 30_000,
    keepAliveMaxTimeout: Math.max(opts.keepAliveTimeoutMs ?? 30_000, 60_000),
    pipelining: 1,
    connect: tls
  }
  let base: Dispatcher
  if (opts.proxy === false) {
    base = new Agent(agentOptions)
  } else if (opts.proxy !== undefined) {
    const httpProxy = opts.proxy.http ?? opts.proxy.https
    const httpsProxy = opts.proxy.https ?? opts.proxy.http
    // EnvHttpProxyAgent applies NO_PROXY matching; explicit values take precedence over the environment.
    base = new EnvHttpProxyAgent({ ...agentOptions, httpProxy, httpsProxy, noProxy: opts.proxy.noProxy ?? '', requestTls: tls })
  } else if (envHasProxy()) {
    base = new EnvHttpProxyAgent({ ...agentOptions, requestTls: tls })
  } else {
    base = new Agent(agentOptions)
  }
  const maxRedirections = opts.maxRedirections ?? 3
  return maxRedirections > 0 ? base.compose(interceptors.redirect({ maxRedirections })) : base
}
