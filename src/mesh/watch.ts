// Who watches whom: a guaranteed in-degree, so that a node dropping off the network is seen
// within seconds by agents that probe it all the time, whatever the size of the cluster.
// Rendezvous hashing on the prober side (select.ts) spreads load but guarantees nothing: at
// 5,000 nodes with 32 peers an agent is some node's prober by chance only, and a node can be
// nobody's. Here the TARGET side decides: every node t picks its k watchers, and since the
// rule is a pure function of the node list, every agent computes which targets picked it.
//
// The rule, on rings ordered by a hash of the node name (hash.ts; the same order everywhere):
//   1. zone part: the next q = ⌈k/2⌉ nodes after t on the ring of t's own zone (fewer when the
//      zone is smaller), so a node's failure is seen from inside its zone;
//   2. global part: of the next min(k, n−1) nodes after t on the ring of all nodes, those not
//      taken by 1, nodes of other zones first (in ring order), until t has min(k, n−1) watchers.
// Guarantees (property-tested in watch.test.ts over random clusters of 1..5,000 nodes):
//   - in-degree: exactly min(k, n−1) distinct watchers per node, never itself. Part 2 always
//     finds enough: its window holds min(k, n−1) nodes, at most |part 1| of them taken.
//   - out-degree ≤ q + k: a node is a zone-part watcher of exactly its q zone-ring predecessors
//     and a global-part watcher only of nodes among its k ring predecessors (the average is k).
//     That is what lets watchedBy() check at most q + k candidates, and what the core set must
//     hold: peers.limit ≥ 1 + q + k (13 at k = 8) keeps the guarantee (select.ts puts watched
//     nodes right after the same-node agent).
//   - churn: a node joining or leaving moves only the assignments of its own watchers and of
//     the O(k) nodes just before it on the rings (consistent hashing), never a global reshuffle.
//   - zones: ⌈k/2⌉ watchers in t's own zone when it has that many other nodes; watchers from
//     other zones whenever the next k nodes on the ring include any (random order spreads them
//     in proportion to the zones' sizes).

import { nameHash } from './hash.ts';

export interface RingNode {
  readonly node: string;
  readonly zone: string;
}

export interface WatchRing {
  readonly k: number;
  /** Every node once, in ring order. */
  readonly order: readonly string[];
  readonly at: ReadonlyMap<
    string,
    { readonly i: number; readonly zone: string; readonly zi: number }
  >;
  /** Each zone's nodes in ring order. */
  readonly zones: ReadonlyMap<string, readonly string[]>;
}

/** The watchers' ring over these nodes (any order, duplicates allowed: agents share a node). */
export function buildRing(nodes: readonly RingNode[], k: number): WatchRing {
  const zoneOf = new Map<string, string>();
  // A node listed with two zones (its agents disagree mid-relabel) takes the smaller name, so
  // every process still builds the same ring.
  for (const n of nodes) {
    const had = zoneOf.get(n.node);
    if (had === undefined || n.zone < had) zoneOf.set(n.node, n.zone);
  }
  const keyed = [...zoneOf.keys()].map((node) => ({ node, h: nameHash(node) }));
  keyed.sort((a, b) => a.h - b.h || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  const order = keyed.map((x) => x.node);
  const zones = new Map<string, string[]>();
  const at = new Map<string, { i: number; zone: string; zi: number }>();
  order.forEach((node, i) => {
    const zone = zoneOf.get(node)!;
    let list = zones.get(zone);
    if (list === undefined) zones.set(zone, (list = []));
    at.set(node, { i, zone, zi: list.length });
    list.push(node);
  });
  return { k: Math.max(0, Math.floor(k)), order, at, zones };
}

/** t's watchers, zone part first; empty for a node not on the ring. */
export function watchersOf(ring: WatchRing, t: string): string[] {
  const me = ring.at.get(t);
  if (me === undefined || ring.k === 0) return [];
  const n = ring.order.length;
  const want = Math.min(ring.k, n - 1);
  const zoneRing = ring.zones.get(me.zone)!;
  const q = Math.min(Math.ceil(ring.k / 2), zoneRing.length - 1, want);
  const picked: string[] = [];
  for (let j = 1; j <= q; j++) picked.push(zoneRing[(me.zi + j) % zoneRing.length]!);
  const taken = new Set(picked);
  const cross: string[] = [];
  const same: string[] = [];
  for (let j = 1; j <= want; j++) {
    const w = ring.order[(me.i + j) % n]!;
    if (taken.has(w)) continue;
    (ring.at.get(w)!.zone === me.zone ? same : cross).push(w);
  }
  for (const w of [...cross, ...same]) {
    if (picked.length >= want) break;
    picked.push(w);
  }
  return picked;
}

/** The nodes that picked a as a watcher: checks only the q + k nodes before a on the rings. */
export function watchedBy(ring: WatchRing, a: string): string[] {
  const me = ring.at.get(a);
  if (me === undefined || ring.k === 0) return [];
  const n = ring.order.length;
  const zoneRing = ring.zones.get(me.zone)!;
  const candidates = new Set<string>();
  const q = Math.ceil(ring.k / 2);
  for (let j = 1; j <= Math.min(q, zoneRing.length - 1); j++)
    candidates.add(zoneRing[(me.zi - j + zoneRing.length * (q + 1)) % zoneRing.length]!);
  for (let j = 1; j <= Math.min(ring.k, n - 1); j++)
    candidates.add(ring.order[(me.i - j + n * (ring.k + 1)) % n]!);
  return [...candidates].filter((t) => watchersOf(ring, t).includes(a)).sort();
}
