// `npm run bench -- --only=selection`: what peer selection costs and covers at 16 to 5,000
// nodes (2 agents a node, 3 zones), computed from the same code the agent runs (planPeers,
// src/mesh/peer-plan.ts) with peers.rotation on and the shipped defaults otherwise, next to the selection podmesh shipped before
// (kept here, in the bench only, as the reference: SHA-256 inside the sort comparator, the
// 32 best peers by rendezvous score). No network: pure CPU and set arithmetic.
//
// Per cluster size: CPU per peer-list change for one agent (median), the share of ordered node
// pairs the core sets cover (the pairs with per-pair series), the in-degree (other nodes whose
// agents hold a node in their core set; every node for ≤ 1,000 nodes, sampled nodes above),
// the coverage period (the rotation schedule's period × probes.intervalMs; the longest of the
// sampled agents) and probes per second per agent (the highest of the sampled agents).

import { createHash } from 'node:crypto';
import type { Peer, Self } from '../src/core/types.ts';
import { nameHash, pairScore } from '../src/mesh/hash.ts';
import { planPeers, type PeerPlanOptions } from '../src/mesh/peer-plan.ts';
import { buildRing, watchersOf } from '../src/mesh/watch.ts';
import { asSelf, benchCluster } from '../test/support/cluster-fixture.ts';

export const SELECTION_SIZES = [16, 50, 200, 500, 1000, 5000] as const;

/**
 * peers.rotation on, the shipped defaults otherwise: peers.limit 32, peers.core 14,
 * peers.watchers 8; 5 jobs a core peer (udp small+mtu, icmp small+mtu, tcp), 3 a rotating visit;
 * probes.intervalMs 1000.
 */
export const SELECTION_DEFAULTS = {
  plan: { limit: 32, core: 14, watchers: 8, jobsPerPeer: 5, jobsPerVisit: 3 } as PeerPlanOptions,
  intervalMs: 1000,
};

export const SELECTION_TARGETS = {
  /** CPU per peer-list change for one agent at 5,000 nodes (10,000 agent Pods). */
  changeMsAt5000: 25,
  coverageSAt5000: 600,
  coverageSAt500: 60,
  /** Other nodes holding every node in their agents' core sets (k). */
  inDegreeNodes: 8,
};

// ---- the selection as shipped before (reference) -----------------------------------------

function shaScore(selfNode: string, id: string): bigint {
  return createHash('sha256').update(selfNode).update('\0').update(id).digest().readBigUInt64BE(0);
}

/**
 * The old selectPeers, unchanged but for `score`: with `shaScore` it is the shipped code (a hash
 * per comparison), with a precomputed table it picks the same peers in a fraction of the time.
 */
