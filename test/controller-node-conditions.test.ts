// The opt-in Node condition (src/controller/node-conditions.ts): written with the real
// @kubernetes/client-node as a strategic merge patch on nodes/status of the test API server,
// which merges status.conditions by type as the real one does. A node-isolated finding sets
// PodmeshNetworkProblem=True on that Node only (not on its peers), the kubelet's Ready
// condition stays, nothing is rewritten while nothing changes, and clearing sets it False.

import test from 'ava';
import type { Finding } from '../src/api/findings.ts';
import { SystemClock } from '../src/core/clock.ts';
import { Controller, StaticDirectory } from '../src/controller/controller.ts';
import { KubernetesNodeConditions, nodeConditionView } from '../src/controller/kubernetes.ts';
import type { V1Node } from '@kubernetes/client-node';
import { FakeApiServer, nodeObject } from './support/fake-apiserver.ts';
import { isolatedFinding } from './support/findings.ts';
import { until } from './support/agents.ts';

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

test('PodmeshNetworkProblem: True on the isolated Node only, kubelet conditions kept, False when it clears', async (t) => {
  const api = await FakeApiServer.start();
  t.teardown(() => api.close());
  for (const n of ['n1', 'n2', 'n3']) api.upsert(nodeObject({ name: n, zone: 'z1' }));
  const conditions = (node: string): Condition[] =>
    (api.get('Node', undefined, node)?.['status'] as { conditions?: Condition[] }).conditions ?? [];
  const ours = (node: string) => conditions(node).find((c) => c.type === 'PodmeshNetworkProblem');
  const clock = new SystemClock();
  const errors: string[] = [];
  const writer = new KubernetesNodeConditions(api.kubeConfig(), clock, (m) => errors.push(m));
  let now: Finding[] = [];
  const ctl = new Controller({
    clock,
    directory: new StaticDirectory([]),
    pullIntervalMs: 1000,
    pullConcurrency: 1,
    pullTimeoutMs: 500,
    version: 'test',
    triage: () => now,
    // What the informer would hold: the test API server's Nodes as they are now.
    nodeConditions: {
      nodes: () =>
        ['n1', 'n2', 'n3'].map((n) =>
          nodeConditionView(api.get('Node', undefined, n) as unknown as V1Node),
        ),
      write: (w) => writer.write(w),
    },
    log: () => undefined,
  });

  await ctl.round();
  t.deepEqual(api.patches(), [], 'no finding, no condition ever set: nothing written');

  now = [isolatedFinding('n2', ['n1', 'n3'])];
  await ctl.round();
  const set = await until('the condition on n2', () => ours('n2'), 5000);
  t.like(set, {
    status: 'True',
    reason: 'PodmeshFindingsOpen',
    message: 'podmesh findings open on this node: node-isolated:n2 (podmesh diagnose)',
  });
  t.true(
    conditions('n2').some((c) => c.type === 'Ready' && c.status === 'True'),
    "the kubelet's Ready condition is kept (merged by type)",
  );
  t.is(ours('n1'), undefined, 'not on the peers');
  t.is(ours('n3'), undefined);
  t.deepEqual(
    api.patches('Node').map((p) => [p.name, p.subresource, p.type]),
    [['n2', 'status', 'application/strategic-merge-patch+json']],
  );

  await ctl.round();
  await new Promise((r) => setTimeout(r, 100));
  t.is(api.patches('Node').length, 1, 'the Node already says so: not written again');

  now = [];
  await ctl.round(); // still open for one silent round (findings.ts)
  await ctl.round();
  const cleared = await until(
    'the condition on n2 going False',
    () => (ours('n2')?.status === 'False' ? ours('n2') : undefined),
    5000,
  );
  t.like(cleared, { reason: 'PodmeshNoFindings' });
  t.not(cleared.lastTransitionTime, undefined);
  await ctl.round();
  await new Promise((r) => setTimeout(r, 100));
  t.is(api.patches('Node').length, 2, 'one write per change');
  t.deepEqual(errors, [], 'every write accepted');
});
