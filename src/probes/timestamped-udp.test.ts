// Tests for the timestamped UDP socket's choice of implementation: the addon's kernel
// timestamps where it loads and the kernel grants them, user-space ones (labelled, with the
// reason) when the addon is missing, forced off, or the kernel refuses the socket option; and
// bind errors reach the caller either way; a socket libuv stops polling is reopened and counted.

import dgram from 'node:dgram';
import test from 'ava';
import { SystemClock } from '../core/clock.ts';
import {
  loadTimestamping,
  type AddonLoad,
  type NativeEventHandler,
  type NativeSocket,
  type TimestampingAddon,
} from '../native/timestamping.ts';
// A namespace import: the tally is read as a property, so this file loads on code without it.
import * as probeModule from './probe.ts';
import { openTimestampedUdp, type DatagramInfo } from './timestamped-udp.ts';

const clock = new SystemClock();
const realAddon = loadTimestamping();
const kernelTest = realAddon.ok ? test : test.skip;

/** An addon whose sockets say the kernel refused the timestamping options. */
function refusingAddon(): { load: AddonLoad; closed: () => number } {
  let closed = 0;
  class Socket {
    readonly port = 40000;
    readonly address = '127.0.0.1';
    readonly rxKernel = false;
    readonly txKernel = false;
    constructor(_k: number, _a: string, _p: number, _s: number, _cb: NativeEventHandler) {}
    send(): number {
      return 0;
    }
    txTime(): undefined {
      return undefined;
    }
    setOption(): void {}
    close(): void {
      closed++;
    }
  }
  const addon: TimestampingAddon = { Socket, realtimeNs: () => 0n };
  return { load: { ok: true, addon, path: 'fake' }, closed: () => closed };
}

async function echoOnce(
  open: (onMessage: (m: Buffer, i: DatagramInfo) => void) => ReturnType<typeof openTimestampedUdp>,
): Promise<DatagramInfo> {
  let got: ((i: DatagramInfo) => void) | undefined;
  const arrived = new Promise<DatagramInfo>((resolve) => (got = resolve));
  const sock = await open((_m, info) => got?.(info));
  try {
    sock.send(Buffer.from('x'), sock.port, '127.0.0.1', () => undefined);
    return await arrived;
  } finally {
    await sock.close();
  }
}

kernelTest('with the addon: kernel source, transmit times, TTL read', async (t) => {
  let got: ((i: DatagramInfo) => void) | undefined;
  const arrived = new Promise<DatagramInfo>((resolve) => (got = resolve));
  const sock = await openTimestampedUdp({
    clock,
    address: '127.0.0.1',
    port: 0,
    transmitStamps: true,
    onMessage: (_m, info) => got?.(info),
  });
  t.teardown(() => sock.close());
  t.is(sock.source, 'kernel');
  t.regex(sock.timestamps.detail, /receive and transmit/);
  const before = sock.now();
  const ticket = sock.send(Buffer.from('x'), sock.port, '127.0.0.1', () => undefined);
  const info = await arrived;
  const tx = sock.txTime(ticket);
  t.true(tx !== undefined && tx >= before && info.rxTime >= tx);
  t.is(info.ttl, 64);
  // Kernel times are wall-clock (CLOCK_REALTIME) already.
  t.is(sock.unixNs(info.rxTime), info.rxTime);
});

test('timestamps: "userspace" uses dgram, labelled, with the reason', async (t) => {
  const sock = await openTimestampedUdp({
    clock,
    address: '127.0.0.1',
    port: 0,
    transmitStamps: true,
    timestamps: 'userspace',
    onMessage: () => undefined,
  });
  t.teardown(() => sock.close());
  t.is(sock.source, 'userspace');
  t.regex(sock.timestamps.detail, /user-space timestamps: user-space timestamps requested/);
  t.is(sock.txTime(0), undefined);
  const info = await echoOnce((onMessage) =>
    openTimestampedUdp({
      clock,
      address: '127.0.0.1',
      port: 0,
      transmitStamps: true,
      timestamps: 'userspace',
      onMessage,
    }),
  );
  t.is(info.ttl, undefined);
  // User-space times are on the injected clock's monotonic scale; unixNs maps them to wall time.
  const wall = Number(sock.unixNs(clock.monoNs())) / 1e6;
  t.true(Math.abs(wall - Date.now()) < 1000, `${wall} vs ${Date.now()}`);
});

