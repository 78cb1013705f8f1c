/**
 * Process-spawning helpers for integration tests and benchmarks: start swarmpack peers
 * (examples/node.ts or a fixture) as child processes, read their JSON-lines output, send them
 * commands, and build package data directories for them.
 */
import '@swarmpack/core/polyfill';
import { type ChildProcess } from 'node:child_process';
import { type CID } from '@swarmpack/core';
export declare const ROOT: string;
export declare const NODE_SCRIPT: string;
export interface NodeEvent {
    event: string;
    [key: string]: any;
}
export declare class ChildPeer {
    readonly name: string;
    readonly proc: ChildProcess;
    readonly events: NodeEvent[];
    readonly stderr: string[];
    peerId: string;
    multiaddrs: string[];
    private readonly waiters;
    private exitCode;
    readonly exited: Promise<number | null>;
    constructor(name: string, script: string, args: string[], env?: Record<string, string>);
    /** Resolves with the first event (past or future) matching; rejects after `timeout` ms. */
    waitFor(match: (e: NodeEvent) => boolean, timeout?: number, what?: string): Promise<NodeEvent>;
    /** Like waitFor, but only events from now on. */
    next(match: (e: NodeEvent) => boolean, timeout?: number, what?: string): Promise<NodeEvent>;
    ready(timeout?: number): Promise<this>;
    send(command: string): void;
    /** Sends a command and waits for the reply event (or an error naming the command). */
    command(command: string, replyEvent: string, timeout?: number): Promise<NodeEvent>;
    get running(): boolean;
    kill(signal?: NodeJS.Signals): void;
    /** SIGTERM (clean shutdown), SIGKILL if it lingers. */
    stop(timeout?: number): Promise<number | null>;
}
/** Starts examples/node.ts (JSON output) with the given flags and waits for its ready line. */
export declare function startNode(name: string, args: string[], options?: {
    script?: string;
    env?: Record<string, string>;
    timeout?: number;
}): Promise<ChildPeer>;
/** Writes a package directory of random files (deterministic per seed) totalling about `bytes`. */
export declare function writePackageDir(dir: string, bytes: number, seed?: string): Promise<void>;
/** sha256 of every file under dir, keyed by relative path. */
export declare function hashTree(dir: string): Promise<Record<string, string>>;
/**
 * Packs `contentDir` into the block store of a node data directory (`<dataDir>/store`) and pins
 * it, so examples/node.ts started on that data dir serves and announces it.
 */
export declare function seedDataDir(dataDir: string, contentDir: string, name?: string, version?: string): Promise<{
    root: CID;
    blocks: number;
    bytes: number;
}>;
/** A fresh random id for temp names. */
export declare function tag(): string;
/** Stops every peer (clean first, SIGKILL after a few seconds). */
export declare function stopAll(peers: Iterable<ChildPeer>): Promise<void>;
//# sourceMappingURL=swarm.d.ts.map