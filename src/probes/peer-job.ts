// The peer family's job: one (peer, probe kind, size) run on its own loop, keyed by pairKey().
// Its result is the ProbeResult every probe kind resolves to (src/core/types.ts). Plain data, so
// it crosses to the engine's worker thread.

import type { Peer, ProbeKind, ProbeTarget } from '../core/types.ts';

export interface PeerJob {
  /** pairKey(target.peer.id, kind, target.size); a rotating lane's own key (laneKey). */
  readonly key: string;
  readonly kind: ProbeKind;
  /** For a lane, its first peer: each run probes the peer the lane's schedule names then. */
  readonly target: ProbeTarget;
  /** A rotating lane (src/mesh/rotation.ts): one job walking these peers, one a slot. */
  readonly lane?: RotatingLane;
}

export interface RotatingLane {
  readonly peers: readonly Peer[];
  readonly slotMs: number;
}