function oldSelect(
  self: Self,
  candidates: readonly Peer[],
  limit: number,
  score: (id: string) => bigint,
): Peer[] {
  const selfId = `${self.node}/${self.network}`;
  const byScore = (a: Peer, b: Peer): number => {
    const sa = score(a.id);
    const sb = score(b.id);
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

function oldSelectFast(self: Self, all: readonly Peer[], limit: number): Peer[] {
  const table = new Map(all.map((p) => [p.id, shaScore(self.node, p.id)]));
  return oldSelect(self, all, limit, (id) => table.get(id)!);
}

// ---- measuring ------------------------------------------------------------------------------

function cpuMs(f: () => unknown): number {
  const c0 = process.cpuUsage();
  f();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Every k-th element, about `count` of them, always the same ones for the same input. */
function sample<T>(xs: readonly T[], count: number): T[] {
  if (xs.length <= count) return [...xs];
  const step = xs.length / count;
  return Array.from({ length: count }, (_, i) => xs[Math.floor(i * step)]!);
}

export interface SelectionRow {
  readonly nodes: number;
  readonly agents: number;
  /** CPU per peer-list change for one agent, median, new and reference. */
  readonly changeMs: number;
  readonly oldChangeMs: number;
  /** Ordered node pairs held by some core set, new and reference (sampled sources above 500). */
  readonly corePairsShare: number;
  readonly oldCorePairsShare: number;
  readonly sampledSources: number;
  /** Ordered node pairs that core sets and one period of rotation reach. */
  readonly periodPairsShare: number;
  /** The fewest other nodes holding one node in their agents' core sets, and the fewest agents. */
  readonly inDegreeNodesMin: number;
  readonly inDegreeAgentsMin: number;
  readonly inDegreeSampled: number | null;
  readonly oldInDegreeNodesMin: number | null;
  readonly coveragePeriodS: number;
  readonly lanes: number;
  readonly coreSize: number;
  readonly probesPerSecond: number;
  readonly oldProbesPerSecond: number;
}

export function measureSelection(n: number, quick: boolean): SelectionRow {
  const o = SELECTION_DEFAULTS.plan;
  const all = benchCluster(n);
  const me = asSelf(all[all.length >> 1]!);
  const runs = quick ? 3 : n >= 1000 ? 7 : 15;
  planPeers(me, all, o); // warm-up
  const changeMs = median(Array.from({ length: runs }, () => cpuMs(() => planPeers(me, all, o))));
  const oldRuns = n >= 5000 ? (quick ? 1 : 3) : runs;
  const oldChangeMs = median(
    Array.from({ length: oldRuns }, () =>
      cpuMs(() => oldSelect(me, all, 32, (id) => shaScore(me.node, id))),
    ),
  );

  // Sources: every agent up to 500 nodes, the agents of sampled nodes above.
  const nodes = [...new Set(all.map((p) => p.node))];
  const sources = n <= 500 ? nodes : sample(nodes, quick ? 20 : 60);
  const coreHeld = new Map<string, Set<string>>(); // target node → source nodes holding it
  const oldHeld = new Map<string, Set<string>>();
  const coreAgents = new Map<string, number>(); // target node → agents holding it
  let corePairs = 0;
  let oldPairs = 0;
  let periodPairs = 0;
  let worstPeriod = 0;
  let worstProbes = 0;
  let lanes = 0;
  let coreSize = 0;
  const mark = (m: Map<string, Set<string>>, t: string, s: string): void => {
    let set = m.get(t);
    if (set === undefined) m.set(t, (set = new Set()));
    set.add(s);
  };
  for (const src of sources) {
    const reach = new Set<string>();
    const oldReach = new Set<string>();
    const periodReach = new Set<string>();
    for (const a of all.filter((p) => p.node === src)) {
      const plan = planPeers(asSelf(a), all, o);
      for (const p of plan.core) {
        reach.add(p.node);
        mark(coreHeld, p.node, src);
        coreAgents.set(p.node, (coreAgents.get(p.node) ?? 0) + 1);
      }
      for (const p of plan.core) periodReach.add(p.node);
      for (const lane of plan.rotation.lanes) for (const p of lane) periodReach.add(p.node);
      for (const p of oldSelectFast(asSelf(a), all, o.limit)) {
        oldReach.add(p.node);
        mark(oldHeld, p.node, src);
      }
      // As podmesh_coverage_period_seconds says it: one interval when the core set holds all.
      worstPeriod = Math.max(worstPeriod, plan.rotation.periodSlots, 1);
      const visits = plan.rotation.lanes.length;
      worstProbes = Math.max(
        worstProbes,
        ((plan.core.length * o.jobsPerPeer + visits * o.jobsPerVisit) * 1000) /
          SELECTION_DEFAULTS.intervalMs,
      );
      lanes = Math.max(lanes, plan.budget.lanes);
      coreSize = Math.max(coreSize, plan.core.length);
    }
    reach.delete(src);
    oldReach.delete(src);
    periodReach.delete(src);
    corePairs += reach.size;
    oldPairs += oldReach.size;
    periodPairs += periodReach.size;
  }
  const pairs = sources.length * Math.max(1, n - 1);

  // In-degree: exact over every node when every source was planned; otherwise for sampled
  // targets, from the agents of their k watcher nodes (a lower bound: anyone else may hold them
  // too, by rendezvous).
  let inNodes = Infinity;
  let inAgents = Infinity;
  let oldIn: number | null = null;
  let inSampled: number | null = null;
  if (sources.length === nodes.length) {
    oldIn = Infinity;
    for (const t of nodes) {
      inNodes = Math.min(inNodes, coreHeld.get(t)?.size ?? 0);
      inAgents = Math.min(inAgents, coreAgents.get(t) ?? 0);
      oldIn = Math.min(oldIn, oldHeld.get(t)?.size ?? 0);
    }
  } else {
    const ring = buildRing(all, o.watchers);
    // Offset from the sampled sources, so the targets are other nodes.
    const targets = sample(nodes.slice(1), quick ? 5 : 20);
    inSampled = targets.length;
    for (const t of targets) {
      const watchers = new Set(watchersOf(ring, t));
      let agents = 0;
      const by = new Set<string>();
      for (const a of all.filter((p) => watchers.has(p.node)))
        if (planPeers(asSelf(a), all, o).core.some((p) => p.node === t)) {
          agents++;
          by.add(a.node);
        }
      inNodes = Math.min(inNodes, by.size);
      inAgents = Math.min(inAgents, agents);
    }
  }
  return {
    nodes: n,
    agents: all.length,
    changeMs,
    oldChangeMs,
    corePairsShare: corePairs / pairs,
    oldCorePairsShare: oldPairs / pairs,
    sampledSources: sources.length,
    periodPairsShare: periodPairs / pairs,
    inDegreeNodesMin: n === 1 ? 0 : inNodes,
    inDegreeAgentsMin: n === 1 ? 0 : inAgents,
    inDegreeSampled: inSampled,
    oldInDegreeNodesMin: oldIn,
    coveragePeriodS: (worstPeriod * SELECTION_DEFAULTS.intervalMs) / 1000,
    lanes,
    coreSize,
    probesPerSecond: worstProbes,
    oldProbesPerSecond:
      (Math.min(32, all.length - 1) * o.jobsPerPeer * 1000) / SELECTION_DEFAULTS.intervalMs,
  };
}

export interface HashCheck {
  /** µs per score: SHA-256 of (node, peer) as shipped before, and nameHash + pairScore. */
  readonly sha256Us: number;
  readonly fnvUs: number;
  /** Chi-square of 100,000 pair scores' top 6 bits over 64 buckets (63 ± 11 for uniform). */
  readonly chiSquare64: number;
}

export function measureHash(): HashCheck {
  const ids = Array.from({ length: 100_000 }, (_, i) => `ip-10-0-${i >> 8}-${i & 255}/pod`);
  let sink = 0n;
  const shaMs = cpuMs(() => {
    for (const id of ids) sink ^= shaScore('ip-10-0-1-7.ec2.internal', id);
  });
  const buckets = new Array<number>(64).fill(0);
  const fnvMs = cpuMs(() => {
    const self = nameHash('ip-10-0-1-7.ec2.internal');
    for (const id of ids) buckets[pairScore(self, nameHash(id)) >>> 26]!++;
  });
  const expect = ids.length / 64;
  const chi = buckets.reduce((s, b) => s + (b - expect) ** 2 / expect, 0);
  if (sink === -1n) throw new Error('unreachable');
  return {
    sha256Us: (shaMs * 1000) / ids.length,
    fnvUs: (fnvMs * 1000) / ids.length,
    chiSquare64: chi,
  };
}
