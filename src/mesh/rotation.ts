// Coverage by rotation: beside its core set (select.ts: probed all the time, per-pair series),
// an agent visits every other agent in turn, so that over one coverage period every ordered
// (node, node) pair is measured on every path (pod→pod, pod→host, host→pod, host→host: both
// agents of a node rotate over both agents of every other node). The schedule is a pure
// function of (the peer list, this agent, the core set, the slot number), the slot number being
// floor(clock / slotMs): any process that knows the peer list computes who probes whom in which
// slot, and so which pairs are due and which are overdue.
//
// Layout: this agent's rotating targets (every candidate not itself and not in its core set),
// ranked by its own rendezvous score (hash.ts: each agent walks the cluster in a different order,
// so the visits to one target are spread over the period instead of arriving together), cut
// into `lanes` contiguous blocks of P = ⌈m/lanes⌉ targets. In slot s a lane visits entry s mod
// its length: every target at least once per P slots, at most `lanes` visits per slot. Coverage
// period: P × slotMs. In the agent a lane is a job on the scheduler's jittered loop, so a visit
// may come a slot or two early or late (nextVisitSlot), and rarely a target waits a period more. A peer-list change shifts the ranks after the change point by one, so across a
// change a target may wait up to two periods (the guarantee is one period for a constant list).
//
// Budget (rotationBudget): a rotating visit is one probe of each kind at its small size, a core
// peer gets every (kind, size) job. When every candidate fits in peers.limit nothing rotates (the
// core set is everyone: podmesh as it always was, up to ~16 nodes); otherwise the core shrinks
// to peers.core and the freed probes pay for the lanes, so an agent never sends more probes per
// second than peers.limit core peers would. With the defaults (limit 32, core 14, 5 jobs a core
// peer: udp small+mtu, icmp small+mtu, tcp; 3 a visit; 1 s slots) that is 30 lanes: 14×5 + 30×3 =
// 160 probes/s, the same as 32×5, and a coverage period of 333 s at 5,000 nodes, 33 s at 500.

import type { Peer, Self } from '../core/types.ts';
import { nameHash, pairScore } from './hash.ts';

export interface RotationBudget {
  /** Peers in the core set (all candidates when they fit in the limit). */
  readonly core: number;
  /** Rotating visits per slot (0: nothing rotates). */
  readonly lanes: number;
}

/**
 * How the probe budget of `limit` full core peers splits, for `candidates` other agents:
 * everyone in the core when they fit, else `core` core peers and the rest as lanes, each lane
 * costing `jobsPerVisit` probes a slot where a core peer costs `jobsPerPeer`.
 */
export function rotationBudget(o: {
  readonly candidates: number;
  readonly limit: number;
  readonly core: number;
  readonly jobsPerPeer: number;
  readonly jobsPerVisit: number;
}): RotationBudget {
  if (o.candidates <= o.limit || o.jobsPerVisit <= 0) return { core: o.limit, lanes: 0 };
  const core = Math.min(o.core, o.limit);
  return { core, lanes: Math.floor(((o.limit - core) * o.jobsPerPeer) / o.jobsPerVisit) };
}

export interface Rotation<P> {
  /** Lane i's targets in visit order; every lane but the last holds periodSlots of them. */
  readonly lanes: readonly (readonly P[])[];
  /** Slots in one coverage period (0 when nothing rotates). */
  readonly periodSlots: number;
}

/** This agent's rotation over every candidate that is neither itself nor in `core` (by id). */
export function planRotation<P extends Peer>(
  self: Self,
  candidates: readonly P[],
  core: ReadonlySet<string>,
  lanes: number,
): Rotation<P> {
  const selfId = `${self.node}/${self.network}`;
  const selfHash = nameHash(self.node);
  const unique = new Map<string, P>();
  for (const p of candidates) if (p.id !== selfId && !core.has(p.id)) unique.set(p.id, p);
  const m = unique.size;
  if (lanes <= 0 || m === 0) return { lanes: [], periodSlots: 0 };
  // Hashed once per target, then a sort on numbers (no hashing inside the comparator).
  const ranked = [...unique.values()].map((peer) => ({
    peer,
    score: pairScore(selfHash, nameHash(peer.id)),
  }));
  ranked.sort((a, b) => (a.score !== b.score ? b.score - a.score : a.peer.id < b.peer.id ? -1 : 1));
  const period = Math.ceil(m / lanes);
  const out: P[][] = [];
  for (let i = 0; i < m; i += period) out.push(ranked.slice(i, i + period).map((r) => r.peer));
  return { lanes: out, periodSlots: period };
}

/** The slot a clock reading falls in: the same number in every process with synced clocks. */
export function slotAt(nowMs: number, slotMs: number): number {
  return Math.floor(nowMs / slotMs);
}

/**
 * The target of one lane in a slot: entry slot mod its length, so a lane never idles (the last,
 * shorter lane visits its few targets more often) and every entry comes within periodSlots.
 */
export function laneTarget<P>(lane: readonly P[], slot: number): P | undefined {
  if (lane.length === 0) return undefined;
  return lane[((slot % lane.length) + lane.length) % lane.length];
}

/** Every visit of a slot: one per lane. */
export function visitsAt<P>(rotation: Rotation<P>, slot: number): P[] {
  const out: P[] = [];
  for (const lane of rotation.lanes) {
    const t = laneTarget(lane, slot);
    if (t !== undefined) out.push(t);
  }
  return out;
}

/** How far a lane's visits may run ahead of or behind the clock's slot before they rejoin it. */
export const LANE_DRIFT_SLOTS = 2;

/**
 * Which slot's target a lane's run visits, given the slot its previous run visited. A lane runs
 * on the scheduler's jittered loop: one run per interval on average, but the jitter adds up (a
 * random walk), so two runs may fall in one slot and none in the next. A run visits the slot
 * after the previous one's, so the lane walks its targets without gaps, while that stays within
 * LANE_DRIFT_SLOTS of the clock; past that (a stall, or the walk drifting off) it rejoins the
 * clock, skipping or repeating a few targets, and a skipped one waits a period more. With the
 * default ±10% jitter that skips ~0.08% of visits (a day of runs, rotation.test.ts), against
 * ~2.6% for a lane going by the clock's slot alone.
 */
export function nextVisitSlot(previous: number | undefined, slotNow: number): number {
  if (previous === undefined) return slotNow;
  const next = previous + 1;
  return Math.abs(next - slotNow) <= LANE_DRIFT_SLOTS ? next : slotNow;
}
