// Tests for the TCP connect probe and the TCP listener: real sockets on loopback, and
// nftables tables of our own (we run as root) for the timeout and unreachable outcomes.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import pLimit from 'p-limit';
import { SystemClock } from '../core/clock.ts';
import type { Peer, ProbeTarget } from '../core/types.ts';
import { TcpListener } from './tcp-listener.ts';
import { TcpProbe, probeTcpPort } from './tcp.ts';

const clock = new SystemClock();
const isRoot = process.getuid?.() === 0;
const rootTest = isRoot ? test : test.skip;
if (!isRoot)
  console.warn('tcp.test.ts: not root, the nftables tests (timeout, unreachable) are skipped');

function target(address: string, tcpPort: number): ProbeTarget {
  const peer: Peer = {
    id: 'n1/pod',
    node: 'n1',
    network: 'pod',
    zone: 'z',
    address,
    stampPort: 0,
    tcpPort,
    httpPort: 0,
  };
  return { peer, size: 'small', bytes: 64 };
}

function randomLoopback(): string {
  const b = randomBytes(3);
  return `127.${100 + ((b[0] ?? 0) % 100)}.${b[1] ?? 0}.${1 + ((b[2] ?? 0) % 254)}`;
}

function nftTable(t: ExecutionContext, rules: string[]): void {
  const name = `podmesh_test_${randomBytes(4).toString('hex')}`;
  const script = `table inet ${name} {
  chain input {
    type filter hook input priority -10; policy accept;
    ${rules.join('\n    ')}
  }
}
`;
  execFileSync('/usr/sbin/nft', ['-f', '-'], { input: script });
  t.teardown(() => {
    execFileSync('/usr/sbin/nft', ['delete', 'table', 'inet', name]);
  });
}

async function startListener(
  t: ExecutionContext,
  address = '127.0.0.1',
  idleMs?: number,
): Promise<TcpListener> {
  const l = await TcpListener.start(
    idleMs === undefined ? { address, port: 0 } : { address, port: 0, idleMs },
  );
  t.teardown(() => l.close());
  return l;
}

/** A port that was just free: bound, noted, released. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function eventually(check: () => boolean, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return check();
}

/** Sockets on a local or remote port in the given /proc/net/tcp state (06 = TIME_WAIT). */
function socketsInState(port: number, state: string): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== state) continue;
    if (f[1]?.endsWith(`:${hex}`) === true || f[2]?.endsWith(`:${hex}`) === true) n++;
  }
  return n;
}

test('open: connects to the TcpListener and times the handshake', async (t) => {
  const l = await startListener(t);
  t.true(l.port > 0);
  const probe = new TcpProbe({ clock });
  t.teardown(() => probe.close());
  const r = await probe.run(target('127.0.0.1', l.port), 1000);
  t.true(r.ok, JSON.stringify(r));
  if (!r.ok) return;
  t.like(r, { kind: 'tcp', peerId: 'n1/pod', size: 'small' });
  t.true(r.rttSeconds > 0 && r.rttSeconds < 0.5, `rtt ${r.rttSeconds}`);
  t.true(await eventually(() => l.stats().accepted === 1));
});

test('refused: nothing listens on the port', async (t) => {
  const port = await closedPort();
  const r = await probeTcpPort('127.0.0.1', port, 1000, clock);
  t.is(r.outcome, 'refused');
  t.true(r.seconds >= 0 && r.seconds < 0.5);
  const probe = new TcpProbe({ clock });
  t.like(await probe.run(target('127.0.0.1', port), 1000), { ok: false, reason: 'refused' });
});

rootTest('timeout: SYNs dropped by a firewall rule', async (t) => {
  const dst = randomLoopback();
  const port = 40_000 + (randomBytes(2).readUInt16BE() % 20_000);
  nftTable(t, [`ip daddr ${dst} tcp dport ${port} drop`]);
  const r = await probeTcpPort(dst, port, 300, clock);
  t.is(r.outcome, 'timeout');
  t.true(r.seconds >= 0.29 && r.seconds < 2, `seconds ${r.seconds}`);
  // The socket was destroyed: nothing keeps retrying the handshake.
  t.is(socketsInState(port, '02'), 0);
});

