// Node-scoped findings as Events on the Node (src/controller/node-events.ts), written through
// the real @kubernetes/client-node to the test API server, which validates Events as the real
// one does (an Event about a Node must be in `default`): a node-isolated finding opening writes
// one Warning Event on that Node, clearing writes one Normal Event, a finding over several
// nodes writes none on Nodes, the per-round cap and unknown Nodes drop and count; and through
// `podmesh controller` itself, a crash-looping agent’s coverage gap lands on its Node (and on its
// Node condition only when controller.nodeConditions is turned on).

import test from 'ava';
import type { Finding } from '../src/api/findings.ts';
import { loadConfig } from '../src/config/load.ts';
import { SystemClock } from '../src/core/clock.ts';
import { Controller, StaticDirectory } from '../src/controller/controller.ts';
import { KubernetesEventSink } from '../src/controller/kubernetes.ts';
import { runController } from '../src/controller/run.ts';
import {
  FakeApiServer,
  crashLoopingAgentPod,
  nodeObject,
  type KObject,
} from './support/fake-apiserver.ts';
import { isolatedFinding } from './support/findings.ts';
import { parseMetrics, silent, until } from './support/agents.ts';

function pairLoss(a: string, b: string): Finding {
  return {
    id: `pair-loss:${a}->${b}`,
    kind: 'pair-loss',
    severity: 'warning',
    subject: `${a}->${b}`,
    nodes: [a, b],
    title: `loss between ${a} and ${b}`,
    summary: 'test',
    evidence: [{ text: 'e' }],
    confidence: 0.6,
    nextSteps: [],
  };
}

interface Setup {
  readonly api: FakeApiServer;
  readonly ctl: Controller;
  set(findings: Finding[]): void;
  nodeEvents(): KObject[];
  dropped(): Promise<Record<string, number>>;
}

async function setup(
  t: { teardown(f: () => Promise<void>): void },
  maxPerRound = 50,
): Promise<Setup> {
  const api = await FakeApiServer.start();
  t.teardown(() => api.close());
  let now: Finding[] = [];
  const clock = new SystemClock();
  const errors: string[] = [];
  const ctl = new Controller({
    clock,
    directory: new StaticDirectory([]),
    pullIntervalMs: 1000,
    pullConcurrency: 1,
    pullTimeoutMs: 500,
    version: 'test',
    events: new KubernetesEventSink(api.kubeConfig(), 'podmesh', clock, (m) => errors.push(m)),
    nodeEvents: { knownNodes: () => ['n1', 'n2', 'n3', 'n4'], maxPerRound },
    triage: () => now,
    log: () => undefined,
  });
  t.teardown(async () => {
    await ctl.stop();
    if (errors.length > 0) throw new Error(`Event writes failed: ${errors.join('; ')}`);
  });
  return {
    api,
    ctl,
    set: (f) => (now = f),
    nodeEvents: () =>
      api
        .created('Event')
        .filter((e) => (e['involvedObject'] as { kind?: string }).kind === 'Node'),
    dropped: async () =>
      Object.fromEntries(
        parseMetrics(await ctl.registry.metrics())
          .filter((s) => s.name === 'podmesh_node_events_dropped_total')
          .map((s) => [s.labels['reason'] ?? '', s.value]),
      ),
  };
}

/** Lets the Event POSTs of a round reach the test API server. */
async function settle(api: FakeApiServer, count: number): Promise<void> {
  await until(`${count} Events written`, () => api.created('Event').length >= count, 5000);
  await new Promise((r) => setTimeout(r, 100));
}

test('a node-isolated finding: one Warning Event on its Node when it opens, one Normal when it clears', async (t) => {
  const s = await setup(t);
  s.set([isolatedFinding('n3', ['n1', 'n2'])]);
  await s.ctl.round();
  await s.ctl.round(); // still open: no second Event
  await settle(s.api, 2); // the Deployment's FindingOpened and the Node's
  const opened = s.nodeEvents();
  t.is(opened.length, 1, 'one Event on a Node, for the isolated node only (not its peers)');
  const e = opened[0]!;
  t.like(e, {
    metadata: { namespace: 'default' },
    involvedObject: { kind: 'Node', apiVersion: 'v1', name: 'n3', uid: 'n3' },
    type: 'Warning',
    reason: 'PodmeshFindingOpened',
    source: { component: 'podmesh-controller' },
  });
  t.is((e['involvedObject'] as { namespace?: string }).namespace, undefined);
  t.regex(String(e['message']), /^\[critical\] node-isolated: n3 is isolated .*podmesh diagnose/);

  s.set([]);
  await s.ctl.round(); // one silent round: still open (findings.ts)
  await s.ctl.round();
  await settle(s.api, 4);
  const all = s.nodeEvents();
  t.is(all.length, 2);
  t.like(all[1], {
    metadata: { namespace: 'default' },
    involvedObject: { kind: 'Node', name: 'n3' },
    type: 'Normal',
    reason: 'PodmeshFindingCleared',
  });
  t.regex(String(all[1]!['message']), /^node-isolated cleared: n3 is isolated/);
  t.deepEqual(await s.dropped(), {});
});

