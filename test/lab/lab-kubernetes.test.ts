// The lab's agents with Kubernetes discovery instead of static files: real agent processes in
// the lab's namespaces watch the test API server (reached through the lab's root-side
// address) and the mesh forms from the agent Pods and Nodes it serves. Deleting a Pod takes
// its agent out of every other agent's peer set.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { FakeApiServer, nodeObject, podObject } from '../support/fake-apiserver.ts';
import { labSuite } from './gate.ts';
import { AGENT_PORTS, Lab } from './lab.ts';
import { results } from './observe.ts';

const NEEDS = 'the network lab needs root and iproute2, nftables';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  ms: number,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(250);
  }
}

labSuite('lab with Kubernetes discovery', ['ip', 'nft', 'bridge'], NEEDS, () => {
  test('lab agents discover each other through the API server and the mesh forms', async (t) => {
    t.timeout(180_000);
    const lab = await Lab.up({
      nodes: 2,
      podsPerNode: 1,
      agents: false,
      // Discovery is the point here; the DNS checks have their own lab (lab-dns.test.ts).
      dns: false,
      agentSettings: {
        discovery: { mode: 'kubernetes' },
        kubernetes: { namespace: 'podmesh', dnsService: '', nodeGraceMs: 2000 },
        peers: { static: [] },
        probes: { intervalMs: 250, timeoutMs: 200 },
      },
    });
    const api = await FakeApiServer.start({ host: lab.rootIp });
    t.teardown(async () => {
      await lab.down();
      await api.close();
    });
    for (const n of lab.nodes) api.upsert(nodeObject({ name: n.name, zone: n.zone }));
    const kubeconfig = join(lab.dir, 'kubeconfig.yaml');
    writeFileSync(kubeconfig, api.kubeConfigYaml('podmesh'));
    await lab.startAgents({ KUBECONFIG: kubeconfig });
    for (const a of lab.agents) {
      api.upsert(
        podObject({
          name: `podmesh-agent-${a.node.name}-${a.network}`,
          node: a.node.name,
          ip: a.address,
          hostNetwork: a.network === 'host',
          ports: AGENT_PORTS,
        }),
      );
    }
    // Every agent probes the other three with answers and no loss.
    for (const a of lab.agents) {
      const row = await eventually(
        `${a.id} has answered probes to all three others`,
        async () => {
          const r = await results(lab, a);
          const ok =
            r.peers.length === 3 &&
            r.peers.every((p) => p.results.some((c) => c.protocol === 'udp' && c.sent >= 3));
          return ok ? r : undefined;
        },
        60_000,
      );
      t.deepEqual(
        row.peers.map((p) => `${p.node}/${p.network}`).sort(),
        lab.agents
          .filter((o) => o !== a)
          .map((o) => o.id)
          .sort(),
      );
      for (const p of row.peers) {
        const udp = p.results.find((c) => c.protocol === 'udp' && c.size === 'small')!;
        t.is(udp.lost, 0, `${a.id} -> ${p.node}/${p.network}`);
      }
      // Zones come from the Nodes' topology labels: node-1 is zone-a, node-2 zone-b.
      t.deepEqual(
        new Set(row.peers.filter((p) => p.node !== a.node.name).map((p) => p.scope)),
        new Set(['cross-zone']),
      );
    }
    t.true(api.watchCount('pods') >= lab.agents.length, 'each agent watches the agent Pods');

    // A deleted agent Pod leaves every other agent's peer set.
    const gone = lab.agents[3]!;
    api.remove('Pod', 'podmesh', `podmesh-agent-${gone.node.name}-${gone.network}`);
    for (const a of lab.agents.filter((x) => x !== gone)) {
      await eventually(
        `${gone.id} leaves ${a.id}'s peers`,
        async () => {
          const r = await results(lab, a);
          return r.peers.some((p) => `${p.node}/${p.network}` === gone.id) ? undefined : true;
        },
        15_000,
      );
    }
    t.pass();
  });
});
