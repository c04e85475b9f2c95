// Triage on a rotating matrix (issue 18, docs/scale.md): with peers.rotation some node pairs are
// measured by rotating visits only, one probe of each kind per coverage period, so their cells
// hold a few probes each. Such a cell is judged by its counts: alone it never reaches minProbes,
// its link's rotating cells pooled do, and the statistics decide; one lost probe is never a
// finding, a sustained fault on a rotating-only pair is named with evidence that says it is a
// rotating pair and when it was last measured, and isolation still rests on the core set.

import test from 'ava';
import { cluster, type SnapshotBuilder } from '../../test/support/fixtures.ts';
import { rotatingPairs } from '../../test/support/rotation.ts';
import { triage } from './triage.ts';
import type { Cell, Finding } from './types.ts';

const ROTATING: readonly (readonly [string, string])[] = [
  ['node-1', 'node-3'],
  ['node-2', 'node-4'],
];
const LAST_VISIT = '2025-12-31T23:59:52.000Z';

/** Four nodes; node-1 ↔ node-3 and node-2 ↔ node-4 measured by rotating visits only. */
const rotatingCluster = (probes = 4): SnapshotBuilder =>
  rotatingPairs(cluster({ nodes: 4 }), ROTATING, { probes, measuredAt: LAST_VISIT });

const ids = (fs: readonly Finding[]): string[] => fs.map((f) => f.id);

const cellOf = (b: SnapshotBuilder, pred: (c: Cell) => boolean): Cell & { sent: number } => {
  const c = b.cells.find(pred);
  if (c === undefined) throw new Error('no such cell');
  return c;
};

const podToPod =
  (from: string, to: string, protocol: string) =>
  (c: Cell): boolean =>
    c.sourceNode === from &&
    c.targetNode === to &&
    c.path === 'pod-to-pod' &&
    c.protocol === protocol &&
    c.size === 'small';

test('a healthy rotating matrix has no findings', (t) => {
  const b = rotatingCluster();
  t.true(b.cells.some((c) => c.rotating === true && c.sent === 4));
  t.false(b.cells.some((c) => c.rotating === true && c.size === 'mtu'));
  t.deepEqual(ids(triage(b.build())), []);
});

test('one lost probe on a rotating pair is never a finding: 1 of 1 in a cell, 1 of 12 on a link', (t) => {
  // A cell alone: its one udp probe lost (100% of 1) while the link's other kinds hold 5 each,
  // so the link's pool (11) counts and the cell alone must not.
  const alone = rotatingCluster(5);
  const c = cellOf(alone, podToPod('node-1', 'node-3', 'udp'));
  Object.assign(c, { sent: 1, lost: 1, lossRatio: 1, forwardLost: 1, lastFailure: 'timeout' });
  t.deepEqual(ids(triage(alone.build())), []);
  // One of a link's 12 probes.
  const one = rotatingCluster(4);
  Object.assign(cellOf(one, podToPod('node-1', 'node-3', 'icmp')), {
    lost: 1,
    lossRatio: 0.25,
    lastFailure: 'timeout',
  });
  t.deepEqual(ids(triage(one.build())), []);
});

test('a one-way fault on a rotating-only pair is named once its pooled counts are significant', (t) => {
  // node-1's pod agent → node-3's pod agent dropped: node-1's probes lost on the way there,
  // node-3's on the way back (the reflection), 4 visits each, as STAMP sees it.
  const b = rotatingCluster(4).lossy('node-1', 'node-3', 1, {
    oneWay: true,
    nets: ['pod-to-pod'],
  });
  const fs = triage(b.build());
  t.deepEqual(ids(fs), ['pair-loss:node-1<->node-3'], JSON.stringify(fs, null, 1));
  const f = fs[0]!;
  t.deepEqual(f.nodes, ['node-1', 'node-3']);
  t.regex(f.summary, /STAMP puts the loss on the way from node-1 to node-3/);
  t.true(f.evidence.length > 0);
  for (const e of f.evidence.filter((x) => x.sourceNode !== undefined))
    t.regex(
      e.text,
      /a rotating pair \(visited once a coverage period\), last measured 2025-12-31T23:59:52\.000Z/,
    );
  // 60% loss that way, 6 visits: 4 of 6 lost per cell, the link's pool significant too.
  const partial = rotatingCluster(6).lossy('node-1', 'node-3', 0.6, {
    oneWay: true,
    nets: ['pod-to-pod'],
  });
  t.deepEqual(ids(triage(partial.build())), ['pair-loss:node-1<->node-3']);
});

test('core cells with as few probes stay unknown: the pool is for rotating cells only', (t) => {
  const b = rotatingCluster(4).lossy('node-1', 'node-3', 1, {
    oneWay: true,
    nets: ['pod-to-pod'],
  });
  for (const c of b.cells) c.rotating = false;
  t.deepEqual(ids(triage(b.build())), []);
});

test('a partitioned node is named node-isolated on its core links; its rotating links are that cut too', (t) => {
  // node-4 cut off and unreadable; node-2 reaches it by rotating visits only (all lost).
  const b = rotatingCluster(4).isolate('node-4');
  t.true(b.cells.some((c) => c.rotating === true && c.targetNode === 'node-4' && c.lost === 4));
  const fs = triage(b.build());
  t.deepEqual(ids(fs), ['node-isolated:node-4'], JSON.stringify(fs.map((f) => f.title)));
  t.deepEqual(fs[0]!.nodes, ['node-1', 'node-3', 'node-4']);
});
