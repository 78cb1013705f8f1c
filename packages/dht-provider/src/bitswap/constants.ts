/** Protocol id and default limits of swarmpack's Bitswap 1.2.0 implementation. */

export const BITSWAP_PROTOCOL = '/ipfs/bitswap/1.2.0'

/** We never send a message larger than this: outgoing content is split to fit. */
export const MAX_MESSAGE_SIZE = 2 * 1024 * 1024

/**
 * Incoming messages larger than this reset the stream. Kubo (boxo) and Helia 7 batch up to 4 MiB
 * per message when they send several blocks at once, so refusing above 2 MiB would break fetching
 * from them; 4 MiB is the network's MessageSizeMax. Set `maxIncomingMessageSize` to tighten it.
 */
export const DEFAULT_MAX_INCOMING_MESSAGE_SIZE = 4 * 1024 * 1024

/** Wantlist entries a peer may hold with us at once; further wants are ignored. */
export const DEFAULT_MAX_WANTLIST_SIZE = 1024

/** Block bytes we load and hand to one peer's stream before waiting for it to drain. */
export const DEFAULT_MAX_BYTES_IN_FLIGHT_PER_PEER = 4 * 1024 * 1024

/** Peers served at the same time; the rest wait their turn (round robin). */
export const DEFAULT_MAX_CONCURRENT_SENDS = 8

/** A want-have for a block at most this large is answered with the block itself (as boxo and Helia do). */
export const DEFAULT_MAX_SIZE_REPLACE_HAVE_WITH_BLOCK = 1024

/** Wants a session keeps in flight at once (getMany pulls more CIDs as these complete). */
export const DEFAULT_SESSION_MAX_WANTS_IN_FLIGHT = 1024

/**
 * Bytes a session asks one peer for at once (want-blocks of the average block size seen). Enough
 * that the peer always has the next message to prepare while the last one is on the wire.
 */
export const DEFAULT_SESSION_BYTES_IN_FLIGHT_PER_PEER = 8 * 1024 * 1024

/** Bounds of that adaptive per-peer window; the top stays well under peers' wantlist limits (1024). */
export const MIN_ADAPTIVE_WANTS_PER_PEER = 8
export const MAX_ADAPTIVE_WANTS_PER_PEER = 512

/** A peer that delivers nothing for this long while holding our wants is slow: ask another. */
export const DEFAULT_WANT_TIMEOUT_MS = 4000

/**
 * A session whose pending wants get no verified block for this long fails them (ERR_NOT_FOUND).
 * Longer than the provider lookup (20 s) so a lookup can finish and its peers answer first; well
 * under a minute, so nothing appears to hang. Each block re-arms it: slow but progressing is fine.
 */
export const DEFAULT_SESSION_STALL_TIMEOUT_MS = 30_000

/** An idle outgoing stream is closed after this long (Helia drops idle inbound streams after 10 s). */
export const OUTBOUND_STREAM_IDLE_MS = 5000

/** A message our peer's stream does not take within this long fails (and the stream is replaced once). */
export const SEND_TIMEOUT_MS = 30_000

/** How long a cancelled want still excuses a block arriving late. */
export const RECENT_WANT_WINDOW_MS = 30_000

/** Blocks matching nothing we asked a peer for, tolerated before the peer is banned. */
export const DEFAULT_MAX_UNSOLICITED_BLOCKS = 16

/** Oversized or malformed messages (each resets its stream) tolerated before a peer is banned. */
export const DEFAULT_MAX_PROTOCOL_VIOLATIONS = 8

/** Inbound bitswap streams per connection: Helia opens a stream per message, as Helia allows. */
export const MAX_INBOUND_STREAMS_PER_CONNECTION = 1024

/** Outbound bitswap streams per connection (we keep one per peer, plus one being replaced). */
export const MAX_OUTBOUND_STREAMS_PER_CONNECTION = 32

/**
 * What an inbound stream may buffer while paused. Pausing stops yamux window updates, but data
 * already granted still arrives, and yamux grows a stream's window up to 16 MiB: a smaller buffer
 * would make libp2p abort a healthy stream we merely paused.
 */
export const PAUSED_READ_BUFFER_LIMIT = 32 * 1024 * 1024

/** Decoded messages from one peer waiting to be handled before we pause reading its streams. */
export const MAX_QUEUED_MESSAGES_PER_PEER = 8

/**
 * When a session can choose between several peers, each peer's want-block window follows how long
 * its blocks take: it grows by one for every block back within this long and shrinks by one for
 * every block that took longer. A peer serving many others (a lone seed) then holds few of our
 * wants, and they go to peers with a free uplink instead of queueing behind everyone else's. Not
 * tighter: on a loaded machine a round trip alone can take a second.
 */
export const SESSION_TARGET_BLOCK_LATENCY_MS = 2000

/** Window of a peer newly added to a session with several peers, and its floor. */
export const SESSION_INITIAL_PEER_WINDOW = 16
export const SESSION_MIN_PEER_WINDOW = 4

/**
 * Peers a session asks at once whether they hold a block (want-have). The next ones are asked
 * only when all of these said DontHave (and no want-block is out), so a block nobody holds is
 * still asked of everyone; but in a swarm of twenty, each block costs eight want-haves,
 * presences and cancels instead of twenty. (Four asked too few: more want-blocks went astray and
 * the swarm's CPU per MB rose.)
 */
export const SESSION_WANT_HAVE_FANOUT = 8

/**
 * A session that knows this many peers looks no providers up: not at its start when that many
 * were given, nor in the lookups repeated during a fetch (rediscovery.ts). A provider lookup
 * costs every peer of a small swarm DHT work (a stream per query, peer records merged into the
 * peer store): in a 20-peer swarm told every peer up front, those lookups took a third of the
 * peers' CPU in the first seconds of a fetch, while nothing moved.
 */
export const SESSION_ENOUGH_PEERS = 16