rootTest('unreachable: an ICMP host-unreachable answers the SYN', async (t) => {
  const dst = randomLoopback();
  const port = 40_000 + (randomBytes(2).readUInt16BE() % 20_000);
  nftTable(t, [`ip daddr ${dst} tcp dport ${port} reject with icmp type host-unreachable`]);
  const r = await probeTcpPort(dst, port, 2000, clock);
  t.is(r.outcome, 'unreachable');
  t.is(r.detail, 'EHOSTUNREACH');
});

test('bindAddress sets the source address of the connection', async (t) => {
  const src = randomLoopback();
  const seen: string[] = [];
  const server = net.createServer((s) => {
    seen.push(s.remoteAddress ?? '');
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as net.AddressInfo).port;
  const r = await new TcpProbe({ clock, bindAddress: src }).run(target('127.0.0.1', port), 1000);
  t.true(r.ok);
  t.true(await eventually(() => seen.length === 1));
  t.deepEqual(seen, [src]);
});

test('bad input resolves as error instead of throwing', async (t) => {
  t.like(await probeTcpPort('127.0.0.1', 70_000, 500, clock), { outcome: 'error' });
  t.like(await probeTcpPort('127.0.0.1', 1, 500, clock, '10.255.255.1'), {
    outcome: 'unreachable',
  });
});

test('close() ends in-flight probes and later runs', async (t) => {
  const dst = randomLoopback();
  const port = 40_000 + (randomBytes(2).readUInt16BE() % 20_000);
  if (isRoot) nftTable(t, [`ip daddr ${dst} tcp dport ${port} drop`]);
  else return t.pass();
  const probe = new TcpProbe({ clock });
  const inflight = probe.run(target(dst, port), 30_000);
  await new Promise((r) => setTimeout(r, 50));
  await probe.close();
  t.like(await inflight, { ok: false, reason: 'error', detail: 'aborted' });
  t.like(await probe.run(target('127.0.0.1', 1), 500), { ok: false, reason: 'error' });
});

test('2,000 probes against the listener leave almost no TIME_WAIT sockets', async (t) => {
  const l = await startListener(t);
  const probe = new TcpProbe({ clock });
  const limit = pLimit(20);
  const results = await Promise.all(
    Array.from({ length: 2000 }, () => limit(() => probe.run(target('127.0.0.1', l.port), 2000))),
  );
  t.is(results.filter((r) => !r.ok).length, 0);
  // Generous wait: under a full parallel test run the accepts can trail the probes by seconds.
  t.true(
    await eventually(() => l.stats().accepted === 2000, 15_000),
    `accepted ${l.stats().accepted} of 2000`,
  );
  const timeWait = socketsInState(l.port, '06');
  t.true(timeWait < 50, `${timeWait} sockets in TIME_WAIT`);
  // Reset connections leave the listener nothing to hold on to either.
  t.true(await eventually(() => socketsInState(l.port, '01') === 0));
});

test('listener resets connections left idle', async (t) => {
  const l = await startListener(t, '127.0.0.1', 200);
  const client = net.connect({ host: '127.0.0.1', port: l.port });
  const started = Date.now();
  const ended = new Promise<string>((resolve) => {
    client.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    client.on('close', () => resolve('close'));
  });
  client.on('connect', () => client.write('anything'));
  const how = await ended;
  t.is(how, 'ECONNRESET');
  t.true(Date.now() - started >= 180, `closed after ${Date.now() - started} ms`);
  t.is(socketsInState(l.port, '06'), 0);
});

test('listener close() resets open connections and stops accepting', async (t) => {
  const l = await TcpListener.start({ address: '127.0.0.1', port: 0 });
  const client = net.connect({ host: '127.0.0.1', port: l.port });
  client.on('error', () => {});
  await new Promise((r) => client.once('connect', r));
  t.true(await eventually(() => l.stats().accepted === 1));
  const closedClient = new Promise((r) => client.once('close', r));
  await l.close();
  await closedClient;
  t.is((await probeTcpPort('127.0.0.1', l.port, 500, clock)).outcome, 'refused');
  await t.throwsAsync(TcpListener.start({ address: '127.0.0.1', port: -1 }));
});
