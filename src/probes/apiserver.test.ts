// Tests for the API server check: a real TLS listener on loopback (test/support/tls-apiserver.ts,
// a throw-away certificate), plain TCP listeners that misbehave, and a closed port. Each outcome
// of the closed set that loopback can produce, the /readyz statuses that still count as reached,
// and that no credentials ever leave.

import net from 'node:net';
import test from 'ava';
import { TlsApiServer } from '../../test/support/tls-apiserver.ts';
import { SystemClock } from '../core/clock.ts';
import { checkApiServer, httpStatus } from './apiserver.ts';

const clock = new SystemClock();

/** A TCP listener on loopback that does `onConnection` with each socket. */
async function tcpServer(onConnection: (s: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer(onConnection);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}
const portOf = (s: net.Server): number => (s.address() as net.AddressInfo).port;

test('reached: connect and handshake timed, /readyz 401 counts as reached, no credentials sent', async (t) => {
  const api = await TlsApiServer.start();
  try {
    const r = await checkApiServer(
      { address: api.address, port: api.port, timeoutMs: 2000, readyz: true },
      clock,
    );
    t.is(r.outcome, 'ok', r.detail);
    t.is(r.readyz, 401);
    t.true(r.connectSeconds !== null && r.connectSeconds > 0 && r.connectSeconds < 2);
    t.true(r.tlsSeconds !== null && r.tlsSeconds > 0 && r.tlsSeconds < 2);
    t.is(api.requests.length, 1);
    t.is(api.requests[0]!.path, '/readyz');
    t.is(api.requests[0]!.headers.authorization, undefined);
    t.is(api.requests[0]!.headers.cookie, undefined);
    api.readyzStatus = 200;
    const ready = await checkApiServer(
      { address: api.address, port: api.port, timeoutMs: 2000, readyz: true },
      clock,
    );
    t.is(ready.outcome, 'ok');
    t.is(ready.readyz, 200);
  } finally {
    await api.close();
  }
});

test('without readyz: only the handshake, no request', async (t) => {
  const api = await TlsApiServer.start();
  try {
    const r = await checkApiServer(
      { address: api.address, port: api.port, timeoutMs: 2000, readyz: false },
      clock,
    );
    t.is(r.outcome, 'ok', r.detail);
    t.is(r.readyz, null);
    t.not(r.tlsSeconds, null);
    await new Promise((res) => setTimeout(res, 50));
    t.is(api.connections, 1);
    t.is(api.requests.length, 0);
  } finally {
    await api.close();
  }
});

test('refused: nothing listens', async (t) => {
  const s = await tcpServer(() => undefined);
  const port = portOf(s);
  await new Promise<void>((r) => s.close(() => r()));
  const r = await checkApiServer(
    { address: '127.0.0.1', port, timeoutMs: 1000, readyz: true },
    clock,
  );
  t.is(r.outcome, 'refused');
  t.is(r.connectSeconds, null);
  t.is(r.tlsSeconds, null);
});

test('tls-error: the port answers but does not speak TLS', async (t) => {
  const s = await tcpServer((c) => {
    c.on('error', () => undefined);
    c.end('SSH-2.0-OpenSSH_9.6\r\n');
  });
  try {
    const r = await checkApiServer(
      { address: '127.0.0.1', port: portOf(s), timeoutMs: 1000, readyz: true },
      clock,
    );
    t.is(r.outcome, 'tls-error', r.detail);
    t.not(r.connectSeconds, null);
    t.is(r.tlsSeconds, null);
  } finally {
    await new Promise<void>((r) => s.close(() => r()));
  }
});

test('timeout in the handshake: the connect is accepted, the handshake never answered', async (t) => {
  const held: net.Socket[] = [];
  const s = await tcpServer((c) => {
    c.on('error', () => undefined);
    held.push(c);
  });
  try {
    const r = await checkApiServer(
      { address: '127.0.0.1', port: portOf(s), timeoutMs: 200, readyz: true },
      clock,
    );
    t.is(r.outcome, 'timeout');
    t.regex(r.detail ?? '', /TLS handshake/);
    t.not(r.connectSeconds, null);
    t.is(r.tlsSeconds, null);
  } finally {
    for (const c of held) c.destroy();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

test('httpStatus reads an HTTP/1.x status line only', (t) => {
  t.is(httpStatus('HTTP/1.1 401 Unauthorized\r\n'), 401);
  t.is(httpStatus('HTTP/1.0 200 OK\r\n'), 200);
  t.is(httpStatus('HTTP/1.1 20'), undefined);
  t.is(httpStatus('SSH-2.0-OpenSSH\r\n'), undefined);
});
