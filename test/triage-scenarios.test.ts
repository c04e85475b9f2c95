// Triage on generated scenarios (test/support/scenarios.ts): random single faults (a pair's
// one-way or two-way loss, on every path or pods only; a node's loss on all its links; an MTU
// black hole on a pair or a node; an agent's TCP port dropped, rejected or refused) at random
// levels from 1% to 100%, and latency faults (a pair's or a node's round trips 1.05× to 20×
// their baseline, nothing lost), on random topologies, with the probe counts a real window has
// drawn at random and every link's RTT baseline in the snapshot. Triage must name that fault's
// kind or nothing (below the threshold or not significant), never another kind: a loss fault
// never raises a latency kind, a latency fault never a loss one; healthy clusters with
// background loss and RTT noise give nothing. The
// false-finding rate is printed; the bench's `triage` section runs the same over 20,000.

import test from 'ava';
import fc from 'fast-check';
import { triage } from '../src/analysis/triage.ts';
import {
  allowedKinds,
  describeFault,
  generate,
  isStrong,
  type Fault,
  type Topology,
} from './support/scenarios.ts';

const topologyArb: fc.Arbitrary<Topology> = fc.record({
  nodes: fc.integer({ min: 2, max: 6 }),
  zones: fc.constantFrom(1, 1, 2),
  probes: fc.constantFrom(20, 60, 60, 120),
  background: fc.constant(0.0005),
});

/** Loss levels from 1% to 100%, a third of them below 10%. */
const levelArb = fc.oneof(
  fc.double({ min: 0.01, max: 0.1, noNaN: true }),
  fc.double({ min: 0.1, max: 1, noNaN: true }),
  fc.double({ min: 0.1, max: 1, noNaN: true }),
);

/** Latency factors from 1.05× to 20×, half of them under the 2× floor's neighbourhood of 3×. */
const factorArb = fc.oneof(
  fc.double({ min: 1.05, max: 3, noNaN: true }),
  fc.double({ min: 3, max: 20, noNaN: true }),
);

function faultArb(nodes: number): fc.Arbitrary<Fault> {
  const node = fc.integer({ min: 0, max: nodes - 1 });
  const pair = fc
    .tuple(node, fc.integer({ min: 1, max: nodes - 1 }))
    .map(([a, d]) => [a, (a + d) % nodes] as const);
  return fc.oneof(
    fc.constant<Fault>({ type: 'healthy' }),
    fc
      .record({ p: pair, loss: levelArb, oneWay: fc.boolean(), pods: fc.boolean() })
      .map(({ p, loss, oneWay, pods }): Fault => ({
        type: 'pair-loss',
        a: p[0],
        b: p[1],
        loss,
        oneWay,
        pods,
      })),
    fc.record({ node, loss: levelArb }).map((r): Fault => ({ type: 'node-loss', ...r })),
    fc
      .record({ p: pair, loss: levelArb })
      .map(({ p, loss }): Fault => ({ type: 'mtu-pair', a: p[0], b: p[1], loss })),
    fc.record({ node, loss: levelArb }).map((r): Fault => ({ type: 'mtu-node', ...r })),
    fc
      .record({
        node,
        net: fc.constantFrom('pod' as const, 'host' as const),
        loss: levelArb,
        outcome: fc.constantFrom('timeout' as const, 'unreachable' as const, 'refused' as const),
      })
      .map((r): Fault => ({ type: 'port', ...r })),
    fc
      .record({ p: pair, factor: factorArb })
      .map(({ p, factor }): Fault => ({ type: 'latency-pair', a: p[0], b: p[1], factor })),
    fc.record({ node, factor: factorArb }).map((r): Fault => ({ type: 'latency-node', ...r })),
  );
}

const scenarioArb = topologyArb.chain((topo) =>
  fc.record({
    topo: fc.constant(topo),
    fault: faultArb(topo.nodes),
    seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  }),
);

const RUNS = 1500;

