// Which peers this agent probes: a pure, deterministic function of who it is and who is out
// there. Bounded by a limit so one agent's work stays flat as the cluster grows; rendezvous
// (highest-random-weight) hashing on node names keeps the choice stable under churn: a peer
// joining or leaving changes at most the one slot it wins or frees.

import { createHash } from 'node:crypto';
import type { Peer, Self } from '../core/types.ts';

export function rendezvousScore(selfNode: string, peer: Pick<Peer, 'id'>): bigint {
  return createHash('sha256')
    .update(selfNode)
    .update('\0')
    .update(peer.id)
    .digest()
    .readBigUInt64BE(0);
}

/**
 * Picks at most `limit` peers: first the other agents on this node (they separate node-local
 * from network faults), then same-zone and cross-zone peers sharing what is left half and half,
 * each ranked by rendezvous score; a side with too few candidates gives its share to the other.
 */
export function selectPeers(self: Self, candidates: readonly Peer[], limit: number): Peer[] {
  const selfId = `${self.node}/${self.network}`;
  const byScore = (a: Peer, b: Peer): number => {
    const sa = rendezvousScore(self.node, a);
    const sb = rendezvousScore(self.node, b);
    return sa === sb ? a.id.localeCompare(b.id) : sa > sb ? -1 : 1;
  };
  const unique = new Map<string, Peer>();
  for (const p of candidates) if (p.id !== selfId) unique.set(p.id, p);
  const all = [...unique.values()];
  const sameNode = all.filter((p) => p.node === self.node).sort(byScore);
  const sameZone = all.filter((p) => p.node !== self.node && p.zone === self.zone).sort(byScore);
  const crossZone = all.filter((p) => p.node !== self.node && p.zone !== self.zone).sort(byScore);

  const picked = sameNode.slice(0, limit);
  let budget = limit - picked.length;
  const zoneShare = Math.min(
    sameZone.length,
    Math.max(Math.ceil(budget / 2), budget - crossZone.length),
  );
  picked.push(...sameZone.slice(0, zoneShare));
  budget -= zoneShare;
  picked.push(...crossZone.slice(0, budget));
  return picked;
}
