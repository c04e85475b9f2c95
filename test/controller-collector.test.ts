// The controller's collector against live agents and against agents that misbehave: each bad
// agent is marked with its reason, never fatal, and the rest of the matrix is assembled.

import { createServer, type Server } from 'node:http';
import test from 'ava';
import { SystemClock } from '../src/core/clock.ts';
import { MatrixCollector } from '../src/controller/collector.ts';
import type { AgentEndpoint } from '../src/controller/matrix.ts';
import { connect, startAgent, until, type Running } from './support/agents.ts';

async function fakeAgent(
  handler: (res: import('node:http').ServerResponse) => void,
): Promise<{ server: Server; url: string }> {
  const server = createServer((_req, res) => handler(res));
  await new Promise<void>((r) => server.listen(0, '127.42.6.100', r));
  const port = (server.address() as { port: number }).port;
  return { server, url: `http://127.42.6.100:${port}` };
}

test('a matrix is assembled from live agents; misbehaving agents are marked, not fatal', async (t) => {
  const agents: Running[] = [];
  const servers: Server[] = [];
  t.teardown(async () => {
    await Promise.all(agents.map((a) => a.agent.stop()));
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  });
  for (let i = 1; i <= 2; i++)
    agents.push(
      await startAgent(
        { node: `n${i}`, address: `127.42.6.${i}` },
        { 'probes.intervalMs': 200, 'probes.timeoutMs': 150, 'probes.icmp': false },
      ),
    );
  connect(agents);
  await until(
    "both agents' rows have all three results",
    async () => {
      for (const a of agents) {
        const r = (await (await fetch(`${a.url}/api/v1/results`)).json()) as {
          peers: { results: unknown[] }[];
        };
        if (r.peers[0]?.results.length !== 3) return false;
      }
      return true;
    },
    5_000,
  );

  const garbage = await fakeAgent((res) => res.end('{"this is": "not a row"}'));
  const notJson = await fakeAgent((res) => res.end('<html>'));
  const failing = await fakeAgent((res) => {
    res.statusCode = 500;
    res.end('boom');
  });
  const slow = await fakeAgent(() => undefined); // never answers
  const impostor = await fakeAgent((res) =>
    res.end(
      JSON.stringify({
        ...JSON.parse('{}'),
        apiVersion: 'podmesh.io/v1',
        kind: 'AgentResults',
        source: { node: 'other', network: 'pod', zone: '', address: '1.2.3.4' },
        generatedAt: '',
        windowSeconds: 60,
        intervalMs: 1000,
        probes: {},
        peers: [],
      }),
    ),
  );
  servers.push(garbage.server, notJson.server, failing.server, slow.server, impostor.server);

  const endpoints: AgentEndpoint[] = [
    ...agents.map((a) => ({ node: a.spec.node, network: 'pod' as const, url: a.url })),
    { node: 'g', network: 'pod', url: garbage.url },
    { node: 'j', network: 'pod', url: notJson.url },
    { node: 'f', network: 'pod', url: failing.url },
    { node: 's', network: 'pod', url: slow.url },
    { node: 'i', network: 'pod', url: impostor.url },
    { node: 'u', network: 'pod', url: 'http://127.42.6.101:9' },
  ];
  const collector = new MatrixCollector({
    clock: new SystemClock(),
    concurrency: 3,
    timeoutMs: 500,
  });
  const started = Date.now();
  const m = await collector.collect(endpoints);
  t.true(Date.now() - started < 3_000, 'a hung agent costs one timeout, not the round');
  const state = Object.fromEntries(m.agents.map((a) => [a.node, a.state]));
  t.deepEqual(state, {
    n1: 'ok',
    n2: 'ok',
    g: 'invalid',
    j: 'invalid',
    f: 'http-error',
    s: 'timeout',
    i: 'invalid',
    u: 'unreachable',
  });
  t.regex(m.agents.find((a) => a.node === 'i')!.detail!, /answered as other\/pod/);
  // n1 and n2 each report udp small, udp mtu and tcp about the other.
  t.is(m.cells.length, 6);
  t.true(m.cells.every((c) => c.lost === 0 && c.sent > 0));
  t.deepEqual([...new Set(m.cells.map((c) => `${c.sourceNode}->${c.targetNode}`))].sort(), [
    'n1->n2',
    'n2->n1',
  ]);

  // An agent that stops answering keeps its last-seen time.
  await agents[1]!.agent.stop();
  const m2 = await collector.collect(endpoints);
  const n2 = m2.agents.find((a) => a.node === 'n2')!;
  t.is(n2.state, 'unreachable');
  t.is(n2.lastSeen, m.agents.find((a) => a.node === 'n2')!.lastSeen);
});
