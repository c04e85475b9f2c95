// Triage on fresh samples (fresh.ts through links.ts, and coverage gaps held back or absorbed):
// a node cut off a couple of seconds ago is named from its trailing failures alone, with no
// coverage gap or loss finding on the way; a healed MTU black hole and a healed cut clear as
// soon as their runs of successes prove it, though their windows still hold the fault; steady
// loss is never taken for a cut; an agent behind an MTU black hole is shown under that finding.
// Rows without the trailing run (older agents) are judged on the window as before.

import test from 'ava';
import { cluster, type SnapshotBuilder } from '../../test/support/fixtures.ts';
import type { Cell } from './types.ts';
import { triage } from './triage.ts';
import type { Finding, Snapshot } from './types.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Every cell gets the trailing run its counts imply (losses, if any, before one success). */
function withRuns(b: SnapshotBuilder): SnapshotBuilder {
  for (const c of b.cells)
    c.run =
      c.lost === 0
        ? { ok: true, length: c.sent, previous: 0 }
        : c.lost === c.sent
          ? { ok: false, length: c.sent, previous: 0 }
          : { ok: true, length: 1, previous: 1 };
  return b;
}

/** Sets matching cells to `lost` of their window with the given trailing run. */
function setRun(
  b: SnapshotBuilder,
  pred: (c: Cell) => boolean,
  lost: number,
  run: NonNullable<Cell['run']>,
): SnapshotBuilder {
  for (const c of b.cells as Mutable<Cell>[])
    if (pred(c)) {
      c.lost = lost;
      c.lossRatio = lost / c.sent;
      c.lastFailure = lost > 0 ? 'timeout' : null;
      c.run = run;
    }
  return b;
}

const touches =
  (node: string) =>
  (c: Cell): boolean =>
    c.sourceNode !== c.targetNode && (c.sourceNode === node || c.targetNode === node);

/** The node's agents can't be read this round, for the first time (read ok a round ago). */
function unreadable(b: SnapshotBuilder, node: string, lastSeen = '2026-01-01T00:00:00.000Z') {
  b.dropRows(node);
  for (const net of ['pod', 'host'] as const) {
    const a = b.agent(node, net);
    a.state = 'timeout';
    a.detail = 'no answer within 3000 ms';
    a.lastSeen = lastSeen;
  }
  return b;
}

/** Long enough ago to be past readGraceSeconds. */
const LONG_AGO = '2025-12-31T23:59:00.000Z';

const ids = (fs: readonly Finding[]): string[] => fs.map((f) => f.id).sort();
const run = (s: Snapshot): Finding[] => triage(s);

test('a node cut off two probes ago is node-isolated, with no gap and no loss finding', (t) => {
  const b = withRuns(cluster({ nodes: 4 }));
  setRun(b, touches('node-3'), 2, { ok: false, length: 2, previous: 58 });
  unreadable(b, 'node-3');
  const found = run(b.build());
  t.deepEqual(ids(found), ['node-isolated:node-3']);
  const f = found[0]!;
  t.true(f.explains?.includes("coverage-gap:node-3/pod (the controller can't reach it)"));
  t.true(f.explains?.includes("coverage-gap:node-3/host (the controller can't reach it)"));
  t.true(
    f.evidence.some((e) => /6 of 6 lost, the newest in a row \(window: 6 of 180\)/.test(e.text)),
    f.evidence.map((e) => e.text).join('\n'),
  );
});

test('the same cut seen by 3 nodes, node-3 still readable: node-isolated only', (t) => {
  const b = withRuns(cluster());
  setRun(b, touches('node-3'), 3, { ok: false, length: 3, previous: 57 });
  t.deepEqual(ids(run(b.build())), ['node-isolated:node-3']);
});

test('one failure in a row: not proven yet, and the unreadable agents are no gap yet', (t) => {
  const b = withRuns(cluster({ nodes: 4 }));
  setRun(b, touches('node-3'), 1, { ok: false, length: 1, previous: 59 });
  // Read failures that are no longer new: still held, since the peers can't reach it either.
  unreadable(b, 'node-3', LONG_AGO);
  t.deepEqual(ids(run(b.build())), []);
});

test('a new read failure while the peers still reach the agent: held one grace period', (t) => {
  const b = withRuns(cluster());
  unreadable(b, 'node-2');
  t.deepEqual(ids(run(b.build())), []);
  // Unreadable for longer: a coverage gap.
  const old = withRuns(cluster());
  unreadable(old, 'node-2', LONG_AGO);
  t.deepEqual(ids(run(old.build())), ['coverage-gap:node-2']);
});

