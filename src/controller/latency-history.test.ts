// The controller's RTT history behind the latency kinds: one sample per bucket (the median of
// its rounds), baselines only from completed buckets (the round being judged is never its own
// baseline), bounded (the link cap, at most one window of buckets per link) and ageing out
// (buckets older than the window, links not seen for a window). And the controller hands the
// baselines to triage with the snapshot.

import test from 'ava';
import type { Snapshot } from '../analysis/types.ts';
import type { Matrix } from '../api/matrix.ts';
import { SystemClock } from '../core/clock.ts';
import { cluster } from '../../test/support/fixtures.ts';
import { slow } from '../../test/support/latency.ts';
import { Controller, StaticDirectory } from './controller.ts';
import { BUCKETS, LatencyHistory, type RttHistory } from './latency-history.ts';

const MIN = 60_000;
const KEY = 'node-1/pod>node-2/pod';

/** A 2-node matrix whose small cells all have this p50 (p99 = 2.5 × it). */
function matrixAt(p50: number, nodes = 2): Matrix {
  const b = cluster({ nodes });
  slow(b, () => true, p50 / 0.0004, p50 / 0.0004);
  return b.build().matrix;
}

test('a baseline is the median and MAD of completed buckets, never the open one', (t) => {
  const h = new LatencyHistory({ minutes: 60, maxLinks: 1000 });
  const t0 = 1_000 * MIN;
  h.record(matrixAt(0.001), t0);
  t.is(h.baselines(t0).links.get(KEY), undefined, 'the open bucket is not a baseline');
  // Three rounds in the next minute: 2, 3 and 9 ms; the bucket's sample is their median, 3 ms.
  h.record(matrixAt(0.001), t0 + 10_000);
  h.record(matrixAt(0.002), t0 + MIN);
  h.record(matrixAt(0.003), t0 + MIN + 5_000);
  h.record(matrixAt(0.009), t0 + MIN + 10_000);
  const b = h.baselines(t0 + 2 * MIN).links.get(KEY);
  t.truthy(b);
  t.is(b!.p50.samples, 2);
  t.is(Math.round(b!.p50.median * 1e6), 2000, 'median of 1 ms and 3 ms');
  t.is(Math.round(b!.p50.mad * 1e6), 1000);
  t.is(Math.round(b!.p99.median * 1e6), 5000, 'p99 is kept alongside');
  // Judged in the same minute as the rounds just recorded, they are not part of it yet.
  t.is(h.baselines(t0 + MIN + 20_000).links.get(KEY)!.p50.samples, 1);
});

test('an hour of history: 60 samples, median and MAD of the minute values', (t) => {
  const h = new LatencyHistory({ minutes: 60, maxLinks: 1000 });
  const t0 = 5_000 * MIN;
  // Alternating 1.0 / 1.2 ms minutes with one 50 ms spike: the median and MAD ignore the spike.
  for (let m = 0; m < 60; m++)
    h.record(matrixAt(m === 31 ? 0.05 : m % 2 === 0 ? 0.001 : 0.0012), t0 + m * MIN);
  const b = h.baselines(t0 + 60 * MIN).links.get(KEY)!;
  t.is(b.p50.samples, 60);
  t.is(Math.round(b.p50.median * 1e5), 110);
  t.is(Math.round(b.p50.mad * 1e5), 10);
  t.is(h.baselines(t0 + 60 * MIN).minutes, 60);
});

test('bounded: at most one window of buckets per link, old buckets age out', (t) => {
  const h = new LatencyHistory({ minutes: 60, maxLinks: 1000 });
  const t0 = 9_000 * MIN;
  // Three hours: 2 ms for the first two, 1 ms for the last one.
  for (let m = 0; m < 180; m++) h.record(matrixAt(m < 120 ? 0.002 : 0.001), t0 + m * MIN);
  const b = h.baselines(t0 + 180 * MIN).links.get(KEY)!;
  t.is(b.p50.samples, BUCKETS);
  t.is(Math.round(b.p50.median * 1e6), 1000, 'only the last hour counts');
  // Half an hour later with no rounds: the older half has aged out of the window.
  t.is(h.baselines(t0 + 210 * MIN).links.get(KEY)!.p50.samples, 30);
});

test('bounded: the link cap holds and refusals are counted', (t) => {
  const h = new LatencyHistory({ minutes: 60, maxLinks: 10 });
  // 3 nodes × 2 agents: 30 links.
  for (let m = 0; m < 5; m++) h.record(matrixAt(0.001, 3), m * MIN);
  t.is(h.size(), 10);
  t.is(h.refused, 5 * 20);
  t.is(h.baselines(5 * MIN).links.size, 10);
  const off = new LatencyHistory({ minutes: 60, maxLinks: 0 });
  off.record(matrixAt(0.001), 0);
  t.is(off.size(), 0);
});

test('a link not seen for a whole window is forgotten, and its room freed', (t) => {
  const h = new LatencyHistory({ minutes: 10, maxLinks: 1000 });
  h.record(matrixAt(0.001, 3), 0);
  t.is(h.size(), 30);
  // Only node-1 and node-2 from now on: node-3's 18 links go after one window.
  for (let s = 10; s <= 11 * 60; s += 10) h.record(matrixAt(0.001, 2), s * 1000);
  t.is(h.size(), 12);
  t.is(h.baselines(11 * MIN).links.size, 12);
});

test('a short window (the lab): buckets of window/60, so a minute builds a baseline', (t) => {
  const h = new LatencyHistory({ minutes: 1, maxLinks: 1000 });
  for (let s = 0; s < 60; s++) h.record(matrixAt(0.001), s * 1000);
  t.is(h.baselines(60_000).links.get(KEY)!.p50.samples, 60);
});

test('cells with too few answers, MTU-sized cells and malformed matrices are not recorded', (t) => {
  const h = new LatencyHistory({ minutes: 60, maxLinks: 1000 });
  const b = cluster({ nodes: 2 });
  b.lose(() => true, 0.95); // 3 answers of 60
  h.record(b.build().matrix, 0);
  h.record({ cells: null } as unknown as Matrix, 1);
  h.record(undefined as unknown as Matrix, 2);
  t.is(h.size(), 0);
  t.throws(() => new LatencyHistory({ minutes: 0, maxLinks: 1 }));
});

test('the controller hands triage the baselines of earlier rounds', async (t) => {
  const seen: Snapshot[] = [];
  const mk = (history?: RttHistory): Controller =>
    new Controller({
      clock: new SystemClock(),
      directory: new StaticDirectory([]),
      pullIntervalMs: 1000,
      pullConcurrency: 1,
      pullTimeoutMs: 500,
      version: 'test',
      triage: (s) => {
        seen.push(s);
        return [];
      },
      ...(history !== undefined ? { latencyHistory: history } : {}),
      log: () => undefined,
    });
  await mk(new LatencyHistory({ minutes: 60, maxLinks: 10 })).round();
  t.deepEqual(seen[0]?.baselines, { minutes: 60, links: new Map() });
  await mk().round();
  t.is(seen[1]?.baselines, undefined, 'no history: no baselines (the latency kinds stay silent)');
  // Every round: the baselines are read first, then the round recorded, then triage runs.
  const calls: string[] = [];
  const base = { minutes: 5, links: new Map() };
  const spy: RttHistory = {
    baselines: () => (calls.push('baselines'), base),
    record: (m) => void calls.push(`record ${m.kind}`),
  };
  const c = mk(spy);
  await c.round();
  await c.round();
  t.deepEqual(calls, ['baselines', 'record Matrix', 'baselines', 'record Matrix']);
  t.is(seen[3]?.baselines, base);
});
