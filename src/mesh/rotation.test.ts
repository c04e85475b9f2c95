// The rotation schedule: within one coverage period the core set plus the rotating visits reach
// every other agent (so every ordered node pair on every path), never more visits in a slot
// than lanes, the budget never above peers.limit core peers, the same from any process.

import test from 'ava';
import fc from 'fast-check';
import type { Peer, Self } from '../core/types.ts';
import { planPeers, type PeerPlan } from './peer-plan.ts';
import {
  LANE_DRIFT_SLOTS,
  nextVisitSlot,
  planRotation,
  rotationBudget,
  visitsAt,
} from './rotation.ts';
import { agentPeer, asSelf } from '../../test/support/cluster-fixture.ts';

/** n nodes over `zones` zones; every node has a pod agent, most a host agent too. */
const clusterArb = (maxNodes: number) =>
  fc
    .record({
      n: fc.integer({ min: 1, max: maxNodes }),
      zones: fc.integer({ min: 1, max: 4 }),
      hostless: fc.integer({ min: 0, max: 10 }),
      seed: fc.integer({ min: 0, max: 1_000_000 }),
    })
    .map(({ n, zones, hostless, seed }) => {
      const peers: Peer[] = [];
      for (let i = 0; i < n; i++) {
        const node = `n${seed}-${i}`;
        const zone = `z${(i * 7 + seed) % zones}`;
        peers.push(agentPeer(node, zone, 'pod'));
        if (i % 11 >= hostless) peers.push(agentPeer(node, zone, 'host'));
      }
      return peers;
    });

const LIMIT = 32;
const CORE = 14;
const JOBS = { jobsPerPeer: 5, jobsPerVisit: 3 };

/** What one agent does with the shipped defaults: its core set and its rotation. */
function plan(self: Peer, all: readonly Peer[]): PeerPlan<Peer> & { lanes: number } {
  const me = asSelf(self);
  const p = planPeers(me, all, { limit: LIMIT, core: CORE, watchers: 8, ...JOBS });
  return { ...p, lanes: p.budget.lanes };
}

/** Throws unless `self` reaches every other agent within one period, starting at `start`. */
function checkCoverage(self: Peer, all: readonly Peer[], start: number): void {
  const { core, rotation, lanes } = plan(self, all);
  const seen = new Set(core.map((p) => p.id));
  for (let s = start; s < start + rotation.periodSlots; s++) {
    const visits = visitsAt(rotation, s);
    if (visits.length > lanes) throw new Error(`slot ${s}: ${visits.length} visits > ${lanes}`);
    for (const v of visits) seen.add(v.id);
  }
  const missed = all.filter((p) => p.id !== self.id && !seen.has(p.id));
  if (missed.length > 0)
    throw new Error(`${self.id} never reaches ${missed.length} agents, e.g. ${missed[0]!.id}`);
  // The period is the shortest the lanes allow: ⌈rotating targets / lanes⌉ slots.
  const m = all.length - 1 - core.length;
  const want = m === 0 || lanes === 0 ? 0 : Math.ceil(m / lanes);
  if (rotation.periodSlots !== want)
    throw new Error(
      `period ${rotation.periodSlots} slots, want ${want} (${m} targets, ${lanes} lanes)`,
    );
}

test('every agent reaches every other agent within one period: the whole matrix, every path (1..120 nodes, every agent)', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(clusterArb(120), fc.integer({ min: 0, max: 1e9 }), (all, start) => {
        for (const self of all) checkCoverage(self, all, start);
      }),
      { numRuns: 25 },
    ),
  );
});

test('the same for sampled agents of clusters up to 5,000 nodes', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(
        clusterArb(5000),
        fc.integer({ min: 0, max: 1e9 }),
        fc.nat(),
        (all, start, pick) => checkCoverage(all[pick % all.length]!, all, start),
      ),
      { numRuns: 6 },
    ),
  );
});

test('the budget never exceeds peers.limit core peers, and rotates only what does not fit', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 20_000 }),
      fc.integer({ min: 0, max: 200 }),
      fc.integer({ min: 0, max: 200 }),
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 8 }),
      (candidates, limit, core, jobsPerPeer, jobsPerVisit) => {
        const b = rotationBudget({ candidates, limit, core, jobsPerPeer, jobsPerVisit });
        t.true(b.core * jobsPerPeer + b.lanes * jobsPerVisit <= limit * jobsPerPeer);
        if (candidates <= limit) t.deepEqual(b, { core: limit, lanes: 0 });
      },
    ),
  );
});

test('the schedule is the same whatever the order of the peer list', (t) => {
  const all = fc.sample(clusterArb(300), { numRuns: 1, seed: 7 })[0]!;
  const self = all[0]!;
  const a = plan(self, all).rotation;
  const b = plan(self, [...all].reverse()).rotation;
  t.deepEqual(
    b.lanes.map((l) => l.map((p) => p.id)),
    a.lanes.map((l) => l.map((p) => p.id)),
  );
  t.deepEqual(
    visitsAt(b, 12345).map((p) => p.id),
    visitsAt(a, 12345).map((p) => p.id),
  );
});

test('no lanes, or nothing left to rotate: an empty schedule', (t) => {
  const me: Self = { node: 'a', network: 'pod', zone: 'z', address: '' };
  const all = [agentPeer('a', 'z', 'pod'), agentPeer('b', 'z', 'pod')];
  t.deepEqual(planRotation(me, all, new Set(), 0), { lanes: [], periodSlots: 0 });
  t.deepEqual(planRotation(me, all, new Set(['b/pod']), 4), { lanes: [], periodSlots: 0 });
  t.deepEqual(visitsAt(planRotation(me, all, new Set(), 4), 3), [all[1]]);
});

test('a lane on a jittered loop walks its targets in order, near the clock, rarely skipping', (t) => {
  // mulberry32: a seeded generator, so the run is the same every time.
  let seed = 42;
  const random = (): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
  // The scheduler's loop: due += interval × (1 ± 10%), as in scheduler.ts; a day of runs.
  let due = 1_000_000.3;
  let prev: number | undefined;
  let skipped = 0;
  let repeated = 0;
  const runs = 86_400;
  for (let i = 0; i < runs; i++) {
    due += 1 + 0.1 * (2 * random() - 1);
    const slot = Math.floor(due);
    const v = nextVisitSlot(prev, slot);
    t.true(Math.abs(v - slot) <= LANE_DRIFT_SLOTS);
    if (prev !== undefined && v > prev + 1) skipped += v - prev - 1;
    if (prev !== undefined && v <= prev) repeated++;
    prev = v;
  }
  t.true(skipped / runs < 0.002, `${skipped} skipped in ${runs} runs`);
  t.true(repeated / runs < 0.002, `${repeated} repeated in ${runs} runs`);
  // Without the cursor (the clock's slot alone) a lane skips far more often.
  let clockSkips = 0;
  due = 1_000_000.3;
  let last = Math.floor(due);
  for (let i = 0; i < runs; i++) {
    due += 1 + 0.1 * (2 * random() - 1);
    const slot = Math.floor(due);
    if (slot > last + 1) clockSkips += slot - last - 1;
    last = slot;
  }
  t.true(clockSkips > 10 * Math.max(1, skipped), `clock alone: ${clockSkips}, cursor: ${skipped}`);
});
