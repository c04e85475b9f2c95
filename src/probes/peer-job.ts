// The peer family's job: one (peer, probe kind, size) run on its own loop, keyed by pairKey().
// Its result is the ProbeResult every probe kind resolves to (src/core/types.ts). Plain data, so
// it crosses to the engine's worker thread.

import type { ProbeKind, ProbeTarget } from '../core/types.ts';

export interface PeerJob {
  /** pairKey(target.peer.id, kind, target.size). */
  readonly key: string;
  readonly kind: ProbeKind;
  readonly target: ProbeTarget;
}
