/**
 * The starter deployment config `swarmpack init` writes: every section with its defaults and a
 * comment saying what it does (the file is JSONC). It parses as a valid config as written.
 */
export function starterConfigText (options: { sharing?: 'off' | 'consume' | 'share' | 'mirror' } = {}): string {
  return `// swarmpack deployment config (JSON with comments). \`swarmpack doctor\` checks it.
{
  "version": 1,

  // Wanted modules: name -> semver range (or { "range": "^1", "variant": "musl" }).
  // \`swarmpack install name@range\` and \`swarmpack uninstall name\` edit this section.
  "modules": {},

  // Indexers this node follows; their keys are configured out of band.
  // \`swarmpack follow <mirror url>\` adds one (id, keys, where its signed head is published).
  //   { "id": "main", "keys": ["12D3KooW..."], "heads": { "dht": true, "mirrors": ["https://mirror.example/"] } }
  "indexers": [],

  "trust": {
    // Whose releases are trusted: key ids of publisher roots, per name pattern.
    //   { "pattern": "*", "roots": ["12D3KooW..."] }
    "publishers": [],
    // How many followed indexers must list a release.
    "indexerThreshold": 1,
    // Independent attesters and how many attestations a release needs:
    //   "attesters": [{ "id": "ci", "keys": ["12D3KooW..."] }],
    //   "attestations": [{ "pattern": "*", "threshold": 1 }]
    "attesters": [],
    "attestations": []
  },

  "sources": {
    // Peers to join the swarm through (multiaddrs with /p2p/<peer id>).
    "bootstrap": [],
    // HTTP mirrors (static swarmpack mirrors or IPFS trustless gateways), tried after peers.
    //   { "url": "https://mirror.example/", "kind": "mirror", "priority": 0 }
    "mirrors": [],
    // Local mirror directories (relative paths are relative to this file).
    "directories": [],
    // peers-first (mirrors hedged in after a short wait), race, peers-only or mirrors-only.
    "policy": "peers-first"
  },

  // off: no peer; consume: download only; share: serve what is held; mirror: replicate every listed package.
  "sharing": "${options.sharing ?? 'share'}",

  "network": {
    // "listen": ["/ip4/0.0.0.0/tcp/4001"],
    // Addresses announced instead of the listen ones (port forwarding).
    "announce": [],
    // internet drops private addresses from the DHT; lan keeps them and finds peers on the link
    // by mDNS (no bootstrap list needed); loopback for one machine.
    "mode": "internet",
    // mDNS discovery of peers on the local link: unset = on in lan mode only; true, false,
    // or { "intervalMs": 10000 } (how often to ask).
    // "mdns": true,
    // Circuit relay v2. client: behind a NAT, take a reservation on a relay among the connected
    // peers and announce the relayed address. server: act as a relay for others (a public node);
    // { "maxReservations": 64, "unlimited": true } lifts the 2 min / 128 KiB limit per relayed
    // connection, so whole packages go through it (a swarm's own relay).
    "relay": { "client": false, "server": false },
    // DCUtR hole punching (relayed -> direct connections): unset = on with the relay client or server.
    // "dcutr": true,
    // AutoNAT: peers dial back our public addresses, so we learn whether we are reachable.
    "autonat": false,
    // UPnP port mapping on a home router; off by default (without a gateway it only costs queries).
    "upnp": false
  },

  // "cache": { "maxSize": 10737418240 },   // bytes; unpinned blocks are evicted least recently used first
  "generations": { "keep": 5 },
  "hooks": { "timeoutMs": 30000 }
}
`
}
