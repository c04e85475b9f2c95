// Agents with Kubernetes discovery (the real client against the test API server): the mesh
// forms from agent Pods, a deleted Pod's series leave /metrics, and while the API server is
// away probing goes on with the last known peers and the sync-age metric keeps rising.

import test from 'ava';
import { pino } from 'pino';
import { Agent } from '../src/agent/agent.ts';
import { loadConfig } from '../src/config/load.ts';
import { KubernetesPeerSource } from '../src/discovery/kubernetes.ts';
import { FakeApiServer, nodeObject, podObject } from './support/fake-apiserver.ts';
import { scrape, until } from './support/agents.ts';

const silent = pino({ level: 'silent' });

interface Node {
  readonly name: string;
  readonly address: string;
  agent?: Agent;
  source?: KubernetesPeerSource;
}

test('agents find each other through the API server; deleted Pods leave; an outage keeps probing', async (t) => {
  const api = await FakeApiServer.start();
  const nodes: Node[] = [1, 2, 3].map((i) => ({ name: `k${i}`, address: `127.42.10.${i}` }));
  t.teardown(async () => {
    await Promise.all(nodes.map(async (n) => n.agent?.stop()));
    await api.close();
  });
  for (const n of nodes)
    api.upsert(nodeObject({ name: n.name, zone: n.name === 'k3' ? 'zb' : 'za' }));
  // Fixed ports per address, as a DaemonSet's Pods have: each agent binds its own address.
  const ports = { http: 19960, stamp: 19962, tcp: 19963 };
  for (const n of nodes) {
    const config = loadConfig({
      overrides: {
        node: n.name,
        address: n.address,
        httpAddress: n.address,
        httpPort: ports.http,
        stampPort: ports.stamp,
        tcpPort: ports.tcp,
        'probes.intervalMs': 200,
        'probes.timeoutMs': 150,
        'probes.icmp': false,
        // Never query the machine's own resolver from a test.
        'dns.enabled': false,
      },
    });
    n.source = new KubernetesPeerSource({
      kubeConfig: api.kubeConfig(),
      namespace: 'podmesh',
      podSelector: 'app.kubernetes.io/name=podmesh,app.kubernetes.io/component=agent',
      dnsService: '',
      nodeGraceMs: 1000,
      backoffInitialMs: 100,
      backoffMaxMs: 400,
    });
    n.agent = await Agent.start({ config, log: silent, version: 'test', peerSource: n.source });
    api.upsert(podObject({ name: `podmesh-agent-${n.name}`, node: n.name, ip: n.address, ports }));
  }
  const url = (n: Node): string => `http://${n.address}:${ports.http}`;
  const [k1] = nodes as [Node, Node, Node];

  await until(
    'the mesh forms: k1 has answers from k2 and k3',
    async () => {
      const loss = (await scrape(url(k1))).filter(
        (s) => s.name === 'podmesh_pair_loss_ratio' && s.labels['protocol'] === 'udp',
      );
      return (
        new Set(loss.map((s) => s.labels['target_node'])).size === 2 &&
        loss.every((s) => s.value === 0)
      );
    },
    10_000,
  );
  const samples = await scrape(url(k1));
  const scopes = new Set(
    samples.filter((s) => s.name === 'podmesh_rtt_seconds_count').map((s) => s.labels['scope']),
  );
  t.deepEqual(
    [...scopes].sort(),
    ['cross-zone', 'same-zone'],
    "zones come from the Nodes' topology labels",
  );
  t.true(
    samples.some(
      (s) =>
        s.name === 'podmesh_discovery_last_sync_timestamp_seconds' &&
        s.labels['resource'] === 'pods',
    ),
  );

  // A deleted agent Pod: every series about it leaves k1's /metrics.
  api.remove('Pod', 'podmesh', 'podmesh-agent-k3');
  await until(
    'k3 gone from k1',
    async () => !(await scrape(url(k1))).some((s) => s.labels['target_node'] === 'k3'),
    5_000,
  );
  t.is((await scrape(url(k1))).find((s) => s.name === 'podmesh_peers')?.value, 1);

  // The API server goes away: probing of the last known peers goes on; sync time stands still.
  const syncBefore = (await scrape(url(k1))).find(
    (s) =>
      s.name === 'podmesh_discovery_last_sync_timestamp_seconds' && s.labels['resource'] === 'pods',
  )!.value;
  api.pause('refuse');
  api.dropWatches();
  const sentBefore = (await scrape(url(k1))).find(
    (s) =>
      s.name === 'podmesh_probes_sent_total' &&
      s.labels['target_node'] === 'k2' &&
      s.labels['protocol'] === 'udp' &&
      s.labels['size'] === 'small',
  )!.value;
  await new Promise((r) => setTimeout(r, 2_000));
  const during = await scrape(url(k1));
  const sentDuring = during.find(
    (s) =>
      s.name === 'podmesh_probes_sent_total' &&
      s.labels['target_node'] === 'k2' &&
      s.labels['protocol'] === 'udp' &&
      s.labels['size'] === 'small',
  )!.value;
  t.true(
    sentDuring >= sentBefore + 5,
    `still probing k2 during the outage (${sentBefore} -> ${sentDuring})`,
  );
  t.is(
    during.find(
      (s) =>
        s.name === 'podmesh_pair_loss_ratio' &&
        s.labels['target_node'] === 'k2' &&
        s.labels['protocol'] === 'udp' &&
        s.labels['size'] === 'small',
    )?.value,
    0,
  );
  const syncDuring = during.find(
    (s) =>
      s.name === 'podmesh_discovery_last_sync_timestamp_seconds' && s.labels['resource'] === 'pods',
  )!.value;
  t.true(syncDuring <= syncBefore + 0.5, 'no sync while the API server is away: sync age rises');
  t.true(Date.now() / 1000 - syncDuring >= 1.5);
  api.resume();
  await until(
    'sync resumes',
    async () => {
      const v =
        (await scrape(url(k1))).find(
          (s) =>
            s.name === 'podmesh_discovery_last_sync_timestamp_seconds' &&
            s.labels['resource'] === 'pods',
        )?.value ?? 0;
      return v > syncDuring;
    },
    8_000,
  );
  t.pass();
});