test('an addon that failed to load: userspace, and the load reason is the detail', async (t) => {
  const sock = await openTimestampedUdp({
    clock,
    address: '127.0.0.1',
    port: 0,
    transmitStamps: false,
    addon: { ok: false, reason: 'cannot load it: wrong ELF class' },
    onMessage: () => undefined,
  });
  t.teardown(() => sock.close());
  t.is(sock.source, 'userspace');
  t.regex(sock.timestamps.detail, /wrong ELF class/);
});

test('the kernel refusing SO_TIMESTAMPING: the addon socket is closed, dgram takes over', async (t) => {
  const fake = refusingAddon();
  const info = await echoOnce((onMessage) =>
    openTimestampedUdp({
      clock,
      address: '127.0.0.1',
      port: 0,
      transmitStamps: true,
      addon: fake.load,
      onMessage,
    }),
  );
  t.is(fake.closed(), 1);
  t.true(typeof info.rxTime === 'bigint');
  const sock = await openTimestampedUdp({
    clock,
    address: '127.0.0.1',
    port: 0,
    transmitStamps: true,
    addon: fake.load,
    onMessage: () => undefined,
  });
  t.teardown(() => sock.close());
  t.is(sock.source, 'userspace');
  t.regex(sock.timestamps.detail, /refused SO_TIMESTAMPING/);
});

for (const timestamps of ['auto', 'userspace'] as const) {
  test(`${timestamps}: a port in use is the caller's error`, async (t) => {
    const first = await openTimestampedUdp({
      clock,
      address: '127.0.0.1',
      port: 0,
      transmitStamps: false,
      timestamps,
      onMessage: () => undefined,
    });
    t.teardown(() => first.close());
    const err = await t.throwsAsync(
      openTimestampedUdp({
        clock,
        address: '127.0.0.1',
        port: first.port,
        transmitStamps: false,
        timestamps,
        onMessage: () => undefined,
      }),
    );
    t.is((err as { code?: string } | undefined)?.code, 'EADDRINUSE');
  });
}

/** The real addon, remembering every socket it opens, so a test can reach under the wrapper. */
function watchedAddon(): { load: AddonLoad; sockets: NativeSocket[] } {
  const sockets: NativeSocket[] = [];
  if (!realAddon.ok) return { load: realAddon, sockets };
  const Native = realAddon.addon.Socket;
  const Socket = function (...args: ConstructorParameters<typeof Native>) {
    const s = new Native(...args);
    sockets.push(s);
    return s;
  } as unknown as typeof Native;
  return { load: { ...realAddon, addon: { ...realAddon.addon, Socket } }, sockets };
}

/** A UDP port nothing listens on right now. */
async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

kernelTest(
  'a socket libuv stops polling is reopened on its own port and counted, not left deaf (issue 14.4)',
  async (t) => {
    const watched = watchedAddon();
    const got: string[] = [];
    const port = await freePort();
    const nobody = await freePort();
    const before = probeModule.socketReopens?.totals().stamp_reflector ?? 0;
    // A reflector's socket: a fixed port, receive stamps only.
    const sock = await openTimestampedUdp({
      clock,
      address: '127.0.0.1',
      port,
      transmitStamps: false,
      addon: watched.load,
      onMessage: (m) => got.push(m.toString()),
    });
    t.teardown(() => sock.close());
    const peer = dgram.createSocket('udp4');
    t.teardown(() => new Promise<void>((resolve) => peer.close(() => resolve())));
    // Make the kernel raise a bare POLLERR, which libuv takes for a dead descriptor and stops
    // polling: SO_SELECT_ERR_QUEUE off (no POLLPRI beside it) and IP_RECVERR on, then send to
    // a closed port, whose ICMP port-unreachable lands on the error queue.
    const native = watched.sockets[0]!;
    native.setOption(1, 45, 0);
    native.setOption(0, 11, 1);
    sock.send(Buffer.from('to nobody'), nobody, '127.0.0.1', () => undefined);
    // Datagrams keep coming to the reflector's port; one must get through.
    for (let i = 0; i < 60 && !got.includes('hello'); i++) {
      peer.send('hello', port, '127.0.0.1');
      await sleep(50);
    }
    t.true(
      got.includes('hello'),
      `nothing arrived after the poll error; got ${JSON.stringify(got)}`,
    );
    t.is(sock.port, port);
    t.is(watched.sockets.length, 2);
    t.is(probeModule.socketReopens?.totals().stamp_reflector, before + 1);
  },
);
