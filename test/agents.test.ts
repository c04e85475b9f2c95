// Loopback integration: real agents (worker-thread engines, real sockets) probe each other;
// a stopped agent's pairs show loss within 3 probe intervals and clear once it is back;
// departed peers' series leave /metrics.

import test from 'ava';
import type { AgentRow } from '../src/api/agent-row.ts';
import { connect, scrape, startAgent, until, type Running } from './support/agents.ts';

const INTERVAL = 200;
const fast = {
  'probes.intervalMs': INTERVAL,
  'probes.timeoutMs': 150,
  'probes.icmp': false,
  'window.seconds': 5,
};

async function rowFor(url: string): Promise<AgentRow> {
  const res = await fetch(`${url}/api/v1/results`);
  return (await res.json()) as AgentRow;
}

function cell(row: AgentRow, node: string, protocol: string, size = 'small') {
  return row.peers
    .find((p) => p.node === node)
    ?.results.find((r) => r.protocol === protocol && r.size === size);
}

test('agents probe each other with no loss, and every pair shows in /metrics', async (t) => {
  const agents: Running[] = [];
  t.teardown(() => Promise.all(agents.map((a) => a.agent.stop())));
  for (let i = 1; i <= 3; i++)
    agents.push(await startAgent({ node: `n${i}`, address: `127.42.1.${i}` }, fast));
  connect(agents);
  await until(
    'every pair has 5 answered probes per kind',
    async () => {
      for (const a of agents) {
        const row = await rowFor(a.url);
        for (const other of agents.filter((o) => o !== a)) {
          for (const [p, s] of [
            ['udp', 'small'],
            ['udp', 'mtu'],
            ['tcp', 'small'],
          ] as const) {
            const c = cell(row, other.spec.node, p, s);
            if (c === undefined || c.sent < 5) return false;
          }
        }
      }
      return true;
    },
    10_000,
  );
  for (const a of agents) {
    const row = await rowFor(a.url);
    t.is(row.source.node, a.spec.node);
    for (const peer of row.peers)
      for (const r of peer.results)
        t.is(r.lost, 0, `${a.spec.node}->${peer.node} ${r.protocol}/${r.size}`);
    const samples = await scrape(a.url);
    const loss = samples.filter((s) => s.name === 'podmesh_pair_loss_ratio');
    t.is(loss.length, 2 * 3, 'two peers x (udp small, udp mtu, tcp)');
    t.true(
      loss.every(
        (s) =>
          s.value === 0 &&
          s.labels['source_node'] === a.spec.node &&
          s.labels['path'] === 'pod-to-pod',
      ),
    );
    const rtt = samples.filter(
      (s) => s.name === 'podmesh_pair_rtt_seconds' && s.labels['quantile'] === '0.5',
    );
    t.true(
      rtt.length === 6 && rtt.every((s) => s.value > 0 && s.value < 0.1),
      'RTT medians are positive and small on loopback',
    );
    t.false(
      samples.some((s) => Object.values(s.labels).some((v) => /^127\./.test(v))),
      'no IP address used as a label value',
    );
  }
});

