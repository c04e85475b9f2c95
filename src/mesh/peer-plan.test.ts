// The in-degree guarantee where it counts, in the agents' core sets: every node is probed all the
// time by the agents of at least min(k, n−1) other nodes, with the shipped budget.

import test from 'ava';
import fc from 'fast-check';
import type { Peer } from '../core/types.ts';
import { planPeers, type PeerPlanOptions } from './peer-plan.ts';
import { buildRing, watchersOf } from './watch.ts';
import { asSelf, nodeAgents } from '../../test/support/cluster-fixture.ts';

const clusterArb = (maxNodes: number) =>
  fc
    .record({
      n: fc.integer({ min: 1, max: maxNodes }),
      zones: fc.integer({ min: 1, max: 5 }),
      seed: fc.integer({ min: 0, max: 1_000_000 }),
    })
    .map(({ n, zones, seed }) =>
      Array.from({ length: n }, (_, i) => {
        // Skewed zones: zone 0 holds about half the nodes.
        const zone = `z${i % 2 === 0 ? 0 : (i * 13 + seed) % zones}`;
        return nodeAgents(`n${seed}-${i}`, zone);
      }).flat(),
    );

const DEFAULTS: PeerPlanOptions = {
  limit: 32,
  core: 14,
  watchers: 8,
  jobsPerPeer: 5,
  jobsPerVisit: 3,
};

/** How many other nodes have an agent whose core set holds an agent of `t`. */
function probingNodes(t: string, all: readonly Peer[], agents: readonly Peer[]): number {
  const nodes = new Set<string>();
  for (const a of agents)
    if (a.node !== t && planPeers(asSelf(a), all, DEFAULTS).core.some((p) => p.node === t))
      nodes.add(a.node);
  return nodes.size;
}

test('every node is in the core sets of agents on at least min(k, n-1) other nodes (1..150 nodes, every node)', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(clusterArb(150), (all) => {
        const n = all.length / 2;
        const cores = all.map((a) => [a, planPeers(asSelf(a), all, DEFAULTS).core] as const);
        for (const target of new Set(all.map((p) => p.node))) {
          const by = new Set(
            cores
              .filter(([a, c]) => a.node !== target && c.some((p) => p.node === target))
              .map(([a]) => a.node),
          );
          if (by.size < Math.min(8, n - 1))
            throw new Error(`${target}: probed from ${by.size} nodes of ${n}`);
        }
      }),
      { numRuns: 20 },
    ),
  );
});

test('the same for sampled nodes of clusters up to 5,000 nodes: its k watchers hold it', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(clusterArb(5000), fc.nat(), (all, pick) => {
        const target = all[pick % all.length]!.node;
        const n = all.length / 2;
        const watchers = new Set(watchersOf(buildRing(all, 8), target));
        const agents = all.filter((a) => watchers.has(a.node));
        const by = probingNodes(target, all, agents);
        if (by < Math.min(8, n - 1)) throw new Error(`${target}: probed from ${by} nodes of ${n}`);
        // Both agents of every watcher node hold it: 2k agents.
        for (const a of agents)
          if (!planPeers(asSelf(a), all, DEFAULTS).core.some((p) => p.node === target))
            throw new Error(`${a.id} watches ${target} but its core set lacks it`);
      }),
      { numRuns: 5 },
    ),
  );
});

test('a core set too small for the watched nodes keeps its limit (the guarantee needs 1 + ⌈k/2⌉ + k)', (t) => {
  const all = fc.sample(clusterArb(400), { numRuns: 1, seed: 3 })[0]!;
  const p = planPeers(asSelf(all[0]!), all, { ...DEFAULTS, limit: 4, core: 4 });
  t.true(p.core.length <= 4);
});
