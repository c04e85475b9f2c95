// `podmesh controller` against the test API server (real @kubernetes/client-node) and real
// agents: the matrix is assembled from live agents, every node's coverage carries its reason,
// losing coverage writes a Kubernetes Event, and a node's reboot shows on its finding.

import test from 'ava';
import { loadConfig } from '../src/config/load.ts';
import { runController } from '../src/controller/run.ts';
import {
  FakeApiServer,
  nodeObject,
  podObject,
  crashLoopingAgentPod,
} from './support/fake-apiserver.ts';
import { connect, scrape, silent, startAgent, until, type Running } from './support/agents.ts';

interface CoverageBody {
  nodes:
    | {
        node: string;
        pod: { covered: boolean; reason: string; detail: string };
        host: { reason: string };
      }[]
    | null;
}

test('matrix from live agents, coverage with reasons, an Event when a node loses coverage', async (t) => {
  const api = await FakeApiServer.start();
  const agents: Running[] = [];
  t.teardown(async () => {
    await Promise.all(agents.map((a) => a.agent.stop()));
    await api.close();
  });
  for (const n of ['n1', 'n2', 'n3']) api.upsert(nodeObject({ name: n, zone: 'z1' }));
  api.upsert(nodeObject({ name: 'n4', zone: 'z1', unschedulable: true }));
  const boot = (id: string): void => {
    api.patch('Node', undefined, 'n3', (n) => {
      (n['status'] as Record<string, unknown>)['nodeInfo'] = { bootID: id };
    });
  };
  boot('boot-1');
  for (let i = 1; i <= 2; i++)
    agents.push(
      await startAgent(
        { node: `n${i}`, address: `127.42.8.${i}` },
        { 'probes.intervalMs': 200, 'probes.timeoutMs': 150, 'probes.icmp': false },
      ),
    );
  connect(agents);
  for (const a of agents) {
    api.upsert(
      podObject({
        name: `podmesh-agent-${a.spec.node}`,
        node: a.spec.node,
        ip: a.spec.address,
        ports: { http: a.peer.httpPort, stamp: a.peer.stampPort, tcp: a.peer.tcpPort },
      }),
    );
  }
  const crashing = crashLoopingAgentPod({ name: 'podmesh-agent-n3', node: 'n3', ip: '127.42.8.3' });
  api.upsert(crashing);

  const config = loadConfig({
    overrides: {
      httpAddress: '127.42.8.10',
      httpPort: 0,
      'kubernetes.namespace': 'podmesh',
      'controller.pullIntervalMs': 500,
      'controller.pullTimeoutMs': 1000,
    },
  });
  const ctl = await runController({
    config,
    log: silent,
    version: 'test',
    kubeConfig: api.kubeConfig(),
  });
  t.teardown(() => ctl.stop());

  const matrix = await until(
    'a matrix with both live agents and their cells',
    async () => {
      const res = await fetch(`${ctl.url}/api/v1/matrix`);
      if (!res.ok) return undefined;
      const m = (await res.json()) as {
        agents: { node: string; state: string }[];
        cells: { sourceNode: string; targetNode: string; lost: number }[];
      };
      return m.cells.length >= 6 ? m : undefined;
    },
    10_000,
  );
  t.deepEqual(matrix.agents.map((a) => `${a.node}:${a.state}`).sort(), ['n1:ok', 'n2:ok']);
  t.true(matrix.cells.every((c) => c.lost === 0));

  const cov = (await (await fetch(`${ctl.url}/api/v1/coverage`)).json()) as CoverageBody;
  const byNode = Object.fromEntries((cov.nodes ?? []).map((n) => [n.node, n]));
  t.deepEqual(
    Object.keys(byNode).sort(),
    ['n1', 'n2', 'n3'],
    'the cordoned node is not expected to run agents',
  );
  t.true(byNode['n1']!.pod.covered);
  t.is(byNode['n3']!.pod.reason, 'crash-loop');
  t.regex(byNode['n3']!.pod.detail, /after 5 restarts \(last exit: Error\)/);
  t.is(byNode['n1']!.host.reason, 'missing');
  const samples = await scrape(ctl.url);
  t.is(
    samples.find(
      (s) =>
        s.name === 'podmesh_node_coverage' &&
        s.labels['node'] === 'n3' &&
        s.labels['network'] === 'pod',
    )?.labels['reason'],
    'crash-loop',
  );
  t.is(
    samples.find((s) => s.name === 'podmesh_controller_agents' && s.labels['state'] === 'ok')
      ?.value,
    2,
  );

  // n2's agent goes not-Ready: the node loses coverage and an Event says so, once.
  api.patch('Pod', 'podmesh', 'podmesh-agent-n2', (p) => {
    const st = p['status'] as { conditions: { type: string; status: string }[] };
    for (const c of st.conditions)
      if (c.type === 'Ready' || c.type === 'ContainersReady') c.status = 'False';
  });
  const ev = await until(
    'a CoverageLost Event',
    () => api.created('Event').find((e) => e['reason'] === 'CoverageLost'),
    10_000,
  );
  t.regex(String(ev['message']), /node n2 has no Ready pod-network agent \(not-ready\)/);
  t.is((ev['involvedObject'] as { kind: string; name: string }).name, 'podmesh-agent');
  await new Promise((r) => setTimeout(r, 1200));
  t.is(
    api.created('Event').filter((e) => e['reason'] === 'CoverageLost').length,
    1,
    'one Event per transition, not per round',
  );

  // n3 reboots (a new boot ID): the open finding about n3 (its agent's
  // crash loop) carries the reboot under "what changed", and the change is counted once.
  boot('boot-2');
  const onN3 = await until(
    "the reboot on n3's finding",
    async () => {
      const r = (await (await fetch(`${ctl.url}/api/v1/findings`)).json()) as {
        findings: { id: string; nodes: string[]; changes?: { kind: string; node?: string }[] }[];
      };
      return r.findings.find(
        (f) => f.nodes.includes('n3') && f.changes?.some((c) => c.kind === 'node-rebooted'),
      );
    },
    10_000,
  );
  t.deepEqual(
    onN3.changes?.map((c) => `${c.kind} ${c.node}`),
    ['node-rebooted n3'],
  );
  const counted = (await scrape(ctl.url)).filter(
    (s) => s.name === 'podmesh_cluster_changes_total' && s.labels['kind'] === 'node-rebooted',
  );
  t.deepEqual(
    counted.map((s) => [s.labels['node'], s.value]),
    [['n3', 1]],
  );
});
