/**
 * Network namespaces for swarm tests and benchmarks: a hub namespace holding a bridge, one
 * namespace per peer joined to it by a veth pair, an optional per-peer uplink cap (tbf on the
 * peer's side of its veth), and NAT routers (a namespace with an nftables masquerade rule between
 * the bridge and a private link). Addresses exist only inside the namespaces made here
 * (10.77.0.0/16 on the bridge, 10.78.<n>.0/24 behind router n); the root namespace is never touched
 * beyond creating and deleting these namespaces.
 *
 * IPv6 (opt-in: `ipv6: true | 'only'` on a bridge peer; `addShieldedPeerV6` behind a router with
 * a stateful firewall, NAT66, or a miniupnpd gateway) uses the documentation prefix 3fff::/20
 * (RFC 9637): libp2p treats it as public (it is on none of `@libp2p/utils`' private lists, unlike
 * 10/8 or 2001:db8::/32), so AutoNAT, DCUtR and UPnP act on it, while it is reserved for
 * documentation and never routed on the internet. 3fff:77::/64 is the bridge, 3fff:78:<n>::/64
 * the routed link behind router n, fd78:<n>::/64 a NAT66 router's inner link.
 *
 * Every name starts with a prefix ("spk" by default); `cleanupStale(prefix)` removes what an
 * earlier, killed run left. `remove()` is idempotent and also runs at process exit.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const NETNS_PREFIX = 'spk'
export const BRIDGE_SUBNET = '10.77'
/** The bridge's IPv6 /64 (in the documentation prefix 3fff::/20, RFC 9637). */
export const BRIDGE_SUBNET6 = '3fff:77'
/** Behind router n: `${ROUTED_SUBNET6}:<n>::/64` (firewalled, routed) or a ULA fd78:<n>::/64 (NAT66). */
export const ROUTED_SUBNET6 = '3fff:78'

function findIp (): string | undefined {
  for (const p of ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip']) if (existsSync(p)) return p
  return undefined
}
const IP = findIp()

function sh (cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}
function ip (...args: string[]): string {
  return sh(IP!, args)
}
function inNs (ns: string, cmd: string, ...args: string[]): string {
  return ip('netns', 'exec', ns, cmd, ...args)
}
function tryRun (cmd: string, args: string[]): void {
  spawnSync(cmd, args, { stdio: 'ignore' })
}

/**
 * Why namespaces can't be used here, or undefined when they can: needs root, `ip`, and a
 * successful probe (creating and deleting one namespace).
 */
export function netnsUnavailable (): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux'
  if (process.getuid?.() !== 0) return 'network namespaces need root (run as root, as CI does)'
  if (IP === undefined) return 'the `ip` command (iproute2) is not installed'
  const probe = `${NETNS_PREFIX}${process.pid.toString(36)}xprobe`
  try {
    ip('netns', 'add', probe)
    inNs(probe, IP, 'link', 'add', 'pa', 'type', 'veth', 'peer', 'name', 'pb')
  } catch (err) {
    tryRun(IP, ['netns', 'del', probe])
    return `cannot create a network namespace with a veth pair: ${(err as { stderr?: string }).stderr?.trim() ?? (err as Error).message}`
  }
  const noTbf = tbfUnavailable(probe, 'pa')
  tryRun(IP, ['netns', 'del', probe])
  return noTbf === undefined ? undefined : `tbf shaping is unavailable: ${noTbf}`
}