test('generated single faults: the fault or nothing, never another kind', (t) => {
  const scenarios = fc.sample(scenarioArb, { numRuns: RUNS, seed: 20261207 });
  let falseFindings = 0;
  let strong = 0;
  let missed = 0;
  const wrong: string[] = [];
  for (const { topo, fault, seed } of scenarios) {
    const found = triage(generate(topo, fault, seed));
    const allowed = allowedKinds(fault, topo);
    const bad = found.filter((f) => !allowed.has(f.kind));
    if (bad.length > 0) {
      falseFindings++;
      wrong.push(
        `${describeFault(fault)} (${topo.nodes} nodes, ${topo.probes} probes): ${bad.map((f) => f.id).join(', ')}`,
      );
    }
    // A fault that loses at least half its probes where it applies, or slows its round trips
    // at least 4×, must be named.
    if (isStrong(fault)) {
      strong++;
      if (!found.some((f) => allowed.has(f.kind))) missed++;
    }
  }
  const rate = falseFindings / RUNS;
  t.log(
    `${RUNS} scenarios: ${falseFindings} with a false finding (${(rate * 100).toFixed(2)}%), ${missed} of ${strong} strong faults missed`,
  );
  for (const w of wrong) t.log(`false: ${w}`);
  // Target ≤ 0.1% (docs/triage.md, measured over 20,000 in the bench); a fixed sample of 1,500
  // may hold one or two by chance, never more.
  t.true(falseFindings <= 2, wrong.join('\n'));
  t.is(missed, 0);
});

test('property: a healthy cluster with 0.1% background loss gives no finding', (t) => {
  fc.assert(
    fc.property(topologyArb, fc.integer({ min: 1, max: 2 ** 31 - 1 }), (topo, seed) => {
      const found = triage(generate(topo, { type: 'healthy' }, seed));
      if (found.length > 0) t.log(found.map((f) => f.id));
      return found.length === 0;
    }),
    { numRuns: 200, seed: 7 },
  );
  t.pass();
});

test('one-way loss between two nodes’ pods at 10–80%: only pair-loss, with the right direction', (t) => {
  const topo: Topology = { nodes: 4, zones: 1, probes: 60, background: 0.0005 };
  for (const loss of [0.1, 0.3, 0.5, 0.8])
    for (let seed = 1; seed <= 25; seed++) {
      const fault: Fault = { type: 'pair-loss', a: 1, b: 2, loss, oneWay: true, pods: true };
      const found = triage(generate(topo, fault, seed * 1000 + loss * 100));
      t.deepEqual(
        found.map((f) => f.id),
        ['pair-loss:node-2<->node-3'],
        `${loss} seed ${seed}`,
      );
      t.regex(found[0]!.summary, /STAMP puts the loss on the way from node-2 to node-3/);
      t.regex(found[0]!.summary, /\d+ of \d+ lost \([\d.]+%, 99% interval \d+–\d+%\)/);
    }
});

test('random 30% loss on one node’s links: pair-loss naming that node, nothing else', (t) => {
  const topo: Topology = { nodes: 4, zones: 1, probes: 60, background: 0.0005 };
  for (let seed = 1; seed <= 25; seed++) {
    // 30% of probes: per-packet loss with 1 - (1 - p)^2 = 0.3.
    const fault: Fault = { type: 'node-loss', node: 2, loss: 1 - Math.sqrt(0.7) };
    const found = triage(generate(topo, fault, seed));
    t.deepEqual(
      found.map((f) => f.id),
      ['pair-loss:node-3'],
      `seed ${seed}`,
    );
  }
});

test('cuts drawn by the generator: a node cut off is node-isolated, a pair cut host-network', (t) => {
  for (let seed = 1; seed <= 10; seed++) {
    for (const nodes of [3, 5]) {
      const topo: Topology = { nodes, zones: 1, probes: 60, background: 0.0005 };
      const cut = triage(generate(topo, { type: 'node-loss', node: 1, loss: 1 }, seed));
      t.deepEqual(
        cut.map((f) => f.id),
        ['node-isolated:node-2'],
      );
      const pair: Fault = { type: 'pair-loss', a: 0, b: 2, loss: 1, oneWay: false, pods: false };
      t.deepEqual(
        triage(generate(topo, pair, seed)).map((f) => f.id),
        ['host-network:node-1<->node-3'],
      );
      const mtu: Fault = { type: 'mtu-node', node: 0, loss: 1 };
      t.deepEqual(
        triage(generate(topo, mtu, seed)).map((f) => f.id),
        ['mtu-blackhole:node-1'],
      );
    }
  }
});