test('a stopped agent shows as loss within 3 intervals; restarting it clears it', async (t) => {
  const agents: Running[] = [];
  t.teardown(() => Promise.all(agents.map((a) => a.agent.stop())));
  for (let i = 1; i <= 3; i++)
    agents.push(await startAgent({ node: `n${i}`, address: `127.42.2.${i}` }, fast));
  connect(agents);
  const [a, b] = agents as [Running, Running, Running];
  await until(
    'a has answers from b',
    async () => (cell(await rowFor(a.url), 'n2', 'udp')?.sent ?? 0) >= 3,
    5_000,
  );

  const lostBefore = (await rowFor(a.url)).peers
    .find((p) => p.node === 'n2')!
    .results.map((r) => r.lost);
  t.deepEqual(
    lostBefore,
    lostBefore.map(() => 0),
  );
  const stoppedAt = Date.now();
  await b.agent.stop();
  await until(
    'udp and tcp from a to b fail',
    async () => {
      const row = await rowFor(a.url);
      return (cell(row, 'n2', 'udp')?.lost ?? 0) > 0 && (cell(row, 'n2', 'tcp')?.lost ?? 0) > 0;
    },
    3_000,
  );
  const detectMs = Date.now() - stoppedAt;
  t.true(detectMs <= 3 * INTERVAL + 150, `loss seen after ${detectMs} ms`);
  const metricsDown = await scrape(a.url);
  const failures = metricsDown.filter(
    (s) => s.name === 'podmesh_probe_failures_total' && s.labels['target_node'] === 'n2',
  );
  t.true(
    failures.some(
      (s) => s.labels['protocol'] === 'udp' && s.labels['reason'] === 'timeout' && s.value > 0,
    ),
  );
  t.true(
    failures.some(
      (s) => s.labels['protocol'] === 'tcp' && s.labels['reason'] === 'refused' && s.value > 0,
    ),
  );
  // n3 is unaffected.
  t.is(cell(await rowFor(a.url), 'n3', 'udp')?.lost, 0);

  const restarted = await startAgent(
    { ...b.spec, ports: { http: b.peer.httpPort, stamp: b.peer.stampPort, tcp: b.peer.tcpPort } },
    fast,
  );
  agents[1] = restarted;
  connect(agents);
  const back = Date.now();
  await until(
    'a gets answers from the restarted b',
    async () => {
      const c = cell(await rowFor(a.url), 'n2', 'udp');
      return (
        c?.lastSuccess !== undefined && c.lastSuccess !== null && Date.parse(c.lastSuccess) >= back
      );
    },
    3_000,
  );
  // Once the window has rolled past the outage, the pair reads clean again.
  await until(
    'loss clears from the window',
    async () => {
      const row = await rowFor(a.url);
      return cell(row, 'n2', 'udp')?.lost === 0 && cell(row, 'n2', 'tcp')?.lost === 0;
    },
    8_000,
  );
  t.pass();
});

test('series of a departed peer are removed from /metrics', async (t) => {
  const agents: Running[] = [];
  t.teardown(() => Promise.all(agents.map((a) => a.agent.stop())));
  for (let i = 1; i <= 3; i++)
    agents.push(await startAgent({ node: `n${i}`, address: `127.42.3.${i}` }, fast));
  connect(agents);
  const a = agents[0]!;
  await until(
    'a has probed n3',
    async () =>
      (await scrape(a.url)).some(
        (s) => s.name === 'podmesh_probes_sent_total' && s.labels['target_node'] === 'n3',
      ),
    5_000,
  );
  connect(
    agents,
    agents.filter((x) => x.spec.node !== 'n3').map((x) => x.peer),
  );
  await new Promise((r) => setTimeout(r, 3 * INTERVAL));
  const samples = await scrape(a.url);
  t.false(
    samples.some((s) => s.labels['target_node'] === 'n3'),
    'nothing about n3 is left',
  );
  t.true(
    samples.some((s) => s.labels['target_node'] === 'n2'),
    'n2 stays',
  );
  t.is(samples.find((s) => s.name === 'podmesh_peers')?.value, 1);
  t.false((await rowFor(a.url)).peers.some((p) => p.node === 'n3'));
});

test('a crashed probe engine thread is restarted and probing resumes', async (t) => {
  const agents: Running[] = [];
  t.teardown(() => Promise.all(agents.map((a) => a.agent.stop())));
  for (let i = 1; i <= 2; i++)
    agents.push(await startAgent({ node: `n${i}`, address: `127.42.4.${i}` }, fast));
  connect(agents);
  const a = agents[0]!;
  await until(
    'a probes n2',
    async () => (cell(await rowFor(a.url), 'n2', 'udp')?.sent ?? 0) >= 2,
    5_000,
  );
  await a.agent.crashEngineForTest();
  const crashedAt = Date.now();
  await until(
    'answers from n2 again after the restart',
    async () => {
      const c = cell(await rowFor(a.url), 'n2', 'udp');
      return c?.lastSuccess != null && Date.parse(c.lastSuccess) > crashedAt;
    },
    10_000,
  );
  const samples = await scrape(a.url);
  t.is(samples.find((s) => s.name === 'podmesh_engine_restarts_total')?.value, 1);
  // The restarted reflector is back on the same port: n2's probes to n1 get answers again.
  const b = agents[1]!;
  await until(
    'n2 gets answers from the restarted n1',
    async () => {
      const c = cell(await rowFor(b.url), 'n1', 'udp');
      return c?.lastSuccess != null && Date.parse(c.lastSuccess) > crashedAt;
    },
    10_000,
  );
  t.is((await fetch(`${a.url}/readyz`)).status, 200);
});
