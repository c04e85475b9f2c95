// Which peers this agent probes all the time (its core set, the one with per-pair series): a
// pure, deterministic function of who it is and who is out there. Bounded by a limit so one
// agent's work stays flat as the cluster grows; rendezvous (highest-random-weight) hashing on
// node names keeps the choice stable under churn: a peer joining or leaving changes at most the
// one slot it wins or frees.
//
// Invariants (src/mesh/select.test.ts): at most `limit` peers, never itself, no duplicates, as
// many as the limit allows; the same result for any order of the candidates; the other agents on
// this node first, then the watched nodes' agents (watch.ts: the nodes whose watcher this node
// is, so that every node has a guaranteed in-degree), then same-zone and cross-zone peers sharing
// what is left half and half; a departing peer changes only the slot it held. Without watched
// nodes this is the selection podmesh always made (only the hash under the scores changed).
//
// Cost: each candidate is hashed once (hash.ts; not inside a comparator), the top of each group
// is found by quickselect, and only the picked peers are sorted: O(n + limit·log limit) per
// peer-list change. A whole change at 5,000 nodes (10,000 candidates; planPeers: this, the
// watcher ring and the rotation) costs ~10 ms of CPU where the sort with SHA-256 in its
// comparator took ~370-480 ms (`npm run bench -- --only=selection`, docs/scale.md). No
// incremental variant: at that cost, keeping per-peer state between changes is not worth it.

import type { Peer, Self } from '../core/types.ts';
import { nameHash, pairScore } from './hash.ts';

/** The rendezvous score of a peer for an agent on selfNode (higher wins). */
export function rendezvousScore(selfNode: string, peer: Pick<Peer, 'id'>): number {
  return pairScore(nameHash(selfNode), nameHash(peer.id));
}

interface Scored<P> {
  readonly peer: P;
  readonly score: number;
}

/** Better first: the higher score, ties by id (ids are unique, so this is a total order). */
function better<P extends { readonly id: string }>(a: Scored<P>, b: Scored<P>): number {
  if (a.score !== b.score) return a.score > b.score ? -1 : 1;
  return a.peer.id < b.peer.id ? -1 : a.peer.id > b.peer.id ? 1 : 0;
}

/**
 * The best k of items in order, by `cmp` (negative: first is better). Quickselect moves the k
 * best to the front in expected linear time, then only those k are sorted. Reorders `items`.
 */
export function topK<T>(items: T[], k: number, cmp: (a: T, b: T) => number): T[] {
  if (k <= 0) return [];
  if (k < items.length) {
    let lo = 0;
    let hi = items.length - 1;
    while (lo < hi) {
      // Median of three: scores are hashes, but a sorted input should not be quadratic either.
      const mid = (lo + hi) >>> 1;
      const [a, b, c] = [items[lo]!, items[mid]!, items[hi]!];
      const pivot =
        cmp(a, b) < 0
          ? cmp(b, c) < 0
            ? b
            : cmp(a, c) < 0
              ? c
              : a
          : cmp(a, c) < 0
            ? a
            : cmp(b, c) < 0
              ? c
              : b;
      let i = lo;
      let j = hi;
      while (i <= j) {
        while (cmp(items[i]!, pivot) < 0) i++;
        while (cmp(items[j]!, pivot) > 0) j--;
        if (i <= j) {
          const t = items[i]!;
          items[i] = items[j]!;
          items[j] = t;
          i++;
          j--;
        }
      }
      if (k - 1 <= j) hi = j;
      else if (k - 1 >= i) lo = i;
      else break;
    }
  }
  return items.slice(0, k).sort(cmp);
}

/**
 * Picks at most `limit` peers: first the other agents on this node (they separate node-local
 * from network faults), then one agent of each watched node (the one on this agent's network
 * when it has one), then same-zone and cross-zone peers sharing what is left half and half,
 * each ranked by rendezvous score; a side with too few candidates gives its share to the other.
 */
export function selectPeers<P extends Peer>(
  self: Self,
  candidates: readonly P[],
  limit: number,
  watched: ReadonlySet<string> = new Set(),
): P[] {
  const selfId = `${self.node}/${self.network}`;
  const selfHash = nameHash(self.node);
  const unique = new Map<string, P>();
  for (const p of candidates) if (p.id !== selfId) unique.set(p.id, p);
  const sameNode: Scored<P>[] = [];
  const sameZone: Scored<P>[] = [];
  const crossZone: Scored<P>[] = [];
  // A watched node's agent: the one on this agent's network, else the other one.
  const watchPick = new Map<string, Scored<P>>();
  for (const peer of unique.values()) {
    const s: Scored<P> = { peer, score: pairScore(selfHash, nameHash(peer.id)) };
    if (peer.node === self.node) sameNode.push(s);
    else if (watched.has(peer.node)) {
      const had = watchPick.get(peer.node);
      let other: Scored<P> | undefined = s;
      if (had === undefined) {
        watchPick.set(peer.node, s);
        other = undefined;
      } else if (had.peer.network !== self.network && peer.network === self.network) {
        watchPick.set(peer.node, s);
        other = had;
      }
      // The agent not picked for its watched node competes like any other peer.
      if (other !== undefined) (other.peer.zone === self.zone ? sameZone : crossZone).push(other);
    } else (peer.zone === self.zone ? sameZone : crossZone).push(s);
  }

  const picked = topK(sameNode, limit, better).map((s) => s.peer);
  picked.push(...topK([...watchPick.values()], limit - picked.length, better).map((s) => s.peer));
  let budget = limit - picked.length;
  const zoneShare = Math.min(
    sameZone.length,
    Math.max(Math.ceil(budget / 2), budget - crossZone.length),
  );
  picked.push(...topK(sameZone, zoneShare, better).map((s) => s.peer));
  budget -= zoneShare;
  picked.push(...topK(crossZone, budget, better).map((s) => s.peer));
  return picked;
}
