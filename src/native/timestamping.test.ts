// Tests for the timestamping addon and its loader: the kernel's times are monotonic and sit
// inside what JavaScript saw (after the call that sent, before the callback that received, all
// on CLOCK_REALTIME); the addon works on a worker thread and survives one ending with a socket
// open; errors come back as Errors with an errno code; and every way the loader can decline
// says why. On Linux the addon must be built (`npm ci` does it): a missing build fails here
// rather than quietly testing only the fallback, unless PODMESH_TIMESTAMPS=userspace.

import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import test from 'ava';
import {
  EventType,
  SocketKind,
  Stamps,
  TIMESTAMPS_ENV,
  addonCandidates,
  loadTimestamping,
  nativeErrno,
  type NativeSocket,
  type TimestampingAddon,
} from './timestamping.ts';

const load = loadTimestamping();
const forcedOff = process.env[TIMESTAMPS_ENV] === 'userspace';
const kernelTest = forcedOff ? test.skip : test;

function addon(): TimestampingAddon {
  if (!load.ok) throw new Error(`the timestamping addon did not load: ${load.reason}`);
  return load.addon;
}

interface Received {
  readonly payload: string;
  readonly rx: bigint | undefined;
  /** realtimeNs() as the JavaScript callback started. */
  readonly seenAt: bigint;
  readonly ttl: number;
}

function udpPair(stamps: (typeof Stamps)[keyof typeof Stamps] = Stamps.both): {
  sock: NativeSocket;
  received: Received[];
  arrived: (n: number) => Promise<void>;
} {
  const a = addon();
  const received: Received[] = [];
  let waiter: { n: number; resolve: () => void } | undefined;
  const sock = new a.Socket(
    SocketKind.udp,
    '127.0.0.1',
    0,
    stamps,
    (type, buf, _addr, _port, rx, ttl) => {
      const seenAt = a.realtimeNs();
      if (type !== EventType.message) return;
      received.push({
        payload: (buf as Buffer).toString(),
        rx: rx as bigint | undefined,
        seenAt,
        ttl: ttl as number,
      });
      if (waiter !== undefined && received.length >= waiter.n) waiter.resolve();
    },
  );
  return {
    sock,
    received,
    arrived: (n) =>
      received.length >= n
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`only ${received.length}/${n} arrived`)),
              5000,
            );
            waiter = {
              n,
              resolve: () => {
                clearTimeout(timer);
                resolve();
              },
            };
          }),
  };
}

test('on Linux the addon loads (npm ci builds it)', (t) => {
  if (process.platform !== 'linux' || forcedOff) {
    t.false(load.ok);
    return;
  }
  t.true(load.ok, load.ok ? '' : load.reason);
});

kernelTest('realtimeNs() is CLOCK_REALTIME: it agrees with Date.now()', (t) => {
  const a = addon();
  const before = BigInt(Date.now()) * 1_000_000n;
  const now = a.realtimeNs();
  const after = BigInt(Date.now() + 1) * 1_000_000n;
  t.true(now >= before && now <= after, `${before} <= ${now} <= ${after}`);
});

kernelTest(
  'UDP: kernel send and receive times are monotonic and bracket the JavaScript times',
  async (t) => {
    const { sock, received, arrived } = udpPair();
    t.teardown(() => sock.close());
    t.true(sock.rxKernel);
    t.true(sock.txKernel);
    const a = addon();
    const sends: { id: number; before: bigint; after: bigint }[] = [];
    const n = 50;
    for (let i = 0; i < n; i++) {
      const before = a.realtimeNs();
      const id = sock.send(Buffer.from(`p${i}`), '127.0.0.1', sock.port);
      sends.push({ id, before, after: a.realtimeNs() });
      // Some spacing, so the order of the times means something.
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 2));
    }
    await arrived(n);
    t.deepEqual(
      received.map((r) => r.payload),
      sends.map((_, i) => `p${i}`),
    );
    let lastTx = 0n;
    let lastRx = 0n;
    for (const [i, s] of sends.entries()) {
      const tx = sock.txTime(s.id);
      const r = received[i]!;
      if (tx === undefined || r.rx === undefined) return t.fail(`packet ${i}: tx ${tx} rx ${r.rx}`);
      // Sent after JavaScript called send(); the kernel had it before JavaScript was told.
      t.true(tx >= s.before, `tx ${tx} >= before-send ${s.before}`);
      t.true(r.rx >= tx, `rx ${r.rx} >= tx ${tx}`);
      t.true(r.rx <= r.seenAt, `rx ${r.rx} <= seen ${r.seenAt}`);
      t.true(tx >= lastTx && r.rx >= lastRx, 'monotonic');
      lastTx = tx;
      lastRx = r.rx;
      t.is(r.ttl, 64);
    }
    // A transmit time is filed under its own id only.
    t.is(sock.txTime(sends.at(-1)!.id + 1), undefined);
  },
);

kernelTest('UDP: with no kernel stamps asked for, none come', async (t) => {
  const { sock, received, arrived } = udpPair(Stamps.none);
  t.teardown(() => sock.close());
  t.false(sock.rxKernel);
  t.false(sock.txKernel);
  const id = sock.send(Buffer.from('x'), '127.0.0.1', sock.port);
  await arrived(1);
  t.is(received[0]!.rx, undefined);
  t.is(sock.txTime(id), undefined);
});

