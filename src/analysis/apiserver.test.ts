// apiserver-unreachable in detail (the table cases are in triage.test.ts): which way fails tells
// the cause (the VIP only: Service translation on the node; the endpoints too: the path to the
// control plane), one network's agent failing alone is said so, a held-back isolated node
// credits its checks to node-isolated, a healed way clears on its fresh checks, and a VIP down
// everywhere is one cluster-wide finding about the Service.

import test from 'ava';
import { cluster } from '../../test/support/fixtures.ts';
import { triage } from './triage.ts';
import type { Finding } from './types.ts';

const ids = (fs: readonly Finding[]): string[] => fs.map((f) => f.id).sort();
const only = (fs: readonly Finding[], id: string): Finding => {
  const f = fs.find((x) => x.id === id);
  if (f === undefined) throw new Error(`no ${id} in ${fs.map((x) => x.id).join(', ')}`);
  return f;
};

test('the VIP only fails from node-2 while the endpoints answer: Service translation there, a warning', (t) => {
  const fs = triage(cluster({ apiserverEndpoints: 3 }).apiBlockedFrom('node-2', 'service').build());
  t.deepEqual(ids(fs), ['apiserver-unreachable:node-2']);
  const f = only(fs, 'apiserver-unreachable:node-2');
  t.is(f.severity, 'warning');
  t.deepEqual(f.targets, ['service']);
  t.regex(f.summary, /Service translation of `kubernetes` on node-2/);
  t.regex(f.summary, /endpoints answer directly/);
  t.true(f.evidence.some((e) => /node-2\/pod → API server \(VIP 10\.96\.0\.1:443\)/.test(e.text)));
  t.true(f.nextSteps.some((s) => s.command?.includes('10.96.0.1') === true));
});

test('the VIP and the endpoints fail from node-2: the path to the control plane, critical', (t) => {
  const fs = triage(cluster({ apiserverEndpoints: 3 }).apiBlockedFrom('node-2').build());
  const f = only(fs, 'apiserver-unreachable:node-2');
  t.is(f.severity, 'critical');
  t.deepEqual(f.targets, ['endpoints', 'service']);
  t.regex(f.summary, /path from node-2 to the control plane/);
  t.true(f.evidence.some((e) => /agents on other nodes: 0 of \d+ failed/.test(e.text)));
  t.true(f.nextSteps.some((s) => s.command?.includes('ip route get 10.0.0.') === true));
});

test("only node-2's pod agent fails: named, and the host agent that reaches it said so", (t) => {
  const fs = triage(
    cluster({ apiserverEndpoints: 3 })
      .apiFail((a) => a.sourceNode === 'node-2' && a.sourceNetwork === 'pod')
      .build(),
  );
  t.deepEqual(ids(fs), ['apiserver-unreachable:node-2']);
  t.regex(only(fs, 'apiserver-unreachable:node-2').summary, /node-2\/host reaches it/);
});

test('node-2 isolated: its failing API server checks are credited to node-isolated', (t) => {
  const fs = triage(
    cluster({ apiserverEndpoints: 3 })
      .isolate('node-2', { readable: true })
      .apiBlockedFrom('node-2')
      .build(),
  );
  t.deepEqual(ids(fs), ['node-isolated:node-2']);
  t.true(
    (only(fs, 'node-isolated:node-2').explains ?? []).some((e) =>
      e.startsWith('API server checks from node-2/'),
    ),
  );
});

test('healed: failures followed by a run of ok checks that proves the heal clear it', (t) => {
  const b = cluster({ apiserverEndpoints: 3, apiserverChecks: 20 }).apiFail(
    (a) => a.sourceNode === 'node-2',
    'timeout',
    10,
  );
  // Red first: the same window with the failures newest is named.
  t.deepEqual(ids(triage(b.build())), ['apiserver-unreachable:node-2']);
  for (const a of b.apiserver)
    if (a.sourceNode === 'node-2') a.run = { ok: true, length: 10, previous: 10 };
  t.deepEqual(ids(triage(b.build())), []);
});

test('the VIP fails from every node while the endpoints answer: one finding about the Service', (t) => {
  const fs = triage(
    cluster({ apiserverEndpoints: 3 })
      .apiFail((a) => a.kind === 'service', 'refused')
      .build(),
  );
  t.deepEqual(ids(fs), ['apiserver-unreachable:all']);
  const f = only(fs, 'apiserver-unreachable:all');
  t.deepEqual(f.targets, ['service']);
  t.regex(f.summary, /the `kubernetes` Service itself/);
});

test('no API server checks at all (an older agent, apiserver off): nothing', (t) => {
  t.deepEqual(ids(triage(cluster().build())), []);
});

test('the endpoints fail directly from node-2 while its VIP answers: named, rules before translation', (t) => {
  const fs = triage(
    cluster({ apiserverEndpoints: 3 }).apiBlockedFrom('node-2', 'endpoint').build(),
  );
  t.deepEqual(ids(fs), ['apiserver-unreachable:node-2']);
  const f = only(fs, 'apiserver-unreachable:node-2');
  t.deepEqual(f.targets, ['endpoints']);
  t.regex(f.summary, /before Service translation/);
});

test('two nodes of five cut from the control plane: each named on its own', (t) => {
  const fs = triage(
    cluster({ nodes: 5, apiserverEndpoints: 3 })
      .apiBlockedFrom('node-2')
      .apiBlockedFrom('node-4')
      .build(),
  );
  t.deepEqual(ids(fs), ['apiserver-unreachable:node-2', 'apiserver-unreachable:node-4']);
  t.deepEqual(only(fs, 'apiserver-unreachable:node-4').nodes, ['node-4']);
});

test('every node failing through the VIP and directly: one critical finding, not one per node', (t) => {
  const fs = triage(
    cluster({ apiserverEndpoints: 3 })
      .apiFail(() => true)
      .build(),
  );
  t.deepEqual(ids(fs), ['apiserver-unreachable:all']);
  const f = only(fs, 'apiserver-unreachable:all');
  t.is(f.severity, 'critical');
  t.deepEqual(f.targets, ['endpoints', 'service']);
  t.regex(f.summary, /the API server is down/);
});
