// One peer-list change, planned: the watcher ring (watch.ts) says which nodes this agent must
// watch, the budget (rotation.ts) how many core peers and rotating lanes it can afford, selection
// (select.ts) fills the core set, and the rotation schedule covers everyone else. The agent calls
// this on every change and the bench (`--only=selection`) times it, so both run the same code.

import type { Peer, Self } from '../core/types.ts';
import { planRotation, rotationBudget, type RotationBudget, type Rotation } from './rotation.ts';
import { selectPeers } from './select.ts';
import { buildRing, watchedBy } from './watch.ts';

export interface PeerPlanOptions {
  /** peers.limit: the probe budget, in full core peers. */
  readonly limit: number;
  /** peers.core: the core set's size once the candidates no longer fit in the limit. */
  readonly core: number;
  /** peers.watchers: k, the watchers every node gets. */
  readonly watchers: number;
  /** Jobs a core peer costs (every kind × size) and a rotating visit costs (a kind's small size). */
  readonly jobsPerPeer: number;
  readonly jobsPerVisit: number;
}

export interface PeerPlan<P extends Peer> {
  readonly core: P[];
  /** The nodes this agent watches (each must appear in the core set while the budget allows). */
  readonly watched: readonly string[];
  readonly budget: RotationBudget;
  readonly rotation: Rotation<P>;
}

export function planPeers<P extends Peer>(
  self: Self,
  all: readonly P[],
  o: PeerPlanOptions,
): PeerPlan<P> {
  const selfId = `${self.node}/${self.network}`;
  const others = new Set<string>();
  for (const p of all) if (p.id !== selfId) others.add(p.id);
  const budget = rotationBudget({
    candidates: others.size,
    limit: o.limit,
    core: o.core,
    jobsPerPeer: o.jobsPerPeer,
    jobsPerVisit: o.jobsPerVisit,
  });
  // This node is on the ring even before discovery lists its own agent (once it does, the
  // ring takes the node's zone from the list, like every other process).
  const listed = all.some((p) => p.node === self.node);
  const ring = buildRing(listed ? all : [...all, self], o.watchers);
  const watched = watchedBy(ring, self.node);
  const core = selectPeers(self, all, budget.core, new Set(watched));
  const rotation = planRotation(self, all, new Set(core.map((p) => p.id)), budget.lanes);
  return { core, watched, budget, rotation };
}
