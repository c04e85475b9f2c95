// The watcher ring's guarantees as properties over random clusters of 1..5,000 nodes and
// random zone layouts (sizes skewed on purpose: one big zone and tiny ones is where a rule that
// spreads watchers over zones would overload the tiny zones).

import test from 'ava';
import fc from 'fast-check';
import { buildRing, watchedBy, watchersOf, type RingNode } from './watch.ts';

/** n nodes over z zones, zone i weighted by weights[i] (any positive numbers). */
const clusterArb = (maxNodes: number) =>
  fc
    .record({
      n: fc.integer({ min: 1, max: maxNodes }),
      weights: fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 5 }),
      seed: fc.integer({ min: 0, max: 1_000_000 }),
      k: fc.integer({ min: 0, max: 12 }),
    })
    .map(({ n, weights, seed, k }) => {
      const total = weights.reduce((a, b) => a + b, 0);
      const nodes: RingNode[] = [];
      for (let i = 0; i < n; i++) {
        // A deterministic spread of nodes over the weighted zones.
        let x = ((i * 2654435761 + seed) >>> 0) % total;
        let z = 0;
        while (x >= weights[z]!) x -= weights[z++]!;
        nodes.push({ node: `node-${seed}-${i}`, zone: `zone-${z}` });
      }
      return { nodes, k };
    });

function checkRing(nodes: readonly RingNode[], k: number): void {
  const ring = buildRing(nodes, k);
  const n = nodes.length;
  const q = Math.ceil(k / 2);
  const zoneOf = new Map(nodes.map((x) => [x.node, x.zone]));
  const zoneSize = new Map<string, number>();
  for (const x of nodes) zoneSize.set(x.zone, (zoneSize.get(x.zone) ?? 0) + 1);
  const watching = new Map<string, string[]>();
  for (const t of ring.order) {
    const w = watchersOf(ring, t);
    if (new Set(w).size !== w.length) throw new Error(`${t}: duplicate watchers`);
    if (w.includes(t)) throw new Error(`${t} watches itself`);
    if (w.length !== Math.min(k, n - 1))
      throw new Error(`${t}: in-degree ${w.length}, want ${Math.min(k, n - 1)}`);
    const inZone = w.filter((x) => zoneOf.get(x) === zoneOf.get(t)).length;
    const wantZone = Math.min(q, zoneSize.get(zoneOf.get(t)!)! - 1, Math.min(k, n - 1));
    if (inZone < wantZone) throw new Error(`${t}: ${inZone} same-zone watchers, want ${wantZone}`);
    for (const a of w) watching.set(a, [...(watching.get(a) ?? []), t]);
  }
  for (const a of ring.order) {
    const want = (watching.get(a) ?? []).sort();
    const got = watchedBy(ring, a);
    if (got.join() !== want.join())
      throw new Error(`${a}: watchedBy ${got.join()} but ${want.join()}`);
    if (got.length > q + k) throw new Error(`${a}: out-degree ${got.length} > ${q + k}`);
  }
}

test('every node has exactly min(k, n-1) watchers, half in its zone; out-degree ≤ ⌈k/2⌉ + k; watchedBy agrees (1..300 nodes)', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(clusterArb(300), ({ nodes, k }) => checkRing(nodes, k)),
      { numRuns: 60 },
    ),
  );
});

test('the same at up to 5,000 nodes (few runs: each checks every node)', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(clusterArb(5000), ({ nodes }) => checkRing(nodes, 8)),
      { numRuns: 4 },
    ),
  );
});

test('one node joining changes O(k) watcher assignments, not a reshuffle', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(clusterArb(1000), fc.integer({ min: 0, max: 4 }), ({ nodes, k }, z) => {
        const pairs = (ns: readonly RingNode[]): Set<string> => {
          const ring = buildRing(ns, k);
          return new Set(ring.order.flatMap((x) => watchersOf(ring, x).map((w) => `${x}>${w}`)));
        };
        const before = pairs(nodes);
        const after = pairs([...nodes, { node: 'joiner', zone: `zone-${z}` }]);
        const changed = [...after].filter((p) => !before.has(p)).length;
        // The joiner's own k, and about one each for the q + k nodes before it on the rings.
        const bound = 3 * k + 2 * Math.ceil(k / 2);
        if (changed > bound) throw new Error(`${changed} assignments changed (> ${bound})`);
      }),
      { numRuns: 40 },
    ),
  );
});

test('input order and duplicates (two agents a node) do not change the ring', (t) => {
  const nodes = Array.from({ length: 50 }, (_, i) => ({ node: `n${i}`, zone: `z${i % 3}` }));
  const a = buildRing(nodes, 8);
  const b = buildRing([...nodes, ...nodes].reverse(), 8);
  t.deepEqual(b.order, a.order);
  t.deepEqual(watchersOf(b, 'n7'), watchersOf(a, 'n7'));
});

test('k = 0 and unknown nodes: no watchers', (t) => {
  const ring = buildRing([{ node: 'a', zone: 'z' }], 0);
  t.deepEqual(watchersOf(ring, 'a'), []);
  t.deepEqual(watchedBy(buildRing([{ node: 'a', zone: 'z' }], 8), 'nope'), []);
});