test('steady 30% loss with three failures in a row on every kind is pair-loss, not a cut', (t) => {
  const b = withRuns(cluster().lossy('node-1', 'node-2', 0.3));
  for (const c of b.cells as Mutable<Cell>[])
    if (c.lost > 0) c.run = { ok: false, length: 3, previous: 2 };
  t.deepEqual(ids(run(b.build())), ['pair-loss:node-1<->node-2']);
});

test('an MTU black hole is named; healed, two full-size answers clear it', (t) => {
  const broken = withRuns(cluster().mtu());
  t.deepEqual(ids(run(broken.build())), ['mtu-blackhole:cluster']);
  // 58 of the window's 60 full-size probes lost, the newest two answered.
  const healed = withRuns(cluster().mtu());
  setRun(healed, (c) => c.size === 'mtu' && c.sourceNode !== c.targetNode, 58, {
    ok: true,
    length: 2,
    previous: 58,
  });
  t.deepEqual(ids(run(healed.build())), []);
});

test('a cut healed three probes ago clears, though its window still holds 25% loss', (t) => {
  const b = withRuns(cluster({ nodes: 4 }));
  setRun(b, touches('node-3'), 15, { ok: true, length: 3, previous: 15 });
  t.deepEqual(ids(run(b.build())), []);
  // Without the runs (an older agent) the window is all there is: loss on node-3.
  const old = cluster({ nodes: 4 });
  setRun(old, touches('node-3'), 15, { ok: true, length: 3, previous: 15 });
  for (const c of old.cells as Mutable<Cell>[]) delete c.run;
  t.deepEqual(ids(run(old.build())), ['pair-loss:node-3']);
});

test("an MTU black hole on node-3 takes its pod agent's failed reads: shown under it", (t) => {
  const b = withRuns(cluster().mtu((c) => c.sourceNode === 'node-3' || c.targetNode === 'node-3'));
  b.agentState('node-3', 'pod', 'timeout', 'no answer within 3000 ms');
  b.agent('node-3', 'pod').lastSeen = LONG_AGO;
  const found = run(b.build());
  t.deepEqual(ids(found), ['mtu-blackhole:node-3']);
  t.true(
    found[0]!.explains?.includes("coverage-gap:node-3/pod (the controller can't reach it)"),
    JSON.stringify(found[0]!.explains),
  );
});

test('older agents (no trailing run): two losses in a row are not a cut, as before', (t) => {
  const b = cluster({ nodes: 4 });
  setRun(b, touches('node-3'), 2, { ok: false, length: 2, previous: 58 });
  for (const c of b.cells as Mutable<Cell>[]) delete c.run;
  unreadable(b, 'node-3', LONG_AGO);
  t.deepEqual(ids(run(b.build())), ['coverage-gap:node-3']);
});

const WEB = { name: 'web', address: '10.244.3.9', port: 8080, expected: 'open' } as const;

test('a port target answered again: port-blocked clears on the newest connects', (t) => {
  // Connects every second (60 in the window): 45 dropped, then the newest 15 accepted.
  const broken = cluster({ ports: [WEB], portChecks: 60 }).portTimeout('web');
  t.deepEqual(ids(run(broken.build())), ['port-blocked:web']);
  const b = cluster({ ports: [WEB], portChecks: 60 }).portTimeout('web');
  for (const p of b.ports) {
    p.open = 15;
    p.openRatio = 0.25;
    p.outcomes = { timeout: 45, open: 15 };
    p.lastOutcome = 'open';
    p.run = { ok: true, length: 15, previous: 45 };
  }
  t.deepEqual(ids(run(b.build())), []);
  // With 12 connects a window (every 5 s), one accepted connect after 11 dropped is not an
  // unlikely enough run: the window rules (11 of 12 failed is significantly at least half).
  const sparse = cluster({ ports: [WEB] }).portTimeout('web');
  for (const p of sparse.ports) {
    p.open = 1;
    p.openRatio = 1 / 12;
    p.outcomes = { timeout: 11, open: 1 };
    p.run = { ok: true, length: 1, previous: 11 };
  }
  t.deepEqual(ids(run(sparse.build())), ['port-blocked:web']);
});

test('DNS answered again: the replica finding clears on the newest lookups', (t) => {
  const down = (): SnapshotBuilder =>
    cluster({ dnsQueries: 60 }).dnsFail((d) => d.serverKind === 'replica' && d.server === 'node-2');
  t.deepEqual(ids(run(down().build())), ['dns-replica:node-2']);
  const b = down();
  for (const d of b.dns)
    if (d.serverKind === 'replica' && d.server === 'node-2') {
      d.failed = 48;
      d.answeredRatio = 0.2;
      d.run = { ok: true, length: 12, previous: 48 };
    }
  t.deepEqual(ids(run(b.build())), []);
});

