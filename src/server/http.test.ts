// The HTTP servers under fire, on loopback: a flood of idle sockets beyond the connection cap,
// scrapers that hold every request slot, sockets that never finish their headers, keep-alive
// sockets left open. Through all of it /healthz and /readyz answer, because a kubelet that can't
// probe restarts the agent or takes it out of its Service exactly when someone leans on it.

import { connect, type Socket } from 'node:net';
import type { Server } from 'node:http';
import test, { type ExecutionContext } from 'ava';
import { closeServer, createApp, listen, type AgentView } from './http.ts';
import { serveController } from './controller-app.ts';
import type { HttpLimits } from './limits.ts';

const LO = '127.0.0.1';

async function until(what: string, fn: () => boolean | Promise<boolean>, ms: number) {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function portOf(server: Server): number {
  return (server.address() as { port: number }).port;
}

function openConnections(server: Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );
}

/** Opens n sockets that never send a byte; resolves once each has connected or failed. */
async function idleSockets(t: ExecutionContext, port: number, n: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<void>((resolve) => {
          const s = connect(port, LO);
          sockets.push(s);
          s.resume(); // reads whatever comes, so a close by the server is seen
          s.on('error', () => resolve());
          s.once('connect', () => resolve());
          s.once('close', () => resolve());
        }),
    ),
  );
  return sockets;
}

function agentView(over: Partial<AgentView> = {}): AgentView {
  return {
    isReady: () => true,
    notReadyReason: () => '',
    renderMetrics: () => Promise.resolve('podmesh_up 1\n'),
    results: () => ({ ok: true }),
    ...over,
  };
}

async function agentServer(
  t: ExecutionContext,
  limits: Partial<HttpLimits>,
  view: AgentView = agentView(),
): Promise<{ server: Server; url: string }> {
  const server = await listen(createApp(view), LO, 0, {
    maxConnections: 16,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 20_000,
    keepAliveTimeoutMs: 5_000,
    ...limits,
  });
  t.teardown(() => closeServer(server));
  return { server, url: `http://${LO}:${portOf(server)}` };
}

async function get(url: string, ms = 2_000): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(ms) });
  return { status: res.status, body: await res.text() };
}

test('a flood of idle connections beyond the cap: the cap holds and every route still answers', async (t) => {
  const { server, url } = await agentServer(t, { maxConnections: 16 });
  const flood = await idleSockets(t, portOf(server), 200);
  await until(
    'the server closed all but 16',
    () => flood.filter((s) => !s.destroyed).length <= 16,
    3_000,
  );
  for (const path of ['/healthz', '/readyz', '/api/v1/results', '/metrics'])
    t.is((await get(`${url}${path}`)).status, 200, path);
  t.true((await openConnections(server)) <= 16, 'never more than the cap open');
});

test('the controller server holds its cap too, and its probes answer under a flood', async (t) => {
  const controller = {
    matrix: () => ({}),
    coverageReport: () => ({}),
    registry: { metrics: () => Promise.resolve('') },
    start: () => undefined,
  };
  const { server, port } = await serveController(controller, LO, 0, {
    maxConnections: 8,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 20_000,
    keepAliveTimeoutMs: 5_000,
  });
  t.teardown(() => closeServer(server));
  const flood = await idleSockets(t, port, 100);
  await until('all but 8 closed', () => flood.filter((s) => !s.destroyed).length <= 8, 3_000);
  t.is((await get(`http://${LO}:${port}/healthz`)).status, 200);
  t.is((await get(`http://${LO}:${port}/readyz`)).status, 200);
  t.true((await openConnections(server)) <= 8);
});

test('slow requests on other routes cannot take the connections the probes need', async (t) => {
  // Every /metrics hangs until released: a scraper flood against a slow render.
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  t.teardown(() => release());
  const view = agentView({ renderMetrics: () => gate.then(() => 'podmesh_up 1\n') });
  const { url } = await agentServer(t, { maxConnections: 16 }, view);
  // 16 connections, 2 kept for the probes: 14 slow scrapes fill the rest.
  const slow = Array.from({ length: 14 }, () => get(`${url}/metrics`, 10_000));
  await new Promise((r) => setTimeout(r, 200));
  const extra = await get(`${url}/metrics`);
  t.is(extra.status, 503, 'one more is turned away at once');
  t.regex(extra.body, /busy/);
  t.is((await get(`${url}/healthz`)).status, 200);
  t.is((await get(`${url}/readyz`)).status, 200);
  release();
  t.deepEqual(
    (await Promise.all(slow)).map((r) => r.status),
    Array.from({ length: 14 }, () => 200),
  );
});

test('a socket that never finishes its headers is closed after headersTimeoutMs', async (t) => {
  const { server } = await agentServer(t, { headersTimeoutMs: 300, requestTimeoutMs: 600 });
  const [silent] = await idleSockets(t, portOf(server), 1);
  const drip = connect(portOf(server), LO);
  t.teardown(() => drip.destroy());
  drip.on('error', () => undefined);
  drip.resume();
  let dripping = true;
  const timer = setInterval(() => {
    if (dripping && !drip.destroyed) drip.write('X');
  }, 50);
  t.teardown(() => clearInterval(timer));
  drip.write('GET /healthz HTTP/1.1\r\nX-Slow: ');
  const closed = (s: Socket): Promise<void> =>
    new Promise((r) => (s.destroyed ? r() : s.once('close', () => r())));
  const started = Date.now();
  await Promise.race([
    Promise.all([closed(silent!), closed(drip)]),
    new Promise((r) => setTimeout(r, 3_000)),
  ]);
  dripping = false;
  t.true(silent!.destroyed || silent!.readableEnded, 'the silent socket was closed');
  t.true(drip.destroyed || drip.readableEnded, 'the slow-drip socket was closed');
  t.true(Date.now() - started < 3_000, `took ${Date.now() - started} ms`);
});

test('an idle keep-alive connection is closed after keepAliveTimeoutMs', async (t) => {
  const { server } = await agentServer(t, { keepAliveTimeoutMs: 300 });
  const s = connect(portOf(server), LO);
  t.teardown(() => s.destroy());
  s.on('error', () => undefined);
  let reply = '';
  s.on('data', (d: Buffer) => (reply += d.toString()));
  const closed = new Promise<number>((r) => s.once('close', () => r(Date.now())));
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write('GET /healthz HTTP/1.1\r\nHost: podmesh\r\n\r\n');
  await until('the answer', () => reply.includes('ok\n'), 2_000);
  const answered = Date.now();
  const at = await Promise.race([
    closed,
    new Promise<number>((r) => setTimeout(() => r(-1), 3_000)),
  ]);
  t.true(at > 0, 'closed by the server');
  t.true(at - answered < 2_000, `after ${at - answered} ms`);
});
