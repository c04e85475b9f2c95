// The latency kinds on hand-made snapshots with baselines (as the controller's history hands
// them): a node whose latency quadruples, a zone pair whose p99 jumps, a link slow but not
// lossy, each named with the figures behind it; and the near misses that must stay silent: no
// baseline or too little of one, jitter under the floors, a starved prober, links a loss
// finding already explains. Plus the shift test itself at its edges.

import test from 'ava';
import { cluster, type SnapshotBuilder } from '../../../test/support/fixtures.ts';
import {
  baselinesOf,
  betweenNodes,
  delay,
  slow,
  touches,
  withBaselines,
  type BaselineOptions,
} from '../../../test/support/latency.ts';
import { DEFAULT_TRIAGE_OPTIONS } from '../options.ts';
import { triage } from '../triage.ts';
import type { Cell, Finding, Snapshot } from '../types.ts';
import { linkRtt, mad, median, shiftOf } from './rtt.ts';

const ids = (fs: readonly Finding[]): string[] => fs.map((f) => f.id).sort();

/** A baseline from the healthy builder, then the fault, then the snapshot with that baseline. */
function faulted(
  b: SnapshotBuilder,
  fault: (b: SnapshotBuilder) => void,
  o: BaselineOptions = {},
): Snapshot {
  const base = baselinesOf(b, o);
  fault(b);
  return withBaselines(b.build(), base);
}

const only = (fs: readonly Finding[], id: string): Finding => {
  const f = fs.find((x) => x.id === id);
  if (f === undefined) throw new Error(`no ${id} in ${ids(fs).join(', ')}`);
  return f;
};

// --- the shift test ----------------------------------------------------------------------------

test('median and MAD', (t) => {
  t.is(median([3, 1, 2]), 2);
  t.is(median([4, 1, 2, 3]), 2.5);
  t.true(Number.isNaN(median([])));
  t.is(mad([1, 2, 3, 4, 100], 3), 1);
});

test('shiftOf: needs samples, k·MAD, the factor and the absolute floor, all at once', (t) => {
  const o = DEFAULT_TRIAGE_OPTIONS;
  const base = { median: 0.001, mad: 0.0001, samples: 60 };
  t.like(shiftOf('p50', 0.004, base, o), { factor: 4, now: 0.004 });
  t.is(shiftOf('p50', 0.004, { ...base, samples: o.latencyMinSamples - 1 }, o), undefined);
  t.is(shiftOf('p50', 0.004, undefined, o), undefined);
  // 1.9×: material floor not met, although far outside the MAD.
  t.is(shiftOf('p50', 0.0019, base, o), undefined);
  // 4× but +0.3 ms: under the absolute floor (sub-millisecond paths).
  t.is(shiftOf('p50', 0.0004, { median: 0.0001, mad: 0, samples: 60 }, o), undefined);
  // 2.5× and +1.5 ms, but the history swings by more: inside 3 × 1.4826 × MAD.
  t.is(shiftOf('p50', 0.0025, { median: 0.001, mad: 0.0005, samples: 60 }, o), undefined);
  // Faster is never a shift.
  t.is(shiftOf('p50', 0.0001, base, o), undefined);
  t.is(shiftOf('p50', 0.01, { median: NaN, mad: 0, samples: 60 }, o), undefined);
});

test('linkRtt: the median over the small cells with enough answers', (t) => {
  const cell = (p50: number, sent = 60, lost = 0, size: 'small' | 'mtu' = 'small'): Cell =>
    ({
      size,
      sent,
      lost,
      rttSeconds: { min: p50, p50, p90: p50, p99: p50 * 2, max: p50 * 3, mean: p50 },
    }) as unknown as Cell;
  // One protocol's quirk (a slow udp responder) does not move the median of three.
  t.deepEqual(linkRtt([cell(0.001), cell(0.001), cell(0.05)], 10), {
    p50: 0.001,
    p99: 0.002,
    cells: 3,
  });
  t.is(linkRtt([cell(0.001, 60, 55)], 10), undefined, '5 answers are too few');
  t.is(linkRtt([cell(0.001, 60, 0, 'mtu')], 10), undefined, 'MTU-sized probes are not read');
  t.is(linkRtt([], 10), undefined);
});