/** Cells between node-3 and its peers that reach a pod agent or leave one (the overlay's). */
const podSide = (c: Cell): boolean =>
  touches('node-3')(c) && (c.sourceNetwork === 'pod' || c.targetNetwork === 'pod');
const hostToHost = (c: Cell): boolean =>
  touches('node-3')(c) && c.sourceNetwork === 'host' && c.targetNetwork === 'host';

/** Sets matching cells' window to `sent` probes (their lost and run set by setRun). */
function windowOf(b: SnapshotBuilder, pred: (c: Cell) => boolean, sent: number): void {
  for (const c of b.cells as Mutable<Cell>[])
    if (pred(c)) {
      c.sent = sent;
      c.lossRatio = c.lost / sent;
    }
}

test('a cut half proven (some links proven, others a probe behind): nothing on the way', (t) => {
  // What the lab saw 7.5 s into a cut: some links to the node are proven cut already (here the
  // pod side: 8 failures in a row after 25 clean results), others not yet (host to host: 2
  // failures after 31 clean ones). The proven links alone read as an overlay failure or pair
  // loss on node-3; they are held back until the rest is proven too.
  const b = withRuns(cluster({ nodes: 4 }));
  setRun(b, podSide, 8, { ok: false, length: 8, previous: 25 });
  windowOf(b, podSide, 33);
  setRun(b, hostToHost, 2, { ok: false, length: 2, previous: 31 });
  windowOf(b, hostToHost, 33);
  unreadable(b, 'node-3');
  t.deepEqual(ids(run(b.build())), []);
  // Two probes later every link is proven: node-isolated, and only it.
  setRun(b, hostToHost, 4, { ok: false, length: 4, previous: 31 });
  windowOf(b, hostToHost, 35);
  t.deepEqual(ids(run(b.build())), ['node-isolated:node-3']);
});

test('a node whose host links answer is not held back: its failing pod links are named', (t) => {
  const b = withRuns(cluster({ nodes: 4 }));
  const toPod = (c: Cell): boolean => touches('node-3')(c) && c.targetNetwork === 'pod';
  setRun(b, toPod, 20, { ok: false, length: 20, previous: 0 });
  windowOf(b, toPod, 20);
  const found = ids(run(b.build()));
  t.true(
    found.some((id) => id.startsWith('overlay-broken')),
    found.join(', '),
  );
});

test('heavy loss starting on one pair (80% one way) is never a one-way cut', (t) => {
  // CI's lab: the first seconds of 80% one-way loss gave every kind of the link a few failures
  // in a row after a clean window: a proven change, but not a cut. Only isolation, with most of
  // a node's links at once, takes such runs for a cut; every other rule judges the window, where
  // 4 of 60 lost is not yet significant loss: nothing for now (pair-loss once it is).
  const b = withRuns(cluster({ nodes: 4 }));
  const oneWay = (c: Cell): boolean =>
    c.sourceNode === 'node-4' &&
    c.targetNode === 'node-3' &&
    c.sourceNetwork === 'pod' &&
    c.targetNetwork === 'pod';
  setRun(b, oneWay, 4, { ok: false, length: 4, previous: 56 });
  t.deepEqual(ids(run(b.build())), []);
  // Seconds later the window's loss is significant: pair-loss, still no cut of any kind.
  setRun(b, oneWay, 12, { ok: false, length: 3, previous: 1 });
  t.deepEqual(ids(run(b.build())), ['pair-loss:node-3<->node-4']);
});

test('the tail of healed loss is no contrast: small probes healed, MTU and TCP windows lossy', (t) => {
  // CI's lab: just after 80% loss on node-4 → node-3 healed, the small udp and icmp probes were
  // proven healed while the MTU-sized and tcp windows still held the loss: that read as an MTU
  // black hole and a blocked TCP port. The reference side of a contrast is judged on its window.
  const b = withRuns(cluster({ nodes: 4 }));
  const pair = (c: Cell): boolean =>
    c.sourceNode === 'node-4' &&
    c.targetNode === 'node-3' &&
    c.sourceNetwork === 'pod' &&
    c.targetNetwork === 'pod';
  const healedSmall = (c: Cell): boolean =>
    pair(c) && c.size === 'small' && (c.protocol === 'udp' || c.protocol === 'icmp');
  setRun(b, pair, 40, { ok: true, length: 2, previous: 6 });
  setRun(b, healedSmall, 40, { ok: true, length: 12, previous: 10 });
  const found = ids(run(b.build()));
  t.false(
    found.some((id) => id.startsWith('mtu-blackhole') || id.startsWith('port-')),
    found.join(', '),
  );
});