kernelTest('errors carry the errno name; nothing throws past them', (t) => {
  const a = addon();
  const { sock } = udpPair();
  const taken = sock.port;
  const e1 = t.throws(
    () => new a.Socket(SocketKind.udp, '127.0.0.1', taken, Stamps.both, () => undefined),
  );
  t.is(nativeErrno(e1), 'EADDRINUSE');
  t.is(nativeErrno(t.throws(() => sock.send(Buffer.from('x'), 'not-an-address', 9))), 'EINVAL');
  t.is(nativeErrno(t.throws(() => sock.send(Buffer.from('x'), '127.0.0.1', 0))), 'EINVAL');
  t.is(nativeErrno(t.throws(() => sock.setOption(1, 9999, 1))), 'ENOPROTOOPT');
  t.throws(() => new a.Socket(SocketKind.udp, '127.0.0.1', 70_000, Stamps.both, () => undefined));
  t.throws(() => new a.Socket(7 as SocketKind, '127.0.0.1', 0, Stamps.both, () => undefined));
  sock.close();
  sock.close();
  t.is(nativeErrno(t.throws(() => sock.send(Buffer.from('x'), '127.0.0.1', 9))), 'EBADF');
});

/** Runs `body` (an ES module's source) on a worker thread; resolves with its first message. */
async function onWorker(body: string): Promise<unknown> {
  const path = load.ok ? load.path : '';
  const code = `import { parentPort } from 'node:worker_threads';
    import { createRequire } from 'node:module';
    const addon = createRequire(${JSON.stringify(path)})(${JSON.stringify(path)});
    ${body}`;
  const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`));
  try {
    return await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
  } finally {
    await w.terminate();
  }
}

kernelTest('works on a worker thread: the socket polls that thread’s own event loop', async (t) => {
  const msg = await onWorker(`
    const s = new addon.Socket(0, '127.0.0.1', 0, 2, (type, buf, a, p, rx) => {
      const tx = s.txTime(0);
      s.close();
      parentPort.postMessage({ type, payload: buf.toString(), rx: typeof rx, tx: typeof tx });
    });
    s.send(Buffer.from('from the worker'), '127.0.0.1', s.port);`);
  t.deepEqual(msg, { type: 0, payload: 'from the worker', rx: 'bigint', tx: 'bigint' });
});

kernelTest('a worker that ends with a socket still open takes it down cleanly', async (t) => {
  const msg = await onWorker(`
    const s = new addon.Socket(0, '127.0.0.1', 0, 2, () => {});
    parentPort.postMessage(s.port);`);
  t.true(typeof msg === 'number' && msg > 0);
  // The worker is gone (terminate() in onWorker); the port it held is free again.
  const a = addon();
  const again = new a.Socket(
    SocketKind.udp,
    '127.0.0.1',
    msg as number,
    Stamps.both,
    () => undefined,
  );
  t.is(again.port, msg as number);
  again.close();
});

kernelTest(
  'an exception in the event callback reaches uncaughtException, not a crash',
  async (t) => {
    const msg = await onWorker(`
    process.on('uncaughtException', (e) => { parentPort.postMessage(String(e.message)); });
    const s = new addon.Socket(0, '127.0.0.1', 0, 2, () => { s.close(); throw new Error('boom'); });
    s.send(Buffer.from('x'), '127.0.0.1', s.port);`);
    t.is(msg, 'boom');
  },
);

test('the loader: PODMESH_TIMESTAMPS=userspace forces the fallback and says so', (t) => {
  const r = loadTimestamping({ [TIMESTAMPS_ENV]: 'userspace' });
  t.false(r.ok);
  if (!r.ok) t.regex(r.reason, /PODMESH_TIMESTAMPS=userspace/);
  const bad = loadTimestamping({ [TIMESTAMPS_ENV]: 'fast' });
  t.false(bad.ok);
  if (!bad.ok) t.regex(bad.reason, /not one of auto, kernel, userspace/);
});

test('the loader: a missing build and a file that is not the addon are reasons, not throws', (t) => {
  const missing = loadTimestamping({}, ['/nonexistent/podmesh_timestamping.node']);
  t.false(missing.ok);
  if (!missing.ok)
    t.regex(missing.reason, process.platform === 'linux' ? /not built.*build:native/ : /Linux/);
  if (process.platform !== 'linux') return;
  const junk = join(os.tmpdir(), `podmesh-junk-${process.pid}.node`);
  writeFileSync(junk, 'not a shared object');
  const r = loadTimestamping({}, [junk]);
  t.false(r.ok);
  if (!r.ok) t.regex(r.reason, /cannot load/);
});

test('the loader looks next to itself first, then where a compiled build finds the source tree', (t) => {
  const c = addonCandidates('file:///app/dist/src/native/timestamping.js');
  t.deepEqual(c, [
    '/app/dist/src/native/build/Release/podmesh_timestamping.node',
    '/app/dist/src/native/podmesh_timestamping.node',
    '/app/src/native/build/Release/podmesh_timestamping.node',
  ]);
});
