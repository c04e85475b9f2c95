// The controller's collector against live agents and against agents that misbehave: each bad
// agent is marked with its reason, never fatal, and the rest of the matrix is assembled. An
// agent endpoint is not trusted: its redirects are refused (never followed), its body is cut off
// at the size limit while it streams, and the round ends by its deadline whatever agents do.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import test from 'ava';
import { SystemClock } from '../src/core/clock.ts';
import { MatrixCollector } from '../src/controller/collector.ts';
import type { AgentEndpoint } from '../src/controller/matrix.ts';
import { connect, startAgent, until, type Running } from './support/agents.ts';

async function fakeAgent(
  handler: (res: ServerResponse, req: IncomingMessage) => void,
): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => handler(res, req));
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

/** A row that passes the schema, as agent `node` on the pod network would send it. */
function validRow(node: string): string {
  return JSON.stringify({
    apiVersion: 'podmesh.io/v1',
    kind: 'AgentResults',
    source: { node, network: 'pod', zone: '', address: '127.0.0.1' },
    generatedAt: '',
    windowSeconds: 60,
    intervalMs: 1000,
    probes: {},
    peers: [],
  });
}

function closeAll(t: import('ava').ExecutionContext, servers: readonly Server[]): void {
  t.teardown(() => {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  });
}

test('a redirect from an agent endpoint is refused, never followed, and its target never echoed', async (t) => {
  // The target stands for an internal service (a cloud metadata endpoint) the controller can
  // reach and an attacker who controls an agent's answer cannot.
  let targetHits = 0;
  const target = await fakeAgent((res) => {
    targetHits++;
    res.end('{"AccessKeyId": "secret-credentials"}');
  });
  const codes = [301, 302, 303, 307, 308];
  const redirecting = await Promise.all(
    codes.map((code) =>
      fakeAgent((res) => {
        res.statusCode = code;
        res.setHeader(
          'Location',
          `${target.url}/latest/meta-data/iam/security-credentials/${'x'.repeat(4000)}`,
        );
        res.end('moved');
      }),
    ),
  );
  closeAll(t, [target.server, ...redirecting.map((r) => r.server)]);
  const collector = new MatrixCollector({
    clock: new SystemClock(),
    concurrency: 5,
    timeoutMs: 2_000,
  });
  const m = await collector.collect(
    redirecting.map((r, i) => ({ node: `r${codes[i]}`, network: 'pod' as const, url: r.url })),
  );
  t.is(targetHits, 0, 'the redirect target was never contacted');
  for (const a of m.agents) {
    t.is(a.state, 'invalid', a.node);
    t.regex(a.detail ?? '', /redirect/, a.node);
    t.true((a.detail ?? '').length <= 200, `${a.node}: a bounded note, not the Location`);
    t.false((a.detail ?? '').includes('secret'), a.node);
    t.false((a.detail ?? '').includes('xxxxxxxx'), a.node);
  }
});

test('an endless chunked body is cut off at the size limit while it streams', async (t) => {
  const maxBytes = 256 * 1024;
  // "Endless" within reason: the agent stops on its own after 128 MiB, so the test is bounded
  // even against a collector that reads everything.
  const cap = 128 * 1024 * 1024;
  let written = 0;
  let closed = false;
  const endless = await fakeAgent((res) => {
    res.on('close', () => (closed = true));
    res.setHeader('Content-Type', 'application/json');
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    res.write('{"peers": "');
    const pump = (): void => {
      while (!closed && written < cap) {
        written += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end('"}');
    };
    pump();
  });
  closeAll(t, [endless.server]);
  const collector = new MatrixCollector({
    clock: new SystemClock(),
    concurrency: 1,
    timeoutMs: 20_000,
    maxBytes,
  });
  const started = Date.now();
  const m = await collector.collect([{ node: 'e', network: 'pod', url: endless.url }]);
  const a = m.agents[0]!;
  t.is(a.state, 'invalid');
  t.regex(a.detail ?? '', new RegExp(`over the ${maxBytes}-byte limit`));
  t.true(Date.now() - started < 5_000, 'cut off at the limit, not read until the timeout');
  await until('the agent sees its connection closed', () => closed, 5_000);
  // What was written beyond the limit sits in socket buffers (a few MiB on loopback), not in
  // the controller's heap.
  t.true(written < 32 * 1024 * 1024, `the agent got to write ${written} bytes`);
});

test('a round ends by its deadline: agents not answered by then are marked timeout', async (t) => {
  const hung = await Promise.all([1, 2, 3].map(() => fakeAgent(() => undefined)));
  const good = await fakeAgent((res) => res.end(validRow('good')));
  closeAll(t, [good.server, ...hung.map((h) => h.server)]);
  const collector = new MatrixCollector({
    clock: new SystemClock(),
    concurrency: 2,
    timeoutMs: 3_000,
    roundTimeoutMs: 400,
  });
  const started = Date.now();
  const m = await collector.collect([
    { node: 'h1', network: 'pod', url: hung[0]!.url },
    { node: 'good', network: 'pod', url: good.url },
    { node: 'h2', network: 'pod', url: hung[1]!.url },
    // Still queued behind the others when the deadline passes: never even started.
    { node: 'h3', network: 'pod', url: hung[2]!.url },
  ]);
  const took = Date.now() - started;
  t.true(took < 2_000, `the round took ${took} ms`);
  const byNode = Object.fromEntries(m.agents.map((a) => [a.node, a]));
  t.is(byNode.good?.state, 'ok');
  for (const n of ['h1', 'h2', 'h3']) {
    t.is(byNode[n]?.state, 'timeout', n);
    t.regex(byNode[n]?.detail ?? '', /round's deadline of 400 ms/, n);
  }
});

test.serial(
  'a pull times out on its own timeout even when garbage is collected while it waits',
  async (t) => {
    // Node 20 can collect an AbortSignal.timeout() that only AbortSignal.any() refers to; its
    // timer then never fires (nodejs/node#57736), and a pull of an agent that doesn't answer (a
    // partitioned node) lasted until the round's deadline or TCP's connect timeout instead of
    // pullTimeoutMs: the lab's rounds stalled for ~10 s. Collect garbage while the pulls wait.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const hung = await Promise.all([1, 2, 3, 4].map(() => fakeAgent(() => undefined)));
    closeAll(
      t,
      hung.map((h) => h.server),
    );
    const collector = new MatrixCollector({
      clock: new SystemClock(),
      concurrency: 4,
      timeoutMs: 200,
      roundTimeoutMs: 3_000,
    });
    const collecting = setInterval(gc, 20);
    t.teardown(() => clearInterval(collecting));
    const m = await collector.collect(
      hung.map((h, i) => ({ node: `h${i}`, network: 'pod' as const, url: h.url })),
    );
    for (const a of m.agents) {
      t.is(a.state, 'timeout', a.node);
      // Ended by its own 200 ms timeout, not by the round's 3 s deadline.
      t.is(a.detail, 'no answer within 200 ms', a.node);
    }
  },
);