test('a finding over several nodes writes no Event on any Node', async (t) => {
  const s = await setup(t);
  s.set([pairLoss('n1', 'n2')]);
  await s.ctl.round();
  await settle(s.api, 1); // the Deployment's FindingOpened: the sink does write
  t.deepEqual(
    s.api.created('Event').map((e) => (e['involvedObject'] as { kind: string }).kind),
    ['Deployment'],
  );
  t.deepEqual(s.nodeEvents(), []);
});

test('over the per-round cap and on unknown Nodes: dropped and counted', async (t) => {
  const s = await setup(t, 2);
  s.set([
    isolatedFinding('n1', ['n2']),
    isolatedFinding('n2', ['n1']),
    isolatedFinding('n3', ['n1']),
    isolatedFinding('n9', ['n1']), // no such Node
  ]);
  await s.ctl.round();
  await settle(s.api, 4 + 2);
  t.deepEqual(
    s
      .nodeEvents()
      .map((e) => (e['involvedObject'] as { name: string }).name)
      .sort(),
    ['n1', 'n2'],
  );
  t.deepEqual(await s.dropped(), { cap: 1, 'unknown-node': 1 });
  // The next round has no new transition: nothing more is written or dropped.
  await s.ctl.round();
  await new Promise((r) => setTimeout(r, 200));
  t.is(s.nodeEvents().length, 2);
  t.deepEqual(await s.dropped(), { cap: 1, 'unknown-node': 1 });
});

test('podmesh controller: a crash-looping agent’s coverage gap is an Event on its Node; controller.nodeEvents=false writes none; the Node condition only when turned on', async (t) => {
  // The defaults (Node Events on, the Node condition off), then the other way round.
  for (const on of [true, false]) {
    const api = await FakeApiServer.start();
    t.teardown(() => api.close());
    api.upsert(nodeObject({ name: 'n1', zone: 'z1' }));
    const crashing = crashLoopingAgentPod({
      name: 'podmesh-agent-n1',
      node: 'n1',
      ip: '127.42.9.1',
    });
    api.upsert(crashing);
    const ctl = await runController({
      config: loadConfig({
        overrides: {
          httpAddress: '127.42.9.10',
          httpPort: 0,
          'kubernetes.namespace': 'podmesh',
          'controller.pullIntervalMs': 500,
          'controller.pullTimeoutMs': 400,
          'controller.nodeEvents': on,
          ...(on ? {} : { 'controller.nodeConditions': true }),
        },
      }),
      log: silent,
      version: 'test',
      kubeConfig: api.kubeConfig(),
    });
    t.teardown(() => ctl.stop());
    // The finding's Event on the controller Deployment is written either way.
    await until(
      'the coverage-gap finding',
      () =>
        api
          .created('Event')
          .find(
            (e) => e['reason'] === 'FindingOpened' && /coverage-gap n1/.test(String(e['message'])),
          ),
      10_000,
    );
    await new Promise((r) => setTimeout(r, 300));
    const onNode = api
      .created('Event')
      .filter((e) => (e['involvedObject'] as { kind: string }).kind === 'Node');
    if (on) {
      t.is(onNode.length, 1);
      t.like(onNode[0], {
        metadata: { namespace: 'default' },
        involvedObject: { kind: 'Node', name: 'n1', uid: 'n1' },
        type: 'Warning',
        reason: 'PodmeshFindingOpened',
      });
      t.regex(String(onNode[0]!['message']), /coverage-gap: n1/);
      t.deepEqual(api.patches('Node'), [], 'controller.nodeConditions is off by default');
    } else {
      t.deepEqual(onNode, [], 'controller.nodeEvents=false');
      const condition = await until(
        'the PodmeshNetworkProblem condition on n1',
        () =>
          (
            api.get('Node', undefined, 'n1')?.['status'] as {
              conditions: { type: string; status: string }[];
            }
          ).conditions.find((c) => c.type === 'PodmeshNetworkProblem'),
        10_000,
      );
      t.is(condition.status, 'True');
    }
    await ctl.stop();
  }
});
