// Triage on a rotating matrix (issue 18, docs/scale.md): with peers.rotation some node pairs are
// measured by rotating visits only, one probe of each kind per coverage period, so their cells
// hold a few probes each. Such a cell is judged by its counts, in visits (a visit's kinds are
// one moment's sample): alone it rarely reaches minProbes, its link's rotating cells together
// do, and the statistics decide. One lost probe, or one lost visit, is never a finding; a
// sustained fault on a rotating-only pair is named with evidence that says it is a rotating pair
// and when it was last measured; isolation still rests on the core set.

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

/**
 * Four nodes; node-1 ↔ node-3 and node-2 ↔ node-4 measured by rotating visits only: 12 visits a
 * window (a 60 s window, a 5 s coverage period).
 */
const rotatingCluster = (probes = 12): SnapshotBuilder =>
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
  t.true(b.cells.some((c) => c.rotating === true && c.sent === 12));
  t.false(b.cells.some((c) => c.rotating === true && c.size === 'mtu'));
  t.deepEqual(ids(triage(b.build())), []);
});

test('one lost probe on a rotating pair is never a finding: 1 of 1 in a cell, 1 of 36 on a link', (t) => {
  // A cell alone: its one udp probe lost (100% of 1) while the link's other kinds hold 15 each,
  // so the link's visits (31 probes over 3 kinds) count and the cell alone must not.
  const alone = rotatingCluster(15);
  const c = cellOf(alone, podToPod('node-1', 'node-3', 'udp'));
  Object.assign(c, { sent: 1, lost: 1, lossRatio: 1, forwardLost: 1, lastFailure: 'timeout' });
  t.deepEqual(ids(triage(alone.build())), []);
  // One of a link's 36 probes.
  const one = rotatingCluster(12);
  Object.assign(cellOf(one, podToPod('node-1', 'node-3', 'icmp')), {
    lost: 1,
    lossRatio: 1 / 12,
    lastFailure: 'timeout',
  });
  t.deepEqual(ids(triage(one.build())), []);
});

test('one lost visit (every kind of it at once) is never a finding, nor are a few visits', (t) => {
  // Five visits each way, one of node-1/pod's lost whole (a hiccup): 3 of 15 probes, which as
  // independent probes would be significant (99% interval 5–53%); it is 1 of 5 visits, and 5
  // visits are too few to judge.
  const b = rotatingCluster(5);
  for (const protocol of ['udp', 'icmp', 'tcp'])
    Object.assign(cellOf(b, podToPod('node-1', 'node-3', protocol)), {
      lost: 1,
      lossRatio: 0.2,
      ...(protocol === 'udp' ? { forwardLost: 1 } : {}),
      lastFailure: 'timeout',
    });
  t.deepEqual(ids(triage(b.build())), []);
  // 12 visits, one lost whole: 1 of 12.
  const twelve = rotatingCluster(12);
  for (const protocol of ['udp', 'icmp', 'tcp'])
    Object.assign(cellOf(twelve, podToPod('node-1', 'node-3', protocol)), {
      lost: 1,
      lossRatio: 1 / 12,
      lastFailure: 'timeout',
    });
  t.deepEqual(ids(triage(twelve.build())), []);
});

test('a one-way fault on a rotating-only pair is named once its pooled counts are significant', (t) => {
  // node-1's pod agent → node-3's pod agent dropped: node-1's probes lost on the way there,
  // node-3's on the way back (the reflection), 12 visits each, as STAMP sees it.
  const b = rotatingCluster(12).lossy('node-1', 'node-3', 1, {
    oneWay: true,
    nets: ['pod-to-pod'],
  });
  const fs = triage(b.build());
  t.deepEqual(ids(fs), ['pair-loss:node-1<->node-3'], JSON.stringify(fs, null, 1));
  const f = fs[0]!;
  t.deepEqual(f.nodes, ['node-1', 'node-3']);
  t.regex(f.summary, /STAMP puts the loss on the way from node-1 to node-3/);
  t.regex(f.summary, /measured by rotating visits only/);
  t.true(f.evidence.length > 0);
  for (const e of f.evidence.filter((x) => x.sourceNode !== undefined))
    t.regex(
      e.text,
      /a rotating pair \(visited once a coverage period.*\), last measured 2025-12-31T23:59:52\.000Z/,
    );
  // 60% loss that way, 12 visits: 7 of 12 lost per kind.
  const partial = rotatingCluster(12).lossy('node-1', 'node-3', 0.6, {
    oneWay: true,
    nets: ['pod-to-pod'],
  });
  t.deepEqual(ids(triage(partial.build())), ['pair-loss:node-1<->node-3']);
});

test('core cells with as few probes stay unknown: the pool is for rotating cells only', (t) => {
  const b = rotatingCluster(8).lossy('node-1', 'node-3', 1, {
    oneWay: true,
    nets: ['pod-to-pod'],
  });
  for (const c of b.cells) c.rotating = false;
  t.deepEqual(ids(triage(b.build())), []);
});

test('a partitioned node is named node-isolated on its core links; its rotating links are that cut too', (t) => {
  // node-4 cut off and unreadable; node-2 reaches it by rotating visits only (all lost).
  const b = rotatingCluster(12).isolate('node-4');
  t.true(b.cells.some((c) => c.rotating === true && c.targetNode === 'node-4' && c.lost === 12));
  const fs = triage(b.build());
  t.deepEqual(ids(fs), ['node-isolated:node-4'], JSON.stringify(fs.map((f) => f.title)));
  t.deepEqual(fs[0]!.nodes, ['node-1', 'node-3', 'node-4']);
});

test("an agent's blocked TCP port seen on core links also takes its rotating links' tcp cells", (t) => {
  // node-3/pod's probe port drops SYNs: node-1 reaches it by rotating visits only.
  const b = rotatingCluster(12).tcpBlocked('node-3', 'pod');
  t.true(b.cells.some((c) => c.rotating === true && c.targetNode === 'node-3' && c.lost === 12));
  const fs = triage(b.build());
  t.deepEqual(ids(fs), ['port-blocked:node-3/pod'], JSON.stringify(fs.map((f) => f.title)));
});

test("a node's broken overlay is named on its core links; its rotating links are that fault too", (t) => {
  const fs = triage(rotatingCluster(12).breakOverlay('node-4').build());
  t.deepEqual(ids(fs), ['overlay-broken:node-4'], JSON.stringify(fs.map((f) => f.title)));
});

test('a cut or a one-way block on a rotating-only pair is named on the pair, as loss', (t) => {
  // A rotating link can't be called failing, so not host-network or asymmetric-path: pair-loss,
  // saying why.
  for (const b of [
    rotatingCluster(12).blockHostNetwork('node-1', 'node-3'),
    rotatingCluster(12).partition('node-1', 'node-3'),
    rotatingCluster(12).oneWay('node-1', 'node-3'),
  ]) {
    const fs = triage(b.build());
    t.deepEqual(ids(fs), ['pair-loss:node-1<->node-3']);
    t.regex(fs[0]!.summary, /measured by rotating visits only/);
  }
});
