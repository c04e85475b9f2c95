// Where peers come from. Discovery only finds targets: it never probes and never exports.
// A PeerSource pushes the full current peer list whenever it changes; the static source
// reads it from config, the Kubernetes source (later) from the API server.

import { peerId, type Peer } from '../core/types.ts';
import type { StaticPeer } from '../config/settings.ts';

export type PeersListener = (peers: readonly Peer[]) => void;

/** Health of one watched resource, for sources that talk to an API (Kubernetes). */
export interface SourceSyncStats {
  readonly resource: string;
  readonly synced: boolean;
  readonly lastSyncMs: number | undefined;
  readonly errorRestarts: number;
  readonly watchdogRestarts: number;
}

export interface PeerSource {
  /** Calls `listener` with the current peers now and again on every change. */
  start(listener: PeersListener): Promise<void>;
  stop(): Promise<void>;
  /** Per-resource sync health; static sources have none. */
  syncStats?(): readonly SourceSyncStats[];
}

export function peerFromStatic(p: StaticPeer): Peer {
  return {
    id: peerId(p.node, p.network),
    node: p.node,
    network: p.network,
    zone: p.zone,
    address: p.address,
    stampPort: p.stampPort,
    tcpPort: p.tcpPort,
    httpPort: p.httpPort,
  };
}

/** Peers from the config file; set() lets the demo and tests simulate churn. */
export class StaticPeerSource implements PeerSource {
  private listener: PeersListener | undefined;
  private peers: readonly Peer[];

  constructor(peers: readonly StaticPeer[]) {
    this.peers = peers.map(peerFromStatic);
  }

  start(listener: PeersListener): Promise<void> {
    this.listener = listener;
    listener(this.peers);
    return Promise.resolve();
  }

  set(peers: readonly Peer[]): void {
    this.peers = peers;
    this.listener?.(peers);
  }

  stop(): Promise<void> {
    this.listener = undefined;
    return Promise.resolve();
  }
}