// --- the kinds --------------------------------------------------------------------------------

test('a node whose latency quadruples: latency-node, with the figures', (t) => {
  const s = faulted(cluster({ nodes: 4 }), (b) => slow(b, touches('node-3'), 4));
  const found = triage(s);
  t.deepEqual(ids(found), ['latency-node:node-3']);
  const f = only(found, 'latency-node:node-3');
  t.is(f.severity, 'warning');
  t.deepEqual(f.nodes, ['node-1', 'node-2', 'node-3', 'node-4']);
  t.regex(f.evidence[0]!.text, /node-3: slow with 3 of 3 judged peers/);
  t.true(f.evidence.some((e) => /loss on these links: 0 of \d+ small probes/.test(e.text)));
  // "p50 1.60 ms now vs 0.400 ms baseline (MAD 0.0200 ms, 60 samples over 60 min): 4.0×"
  t.true(
    f.evidence.some((e) =>
      /p50 1\.60 ms now vs 0\.400 ms baseline \(MAD 0\.0200 ms, 60 samples over 60 min\): 4\.0×/.test(
        e.text,
      ),
    ),
    f.evidence.map((e) => e.text).join('\n'),
  );
  t.true(f.nextSteps.some((x) => x.command?.includes('tc -s qdisc') === true));
});

test('a zone pair whose p99 jumps: latency-zone-pair, the tail only', (t) => {
  const zones = { 'node-1': 'a', 'node-2': 'a', 'node-3': 'b', 'node-4': 'b' };
  const cross = (c: Cell): boolean =>
    zones[c.sourceNode as 'node-1'] !== zones[c.targetNode as 'node-1'];
  const s = faulted(cluster({ nodes: 4, zones }), (b) => slow(b, cross, 1, 5));
  const found = triage(s);
  t.deepEqual(ids(found), ['latency-zone-pair:a<->b']);
  const f = only(found, 'latency-zone-pair:a<->b');
  t.deepEqual(f.zones, ['a', 'b']);
  t.regex(f.summary, /4 of 4 node pairs between a and b have a p99 round trip/);
  t.true(f.evidence.some((e) => /p99 5\.00 ms now vs 1\.00 ms baseline/.test(e.text)));
  t.false(
    f.evidence.some((e) => /p50 /.test(e.text)),
    'p50 did not move',
  );
});

test('a link slow but not lossy: latency-pair on that pair only', (t) => {
  const s = faulted(cluster({ nodes: 4 }), (b) =>
    delay(b, betweenNodes('node-1', 'node-2'), 0.003),
  );
  const found = triage(s);
  t.deepEqual(ids(found), ['latency-pair:node-1<->node-2']);
  const f = found[0]!;
  t.regex(f.summary, /slow, not lossy/);
  t.deepEqual(f.nodes, ['node-1', 'node-2']);
  t.true(f.nextSteps.some((x) => x.command?.includes('mtr') === true));
});

test("a node's own pod ↔ host link slow: latency-pair on the node's own pair", (t) => {
  const s = faulted(cluster(), (b) =>
    slow(b, (c) => c.sourceNode === 'node-2' && c.targetNode === 'node-2', 6),
  );
  t.deepEqual(ids(triage(s)), ['latency-pair:node-2/pod<->node-2/host']);
});

test('every path slower: latency-node for the cluster', (t) => {
  const s = faulted(cluster({ nodes: 4 }), (b) => slow(b, (c) => c.sourceNode !== c.targetNode, 5));
  t.deepEqual(ids(triage(s)), ['latency-node:cluster']);
});

test('two nodes: a slow pair stays a pair (no side can be told)', (t) => {
  const s = faulted(cluster({ nodes: 2 }), (b) => slow(b, touches('node-2'), 4));
  t.deepEqual(ids(triage(s)), ['latency-pair:node-1<->node-2']);
});

// --- near misses ------------------------------------------------------------------------------

test('no baseline: nothing, however slow (podmesh diagnose from one matrix)', (t) => {
  const b = cluster({ nodes: 4 });
  slow(b, touches('node-3'), 10);
  t.deepEqual(ids(triage(b.build())), []);
  t.deepEqual(ids(triage(withBaselines(b.build(), { minutes: 60, links: new Map() }))), []);
});