/** Why tbf shaping is unavailable (the qdisc kind missing), or undefined. Run inside a namespace. */
function tbfUnavailable (ns: string, dev: string): string | undefined {
  try {
    inNs(ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', '10mbit', 'burst', '32kbit', 'latency', '400ms')
    inNs(ns, 'tc', 'qdisc', 'del', 'dev', dev, 'root')
    return undefined
  } catch (err) {
    return (err as { stderr?: string }).stderr?.trim() ?? (err as Error).message
  }
}

/** Which binary provides nft, or undefined. */
export function nftPath (): string | undefined {
  for (const p of ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft']) if (existsSync(p)) return p
  return undefined
}

/** The miniupnpd binary (Debian: `apt-get install miniupnpd-nftables`), or undefined. */
export function miniupnpdPath (): string | undefined {
  for (const p of ['/usr/sbin/miniupnpd', '/usr/bin/miniupnpd']) if (existsSync(p)) return p
  return undefined
}

/** Whether the process that made a namespace (its pid is in the name) still runs. */
function ownerAlive (name: string, prefix: string): boolean {
  const m = name.slice(prefix.length).match(/^([0-9a-z]+)x/)
  if (m === null) return false
  const pid = parseInt(m[1], 36)
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

/**
 * Removes the namespaces of `prefix` left by runs that are gone (killed); those of a run still
 * going (another test or benchmark at the same time) are left alone.
 */
export function cleanupStale (prefix = NETNS_PREFIX): number {
  if (IP === undefined) return 0
  let names: string[] = []
  try {
    names = ip('netns', 'list').split('\n').map(l => l.trim().split(/\s+/)[0]).filter(n => n !== undefined && n.startsWith(prefix) && !ownerAlive(n, prefix))
  } catch { return 0 }
  for (const n of names) tryRun(IP, ['netns', 'del', n])
  return names.length
}

export interface NetPeer {
  /** Index on the bridge (1-based; the address is 10.77.<i / 250>.<i % 250 + 2>). */
  index: number
  /** Namespace the peer's processes run in. */
  ns: string
  /** The peer's address (on the bridge, or behind its NAT router). */
  address: string
  /** Uplink cap in Mbit/s, if any. */
  uplinkMbit?: number
  /** Set for a peer behind a NAT: the router's public address on the bridge. */
  natPublic?: string
  /** The peer's IPv6 address (3fff::/20), when it has one. */
  address6?: string
  /** Set for a peer behind an IPv6 router: the router's address on the bridge. */
  router6?: string
  /** Set for a peer behind a router: the router's namespace. */
  routerNs?: string
  /** The peer has no IPv4 address (`address` is its IPv6 one). */
  ipv6Only?: boolean
}

export interface AddPeerOptions {
  /** Cap the peer's uplink (egress of its interface) with tbf at this rate. */
  uplinkMbit?: number
  /** Cap the peer's downlink too (egress of the hub side). */
  downlinkMbit?: number
  /**
   * Also give the peer an IPv6 address on the bridge (3fff:77::/64), with routes to the IPv6
   * routers' links; `only`: that address and no IPv4 one.
   */
  ipv6?: boolean | 'only'
}

/**
 * How an IPv6 router shields the peer behind it: `firewall` routes the peer's own 3fff: address
 * and drops connections opened from outside (a stateful firewall, what home routers do for IPv6);
 * `nat66` gives the peer a ULA and masquerades it behind the router's address (nftables `ip6 nat`).
 * Either way the peer can dial out and nobody can dial in.
 */
export type ShieldKind = 'firewall' | 'nat66'

export interface ShieldOptions extends AddPeerOptions {
  /**
   * Run a UPnP IGD (miniupnpd, nftables backend) on the router's inner link: the peer may open an
   * IPv6 pinhole in the firewall (`firewall` only). Needs `miniupnpd`.
   */
  upnp?: boolean
}

/** Command prefix that runs a program inside a namespace. */
export function nsCommand (ns: string, cmd: string, args: string[]): { cmd: string, args: string[] } {
  return { cmd: IP!, args: ['netns', 'exec', ns, cmd, ...args] }
}

export class NetnsNetwork {
  readonly tag: string
  /** The random part of the tag, for interface names (15 characters at most). */
  private readonly short: string
  readonly hub: string
  readonly bridge = 'br0'
  readonly peers: NetPeer[] = []
  private readonly namespaces: string[] = []
  private next = 1
  private routers = 0
  /** Namespaces with an IPv6 address on the bridge, and the routed links behind IPv6 routers (via their bridge address). */
  private readonly v6Hosts: string[] = []
  private readonly v6Routes: Array<{ subnet: string, via: string }> = []
  private removed = false
  /** Daemons started in the namespaces (miniupnpd), stopped before the namespaces go. */
  private readonly daemons: ChildProcess[] = []
  private readonly tmpDirs: string[] = []
  private readonly onExit = (): void => { this.remove() }

  private constructor (readonly prefix: string) {
    // the pid lets cleanupStale tell a killed run's namespaces from a live one's
    this.short = randomBytes(2).toString('hex')
    this.tag = `${process.pid.toString(36)}x${this.short}`
    this.hub = `${prefix}${this.tag}hub`
  }

  /** Creates the hub namespace with its bridge. Removes stale namespaces of the prefix first. */
  static create (options: { prefix?: string } = {}): NetnsNetwork {
    const prefix = options.prefix ?? NETNS_PREFIX
    const reason = netnsUnavailable()
    if (reason !== undefined) throw new Error(reason)
    cleanupStale(prefix)
    const net = new NetnsNetwork(prefix)
    process.once('exit', net.onExit)
    try {
      net.addNs(net.hub)
      inNs(net.hub, IP!, 'link', 'add', net.bridge, 'type', 'bridge')
      inNs(net.hub, IP!, 'link', 'set', net.bridge, 'up')
      inNs(net.hub, IP!, 'link', 'set', 'lo', 'up')
    } catch (err) {
      net.remove()
      throw err
    }
    return net
  }

  private addNs (name: string): void {
    ip('netns', 'add', name)
    this.namespaces.push(name)
    inNs(name, IP!, 'link', 'set', 'lo', 'up')
  }

  private bridgeAddress (i: number): string {
    return `${BRIDGE_SUBNET}.${Math.floor(i / 250)}.${(i % 250) + 2}`
  }

  /** Joins namespace `ns` to the bridge through a veth pair; returns the hub side's name. */
  private plug (ns: string, i: number, nsDev: string, address: string | undefined, prefixLen: number): string {
    const hubDev = `h${this.short}${i}`
    const tmp = `t${this.short}${i}`
    // created in the hub namespace, one end then moved: nothing appears in the root namespace
    inNs(this.hub, IP!, 'link', 'add', hubDev, 'type', 'veth', 'peer', 'name', tmp)
    inNs(this.hub, IP!, 'link', 'set', tmp, 'netns', ns)
    inNs(ns, IP!, 'link', 'set', tmp, 'name', nsDev)
    if (address !== undefined) inNs(ns, IP!, 'addr', 'add', `${address}/${prefixLen}`, 'dev', nsDev)
    inNs(ns, IP!, 'link', 'set', nsDev, 'up')
    inNs(this.hub, IP!, 'link', 'set', hubDev, 'master', this.bridge)
    inNs(this.hub, IP!, 'link', 'set', hubDev, 'up')
    return hubDev
  }

  private shape (ns: string, dev: string, mbit: number): void {
    const why = tbfUnavailable(ns, dev)
    if (why !== undefined) throw new Error(`tbf shaping unavailable: ${why}`)
    // burst of ~4 full frames at 10 Mbit/s, latency bounds the queue (400 ms of data)
    inNs(ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', `${mbit}mbit`, 'burst', '32kbit', 'latency', '400ms')
  }

  /** Adds a peer namespace on the bridge. */
  addPeer (options: AddPeerOptions = {}): NetPeer {
    const index = this.next++
    const ns = `${this.prefix}${this.tag}p${index}`
    this.addNs(ns)
    const v4 = options.ipv6 !== 'only'
    const address = this.bridgeAddress(index)
    const hubDev = this.plug(ns, index, 'eth0', v4 ? address : undefined, 16)
    // multicast (mDNS) leaves through the bridge; there is no default route in a peer namespace
    if (v4) inNs(ns, IP!, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0')
    if (options.uplinkMbit !== undefined) this.shape(ns, 'eth0', options.uplinkMbit)
    if (options.downlinkMbit !== undefined) this.shape(this.hub, hubDev, options.downlinkMbit)
    const peer: NetPeer = { index, ns, address, uplinkMbit: options.uplinkMbit }
    if (options.ipv6 !== undefined && options.ipv6 !== false) peer.address6 = this.addBridgeAddress6(ns, 'eth0', index)
    if (!v4) { peer.address = peer.address6!; peer.ipv6Only = true }
    this.peers.push(peer)
    return peer
  }

  /**
   * A router namespace on the bridge (`wan`, with `wanAddress` if given) and a peer namespace
   * behind it, joined by a veth pair (`lan` in the router, `eth0` in the peer), both up, no
   * addresses yet. Needs `nft` (every router here runs nftables rules).
   */
  private addRouter (wanAddress: string | undefined): { nft: string, r: number, index: number, router: string, ns: string } {
    const nft = nftPath()
    if (nft === undefined) throw new Error('nft (nftables) is not installed: apt-get install nftables')
    const r = ++this.routers
    const index = this.next++
    const router = `${this.prefix}${this.tag}r${r}`
    const ns = `${this.prefix}${this.tag}n${r}`
    this.addNs(router)
    this.addNs(ns)
    this.plug(router, index, 'wan', wanAddress, 16)
    inNs(router, IP!, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', `t${this.short}n${r}`)
    inNs(router, IP!, 'link', 'set', `t${this.short}n${r}`, 'netns', ns)
    inNs(ns, IP!, 'link', 'set', `t${this.short}n${r}`, 'name', 'eth0')
    inNs(router, IP!, 'link', 'set', 'lan', 'up')
    inNs(ns, IP!, 'link', 'set', 'eth0', 'up')
    return { nft, r, index, router, ns }
  }

  /**
   * Adds a peer behind a NAT: a router namespace on the bridge (public address) with a private
   * link to the peer's namespace, forwarding and an nftables masquerade rule for traffic leaving
   * through the public side. Inbound connections to the private address are impossible from the
   * bridge (no route, no port forward). Needs `nft`.
   */
  addNattedPeer (options: AddPeerOptions = {}): NetPeer {
    const publicAddress = this.bridgeAddress(this.next)
    const { nft, r, index, router, ns } = this.addRouter(publicAddress)
    const lanRouter = `10.78.${r}.1`
    const address = `10.78.${r}.2`
    inNs(router, IP!, 'addr', 'add', `${lanRouter}/24`, 'dev', 'lan')
    inNs(ns, IP!, 'addr', 'add', `${address}/24`, 'dev', 'eth0')
    inNs(ns, IP!, 'route', 'add', 'default', 'via', lanRouter)
    inNs(router, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1')
    inNs(router, nft, 'add', 'table', 'ip', 'nat')
    inNs(router, nft, 'add chain ip nat post { type nat hook postrouting priority 100 ; }')
    inNs(router, nft, 'add', 'rule', 'ip', 'nat', 'post', 'oifname', 'wan', 'masquerade')
    if (options.uplinkMbit !== undefined) this.shape(ns, 'eth0', options.uplinkMbit)
    const peer: NetPeer = { index, ns, address, uplinkMbit: options.uplinkMbit, natPublic: publicAddress }
    this.peers.push(peer)
    return peer
  }

  /**
   * Gives `ns` the bridge address 3fff:77::<i+2>/64 on `dev` and routes to the IPv6 routers' links.
   * `nodad`: duplicate address detection would leave the address unusable for a second or two.
   */
  private addBridgeAddress6 (ns: string, dev: string, i: number): string {
    const address = `${BRIDGE_SUBNET6}::${(i + 2).toString(16)}`
    inNs(ns, IP!, '-6', 'addr', 'add', `${address}/64`, 'dev', dev, 'nodad')
    for (const r of this.v6Routes) inNs(ns, IP!, '-6', 'route', 'add', r.subnet, 'via', r.via)
    this.v6Hosts.push(ns)
    return address
  }

  /**
   * Adds a peer behind an IPv6 router (see ShieldKind): a router namespace on the bridge
   * (3fff:77::/64) with a link to the peer's namespace, forwarding on, and nftables rules: for
   * `firewall`, forwarded connections opened from the bridge side are dropped (replies pass); for
   * `nat66`, a masquerade rule for traffic leaving through the bridge side. The peer has IPv6 only.
   * Needs `nft`.
   */
  addShieldedPeerV6 (shield: ShieldKind, options: ShieldOptions = {}): NetPeer {
    const upnpd = options.upnp === true ? miniupnpdPath() : undefined
    if (options.upnp === true && (upnpd === undefined || shield !== 'firewall')) {
      throw new Error(upnpd === undefined ? 'miniupnpd is not installed: apt-get install miniupnpd-nftables' : 'UPnP pinholes need the firewall shield')
    }
    const { nft, r, index, router, ns } = this.addRouter(undefined)
    const router6 = this.addBridgeAddress6(router, 'wan', index)
    const subnet = shield === 'firewall' ? `${ROUTED_SUBNET6}:${r.toString(16)}::` : `fd78:${r.toString(16)}::`
    const lanRouter = `${subnet}1`
    const address6 = `${subnet}2`
    inNs(router, IP!, '-6', 'addr', 'add', `${lanRouter}/64`, 'dev', 'lan', 'nodad')
    inNs(ns, IP!, '-6', 'addr', 'add', `${address6}/64`, 'dev', 'eth0', 'nodad')
    inNs(ns, IP!, '-6', 'route', 'add', 'default', 'via', lanRouter)
    inNs(router, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.forwarding=1')
    if (shield === 'firewall') {
      // upnp: miniupnpd's table and chain names (inet filter, forwardUPnP), the firewall consulting
      // its pinholes before dropping
      const [family, table, chain] = upnpd !== undefined ? ['inet', 'filter', 'forward'] : ['ip6', 'shield', 'inbound']
      inNs(router, nft, 'add', 'table', family, table)
      inNs(router, nft, `add chain ${family} ${table} ${chain} { type filter hook forward priority 0 ; policy accept ; }`)
      // replies to what the peer opened pass; anything new from the bridge side is dropped silently
      inNs(router, nft, 'add', 'rule', family, table, chain, 'iifname', 'wan', 'ct', 'state', 'established,related', 'accept')
      if (upnpd !== undefined) {
        inNs(router, nft, 'add', 'chain', family, table, 'forwardUPnP')
        inNs(router, nft, 'add', 'rule', family, table, chain, 'iifname', 'wan', 'jump', 'forwardUPnP')
      }
      inNs(router, nft, 'add', 'rule', family, table, chain, 'iifname', 'wan', 'drop')
      if (upnpd !== undefined) this.startMiniupnpd(upnpd, router, nft)
      // the bridge's hosts reach the routed link through this router
      const route = { subnet: `${subnet}/64`, via: router6 }
      for (const h of this.v6Hosts) if (h !== router) inNs(h, IP!, '-6', 'route', 'add', route.subnet, 'via', route.via)
      this.v6Routes.push(route)
    } else {
      inNs(router, nft, 'add', 'table', 'ip6', 'nat')
      inNs(router, nft, 'add chain ip6 nat post { type nat hook postrouting priority 100 ; }')
      inNs(router, nft, 'add', 'rule', 'ip6', 'nat', 'post', 'oifname', 'wan', 'masquerade')
    }
    if (options.uplinkMbit !== undefined) this.shape(ns, 'eth0', options.uplinkMbit)
    const peer: NetPeer = { index, ns, address: address6, address6, uplinkMbit: options.uplinkMbit, router6, routerNs: router, ipv6Only: true }
    this.peers.push(peer)
    return peer
  }

  /**
   * Starts miniupnpd in `router` (IGDv2 on the `lan` link, port 5000, pinholes through `wan`),
   * in the foreground under `timeout` (an orphan of a killed run ends by itself), and waits
   * (bounded) until it listens. Its nftables NAT chains are created too, which it expects.
   */
  private startMiniupnpd (bin: string, router: string, nft: string): void {
    inNs(router, nft, 'add chain inet filter prerouting { type nat hook prerouting priority -100 ; policy accept ; }')
    inNs(router, nft, 'add', 'chain', 'inet', 'filter', 'UPnP')
    inNs(router, nft, 'add', 'rule', 'inet', 'filter', 'prerouting', 'jump', 'UPnP')
    inNs(router, nft, 'add chain inet filter postrouting { type nat hook postrouting priority 100 ; policy accept ; }')
    inNs(router, nft, 'add', 'chain', 'inet', 'filter', 'UPnP-Postrouting')
    inNs(router, nft, 'add', 'rule', 'inet', 'filter', 'postrouting', 'jump', 'UPnP-Postrouting')
    const dir = mkdtempSync(join(tmpdir(), `${this.prefix}-upnp-`))
    this.tmpDirs.push(dir)
    const conf = join(dir, 'miniupnpd.conf')
    writeFileSync(conf, [
      'ext_ifname=wan', 'ext_ifname6=wan', 'listening_ip=lan', 'port=5000', 'enable_natpmp=no', 'enable_upnp=yes',
      // a client may open ports only to its own address
      'secure_mode=yes', `uuid=3fff0000-0000-4000-8000-${randomBytes(6).toString('hex')}`,
      'upnp_table_name=filter', 'upnp_nat_table_name=filter', 'upnp_forward_chain=forwardUPnP',
      'upnp_nat_chain=UPnP', 'upnp_nat_postrouting_chain=UPnP-Postrouting',
      'allow 1024-65535 0.0.0.0/0 1024-65535', 'deny 0-65535 0.0.0.0/0 0-65535', ''
    ].join('\n'))
    const d = spawn(IP!, ['netns', 'exec', router, 'timeout', '900', bin, '-d', '-f', conf, '-P', join(dir, 'miniupnpd.pid')], { stdio: 'ignore' })
    this.daemons.push(d)
    const deadline = Date.now() + 30_000
    while (!/:5000\b/.test(inNs(router, 'ss', '-ltnH'))) {
      if (d.exitCode !== null || Date.now() > deadline) throw new Error(`miniupnpd did not start listening in ${router} (exit code ${String(d.exitCode)})`)
      spawnSync('sleep', ['0.1']) // setup is synchronous here; a short poll of the daemon's socket
    }
  }

  /** Runs a command in a namespace (setup checks, e.g. `ip addr`). */
  exec (ns: string, cmd: string, ...args: string[]): string {
    return inNs(ns, cmd, ...args)
  }

  /** Deletes every namespace made here (their veths, bridge and rules go with them). */
  remove (): void {
    if (this.removed) return
    this.removed = true
    process.removeListener('exit', this.onExit)
    // daemons first: a process keeps a deleted namespace alive
    for (const d of this.daemons) if (d.exitCode === null) d.kill('SIGTERM')
    for (const ns of this.namespaces.reverse()) tryRun(IP!, ['netns', 'del', ns])
    for (const dir of this.tmpDirs) rmSync(dir, { recursive: true, force: true })
  }
}