test('too short a history: nothing until latencyMinSamples', (t) => {
  const s = faulted(cluster({ nodes: 4 }), (b) => slow(b, touches('node-3'), 4), { samples: 19 });
  t.deepEqual(ids(triage(s)), []);
  t.deepEqual(ids(triage(s, { latencyMinSamples: 19 })), ['latency-node:node-3']);
});

test('jitter under the floors never fires: +0.3 ms on a 0.1 ms path, 1.8× on a slow one', (t) => {
  const fast = cluster({ nodes: 4 });
  slow(fast, () => true, 0.25); // a 0.1 ms p50, 0.25 ms p99 network
  t.deepEqual(
    ids(triage(faulted(fast, (b) => delay(b, touches('node-3'), 0.0003), { madShare: 0 }))),
    [],
  );
  t.deepEqual(
    ids(triage(faulted(cluster({ nodes: 4 }), (b) => slow(b, touches('node-3'), 1.8)))),
    [],
  );
  // A noisy history: 2.5× is inside its usual swing.
  t.deepEqual(
    ids(
      triage(
        faulted(cluster({ nodes: 4 }), (b) => slow(b, touches('node-3'), 2.5), { madShare: 0.4 }),
      ),
    ),
    [],
  );
});

test('a starved prober never raises one: its slow cells are held back', (t) => {
  const s = faulted(cluster({ nodes: 4 }), (b) => {
    b.starve('node-3', 'pod');
    slow(b, (c) => c.sourceNode === 'node-3' && c.sourceNetwork === 'pod', 8);
    // It answers late too (its udp responder runs on the same starved agent).
    slow(b, (c) => c.targetNode === 'node-3' && c.targetNetwork === 'pod', 8);
  });
  t.deepEqual(ids(triage(s)), ['prober-starved:node-3/pod']);
});

test('links a loss finding explains raise no latency finding', (t) => {
  const s = faulted(cluster({ nodes: 4 }), (b) => {
    b.lossy('node-1', 'node-2', 0.2);
    slow(b, betweenNodes('node-1', 'node-2'), 6);
  });
  t.deepEqual(ids(triage(s)), ['pair-loss:node-1<->node-2']);
});

test('an isolated node raises no latency finding for the pairs it explains', (t) => {
  const s = faulted(cluster({ nodes: 4 }), (b) => {
    slow(b, touches('node-3'), 4);
    b.isolate('node-3', { readable: true });
  });
  t.deepEqual(ids(triage(s)), ['node-isolated:node-3']);
});

test('links a broader finding took but that still answer raise no latency finding', (t) => {
  // The pod network between zones a and b is cut (zone-pair takes every link between those
  // pairs); the node network between them still answers, slowly: part of the same finding.
  const zones = { 'node-1': 'a', 'node-2': 'a', 'node-3': 'b', 'node-4': 'b' };
  const cross = (c: Cell): boolean =>
    zones[c.sourceNode as 'node-1'] !== zones[c.targetNode as 'node-1'];
  const s = faulted(cluster({ nodes: 4, zones }), (b) => {
    b.lose((c) => cross(c) && c.targetNetwork === 'pod', 1);
    slow(b, (c) => cross(c) && c.targetNetwork === 'host', 4);
  });
  t.deepEqual(ids(triage(s)), ['zone-pair:a<->b']);
});

test('a malformed baseline map never throws', (t) => {
  const b = cluster();
  const s = { ...b.build(), baselines: { minutes: 60, links: {} } } as unknown as Snapshot;
  t.notThrows(() => triage(s));
  t.deepEqual(ids(triage(s)), []);
  const b2 = cluster();
  const links = new Map<string, unknown>();
  for (const c of b2.cells)
    links.set(`${c.sourceNode}/${c.sourceNetwork}>${c.targetNode}/${c.targetNetwork}`, {
      p50: null,
    });
  const s2 = { ...b2.build(), baselines: { minutes: 60, links } } as unknown as Snapshot;
  t.notThrows(() => triage(s2));
  t.deepEqual(ids(triage(s2)), []);
});
