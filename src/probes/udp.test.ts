// Tests for the STAMP session-sender probe over real loopback sockets: against the real
// reflector (both modes), and against small hand-made reflectors built from the codec that
// delay, drop, duplicate or reorder on purpose, so RTT, dwell removal and forward/reverse loss
// attribution are checked against known ground truth. With kernel timestamps a reflector held up
// by a busy thread shows as dwell and stays out of the RTT (with user-space ones it lands in the
// RTT, which the same test shows); PODMESH_TIMESTAMPS=userspace is checked end to end.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { Worker } from 'node:worker_threads';
import { SystemClock } from '../core/clock.ts';
import { FakeClock } from '../../test/support/fake-clock.ts';
import type { Peer, ProbeResult, ProbeTarget, SizeClass, StampDetail } from '../core/types.ts';
import {
  decodeSenderPacket,
  encodeReflectorPacket,
  ntpFromUnixMs,
  type SenderPacket,
} from './stamp-codec.ts';
import { StampReflector } from '../responders/stamp-reflector.ts';
import { UdpStampProbe, payloadLength } from './udp.ts';
import {
  loadTimestamping,
  type AddonLoad,
  type NativeSocket,
  type TimestampingAddon,
} from '../native/timestamping.ts';
import { holdKernelRxStamps } from '../../test/support/kernel-rx-stamps.ts';

const KEY = Buffer.from('udp-probe-test-key');
const clock = new SystemClock();
const addon = loadTimestamping();
holdKernelRxStamps(test);

function peer(port: number, id = 'node-b/pod'): Peer {
  const [node = 'node-b', network = 'pod'] = id.split('/');
  return {
    id,
    node,
    network: network === 'host' ? 'host' : 'pod',
    zone: 'zone-a',
    address: '127.0.0.1',
    stampPort: port,
    tcpPort: 0,
    httpPort: 0,
  };
}

function target(port: number, size: SizeClass = 'small', bytes = 64, id?: string): ProbeTarget {
  return { peer: peer(port, id), size, bytes };
}

function stampOf(r: ProbeResult): StampDetail {
  if (!r.ok || r.stamp === undefined)
    throw new Error(`expected an answered probe, got ${JSON.stringify(r)}`);
  return r.stamp;
}

/** A bare UDP server on 127.0.0.1 for hand-made reflectors. */
async function server(
  onMessage: (msg: Buffer, rinfo: dgram.RemoteInfo, sock: dgram.Socket) => void,
): Promise<{ port: number; sock: dgram.Socket; close: () => Promise<void> }> {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => onMessage(msg, rinfo, sock));
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
  return {
    port: sock.address().port,
    sock,
    close: () => new Promise((resolve) => sock.close(() => resolve())),
  };
}

/** An honest reflector reply for `p` (fresh Buffer, same length as the request). */
function replyFor(
  p: SenderPacket,
  length: number,
  r: number,
  t2: bigint,
  t3: bigint,
  key?: Buffer,
): Buffer {
  return encodeReflectorPacket(
    {
      seq: r,
      timestamp: t3,
      errorEstimate: 1,
      receiveTimestamp: t2,
      senderSeq: p.seq,
      senderTimestamp: p.timestamp,
      senderErrorEstimate: p.errorEstimate,
      senderTtl: 0,
    },
    { length, authKey: key },
  );
}

async function setup(t: { teardown: (fn: () => Promise<void>) => void }, key?: Buffer) {
  const reflector = await StampReflector.start({
    clock,
    address: '127.0.0.1',
    port: 0,
    authKey: key,
  });
  const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1', authKey: key });
  t.teardown(async () => {
    await probe.close();
    await reflector.close();
  });
  return { reflector, probe };
}

for (const mode of ['unauthenticated', 'authenticated'] as const) {
  const key = mode === 'authenticated' ? KEY : undefined;
  test(`${mode}: probes against the real reflector succeed with a small positive RTT`, async (t) => {
    const { reflector, probe } = await setup(t, key);
    for (let i = 0; i < 5; i++) {
      const before = Date.now();
      const started = performance.now();
      const r = await probe.run(target(reflector.port), 1000);
      const elapsedS = (performance.now() - started) / 1000;
      if (!r.ok) return t.fail(`${r.reason} ${r.detail ?? ''}`);
      t.is(r.kind, 'udp');
      t.is(r.peerId, 'node-b/pod');
      t.true(r.sentAtMs >= before - 1 && r.sentAtMs <= Date.now() + 1);
      t.true(r.rttSeconds > 0 && r.rttSeconds < 0.1, `rtt ${r.rttSeconds}`);
      const s = stampOf(r);
      t.deepEqual([s.forwardLost, s.reverseLost, s.duplicates, s.reordered], [0, 0, 0, 0]);
      // The dwell includes any wait for this (shared, busy) event loop once the kernel had the
      // packet, so it is bounded by the round trip as this test saw it, not by a constant.
      t.true(
        s.reflectorDwellSeconds >= 0 && r.rttSeconds + s.reflectorDwellSeconds <= elapsedS + 1e-3,
        `dwell ${s.reflectorDwellSeconds} rtt ${r.rttSeconds} elapsed ${elapsedS}`,
      );
    }
    t.is(reflector.stats().reflected, 5);
    t.deepEqual(probe.stats(), {
      sent: 5,
      received: 5,
      malformedReplies: 0,
      authFailed: 0,
      unmatched: 0,
      txStampMissing: 0,
    });
  });
}

test('mismatched keys: the reflector refuses the probe, which times out', async (t) => {
  const reflector = await StampReflector.start({
    clock,
    address: '127.0.0.1',
    port: 0,
    authKey: KEY,
  });
  const probe = await UdpStampProbe.open({
    clock,
    bindAddress: '127.0.0.1',
    authKey: Buffer.from('wrong'),
  });
  t.teardown(async () => {
    await probe.close();
    await reflector.close();
  });
  const r = await probe.run(target(reflector.port), 200);
  t.like(r, { ok: false, reason: 'timeout' });
  t.is(reflector.stats().authFailed, 1);
  t.is(reflector.stats().reflected, 0);
});

test('a reply with a bad HMAC or too short is counted and ignored by the sender', async (t) => {
  let mode: 'badkey' | 'short' = 'badkey';
  const srv = await server((msg, rinfo, sock) => {
    const d = decodeSenderPacket(msg, KEY);
    if (!d.ok) return;
    const t2 = ntpFromUnixMs(clock.nowMs());
    const reply =
      mode === 'badkey'
        ? replyFor(d.packet, msg.length, 0, t2, t2, Buffer.from('wrong'))
        : Buffer.alloc(111);
    sock.send(reply, rinfo.port, rinfo.address);
  });
  const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1', authKey: KEY });
  t.teardown(async () => {
    await probe.close();
    await srv.close();
  });
  t.like(await probe.run(target(srv.port), 200), { ok: false, reason: 'timeout' });
  mode = 'short';
  t.like(await probe.run(target(srv.port), 200), { ok: false, reason: 'timeout' });
  t.like(probe.stats(), { sent: 2, received: 2, authFailed: 1, malformedReplies: 1 });
});

test('replies from an unknown source or for a never-sent sequence number are unmatched', async (t) => {
  const { reflector, probe } = await setup(t);
  const stranger = await server(() => undefined);
  t.teardown(() => stranger.close());
  t.true((await probe.run(target(reflector.port), 1000)).ok);
  const t2 = ntpFromUnixMs(clock.nowMs());
  const bogus = replyFor({ seq: 0, timestamp: t2, errorEstimate: 1 }, 44, 0, t2, t2);
  await new Promise<void>((r) => stranger.sock.send(bogus, probe.port, '127.0.0.1', () => r()));
  // From the reflector's own address:port but for a sequence number far in the future.
  const fake = await server(() => undefined);
  t.teardown(() => fake.close());
  const far = replyFor({ seq: 999_999, timestamp: t2, errorEstimate: 1 }, 44, 5, t2, t2);
  const p2 = peer(fake.port, 'node-c/pod');
  const pending = probe.run({ peer: p2, size: 'small', bytes: 64 }, 300);
  await new Promise<void>((r) => fake.sock.send(far, probe.port, '127.0.0.1', () => r()));
  t.like(await pending, { ok: false, reason: 'timeout' });
  t.is(probe.stats().unmatched, 2);
});

test('the reflector dwell (T3 - T2) is taken out of the RTT', async (t) => {
  const srv = await server((msg, rinfo, sock) => {
    const t2 = ntpFromUnixMs(clock.nowMs());
    const d = decodeSenderPacket(msg);
    if (!d.ok) return;
    setTimeout(() => {
      const t3 = ntpFromUnixMs(clock.nowMs());
      sock.send(replyFor(d.packet, msg.length, 0, t2, t3), rinfo.port, rinfo.address);
    }, 300);
  });
  const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1' });
  t.teardown(async () => {
    await probe.close();
    await srv.close();
  });
  const started = process.hrtime.bigint();
  const r = await probe.run(target(srv.port), 1000);
  const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
  if (!r.ok) return t.fail(r.reason);
  // A long dwell keeps this honest on a loaded machine: whatever the scheduling noise, the
  // RTT must be the elapsed time minus the dwell, far below the dwell itself.
  const dwell = stampOf(r).reflectorDwellSeconds;
  t.true(elapsedS >= 0.299, `the answer really took ${elapsedS}s`);
  t.true(dwell >= 0.299, `dwell ${dwell}`);
  t.true(r.rttSeconds > 0 && r.rttSeconds < 0.2, `rtt ${r.rttSeconds} must exclude the 300 ms`);
  t.true(r.rttSeconds <= elapsedS - dwell + 0.001, `rtt ${r.rttSeconds} <= ${elapsedS} - ${dwell}`);
});

test('a reflector claiming a dwell longer than the RTT cannot make the RTT negative', async (t) => {
  const srv = await server((msg, rinfo, sock) => {
    const d = decodeSenderPacket(msg);
    if (!d.ok) return;
    const t2 = ntpFromUnixMs(clock.nowMs());
    sock.send(
      replyFor(d.packet, msg.length, 0, t2, ntpFromUnixMs(clock.nowMs() + 5000)),
      rinfo.port,
      rinfo.address,
    );
  });
  const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1' });
  t.teardown(async () => {
    await probe.close();
    await srv.close();
  });
  const r = await probe.run(target(srv.port), 1000);
  if (!r.ok) return t.fail(r.reason);
  t.is(r.rttSeconds, 0);
  t.true(stampOf(r).reflectorDwellSeconds < 1);
});

test('timeout when nothing listens', async (t) => {
  const gone = await server(() => undefined);
  const port = gone.port;
  await gone.close();
  const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1' });
  t.teardown(() => probe.close());
  const started = Date.now();
  const r = await probe.run(target(port), 150);
  t.like(r, { ok: false, reason: 'timeout', kind: 'udp', peerId: 'node-b/pod', size: 'small' });
  t.true(Date.now() - started >= 140);
});

/** Holds this thread (and so every socket it serves) for `ms`, as a busy agent would. */
function hold(ms: number): void {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    // busy: a /metrics render, a big JSON response, a GC pause
  }
}

for (const timestamps of ['auto', 'userspace'] as const) {
  test(`${timestamps}: a reflector held up by a busy thread, and the RTT`, async (t) => {
    const reflector = await StampReflector.start({
      clock,
      address: '127.0.0.1',
      port: 0,
      timestamps,
    });
    const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1', timestamps });
    t.teardown(async () => {
      await probe.close();
      await reflector.close();
    });
    const kernel = timestamps === 'auto' && addon.ok;
    t.is(probe.timestamps.source, kernel ? 'kernel' : 'userspace');
    t.is(reflector.timestamps.source, kernel ? 'kernel' : 'userspace');
    const holdMs = 30;
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      // run() has sent the request before it returns; the reflector, on this same thread,
      // can't read it until the hold is over.
      const pending = probe.run(target(reflector.port), 2000);
      hold(holdMs);
      const r = await pending;
      const elapsedS = (performance.now() - started) / 1000;
      const dwell = stampOf(r).reflectorDwellSeconds;
      if (!r.ok) return;
      if (kernel) {
        // T2 is when the kernel had the packet: the hold is reported as dwell and taken out.
        t.true(dwell >= (holdMs - 1) / 1000, `dwell ${dwell}`);
        t.true(r.rttSeconds <= elapsedS - (holdMs - 1) / 1000, `rtt ${r.rttSeconds}`);
      } else {
        // User-space T2 is read after the hold: it lands in the RTT, which is why the kernel's
        // times are used where they can be.
        t.true(dwell < holdMs / 1000, `dwell ${dwell}`);
        t.true(r.rttSeconds >= (holdMs - 1) / 1000, `rtt ${r.rttSeconds}`);
      }
    }
  });
}

test('PODMESH_TIMESTAMPS=userspace: probe and reflector fall back, and say so', (t) => {
  const code = `
    import { SystemClock } from ${JSON.stringify(new URL('../core/clock.ts', import.meta.url).href)};
    import { SizedUdpProbe } from ${JSON.stringify(new URL('./udp.ts', import.meta.url).href)};
    import { StampReflector } from ${JSON.stringify(new URL('../responders/stamp-reflector.ts', import.meta.url).href)};
    const clock = new SystemClock();
    const r = await StampReflector.start({ clock, address: '127.0.0.1', port: 0 });
    const p = await SizedUdpProbe.open({ clock, bindAddress: '127.0.0.1' });
    const peer = { id: 'r', node: 'r', network: 'pod', zone: 'z', address: '127.0.0.1', stampPort: r.port, tcpPort: 0, httpPort: 0 };
    const result = await p.run({ peer, size: 'small', bytes: 72 }, 1000);
    console.log(JSON.stringify({ probe: p.timestamps, reflector: r.timestamps, ok: result.ok }));
    await p.close();
    await r.close();`;
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', code],
    { env: { ...process.env, PODMESH_TIMESTAMPS: 'userspace' }, encoding: 'utf8' },
  );
  const report = JSON.parse(out.trim().split('\n').pop() ?? '{}') as {
    probe: { source: string; detail: string };
    reflector: { source: string; detail: string };
    ok: boolean;
  };
  t.true(report.ok);
  t.is(report.probe.source, 'userspace');
  t.is(report.reflector.source, 'userspace');
  t.regex(report.probe.detail, /PODMESH_TIMESTAMPS=userspace/);
});

test('timeouts follow the injected clock', async (t) => {
  const fake = new FakeClock();
  const srv = await server(() => undefined);
  const probe = await UdpStampProbe.open({ clock: fake, bindAddress: '127.0.0.1' });
  t.teardown(async () => {
    await probe.close();
    await srv.close();
  });
  let settled: ProbeResult | undefined;
  void probe.run(target(srv.port), 5000).then((r) => (settled = r));
  await fake.advance(4999);
  t.is(settled, undefined);
  await fake.advance(1);
  // The timeout lets reads already waiting in the socket run first (one setImmediate).
  await new Promise((r) => setImmediate(r));
  t.like(settled, { ok: false, reason: 'timeout', sentAtMs: fake.nowMs() - 5000 });
});

test('forward and reverse losses are told apart using the reflector sequence numbers', async (t) => {
  // Sender seqs whose probe this reflector loses before counting it (forward loss) or after
  // counting it (reverse loss: the reflector answered but the answer never came back).
  const forward = new Set([2, 5]);
  const reverse = new Set([3, 6, 7]);
  let counter = 0;
  const srv = await server((msg, rinfo, sock) => {
    const t2 = ntpFromUnixMs(clock.nowMs());
    const d = decodeSenderPacket(msg);
    if (!d.ok || forward.has(d.packet.seq)) return;
    const r = counter++;
    if (reverse.has(d.packet.seq)) return;
    sock.send(
      replyFor(d.packet, msg.length, r, t2, ntpFromUnixMs(clock.nowMs())),
      rinfo.port,
      rinfo.address,
    );
  });
  const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1' });
  t.teardown(async () => {
    await probe.close();
    await srv.close();
  });
  const results: ProbeResult[] = [];
  for (let i = 0; i < 10; i++) results.push(await probe.run(target(srv.port), 150));
  t.deepEqual(
    results.map((r) => r.ok),
    [true, true, false, false, true, false, false, false, true, true],
  );
  const losses = results.map((r) =>
    r.ok ? [stampOf(r).forwardLost, stampOf(r).reverseLost] : null,
  );
  t.deepEqual(losses, [[0, 0], [0, 0], null, null, [1, 1], null, null, null, [1, 2], [0, 0]]);
});

test('a reflector restart resets the loss baseline instead of inventing losses', async (t) => {
  let counter = 0;
  const srv = await server((msg, rinfo, sock) => {
    const t2 = ntpFromUnixMs(clock.nowMs());
    const d = decodeSenderPacket(msg);
    if (!d.ok) return;
    if (d.packet.seq === 3) counter = 0; // restarted between probe 2 and 3
    sock.send(replyFor(d.packet, msg.length, counter++, t2, t2), rinfo.port, rinfo.address);
  });
  const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1' });
  t.teardown(async () => {
    await probe.close();
    await srv.close();
  });
  for (let i = 0; i < 6; i++) {
    const s = stampOf(await probe.run(target(srv.port), 500));
    t.deepEqual([s.forwardLost, s.reverseLost], [0, 0], `probe ${i}`);
  }
});

test('a late answer after a timeout still counts for loss, and is not a reverse loss', async (t) => {
  let counter = 0;
  const srv = await server((msg, rinfo, sock) => {
    const t2 = ntpFromUnixMs(clock.nowMs());
    const d = decodeSenderPacket(msg);
    if (!d.ok) return;
    const r = counter++;
    const reply = replyFor(d.packet, msg.length, r, t2, t2);
    setTimeout(() => sock.send(reply, rinfo.port, rinfo.address), d.packet.seq === 1 ? 150 : 0);
  });
  const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1' });
  t.teardown(async () => {
    await probe.close();
    await srv.close();
  });
  t.true((await probe.run(target(srv.port), 500)).ok);
  t.like(await probe.run(target(srv.port), 50), { ok: false, reason: 'timeout' });
  await new Promise((r) => setTimeout(r, 200)); // the late answer arrives
  const s = stampOf(await probe.run(target(srv.port), 500));
  t.deepEqual([s.forwardLost, s.reverseLost, s.duplicates], [0, 0, 0]);
  t.is(probe.stats().unmatched, 0);
});

test('duplicate answers are counted and reported with the next result', async (t) => {
  let counter = 0;
  const srv = await server((msg, rinfo, sock) => {
    const t2 = ntpFromUnixMs(clock.nowMs());
    const d = decodeSenderPacket(msg);
    if (!d.ok) return;
    const reply = replyFor(d.packet, msg.length, counter++, t2, t2);
    sock.send(reply, rinfo.port, rinfo.address);
    sock.send(Buffer.from(reply), rinfo.port, rinfo.address);
  });
  const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1' });
  t.teardown(async () => {
    await probe.close();
    await srv.close();
  });
  t.is(stampOf(await probe.run(target(srv.port), 500)).duplicates, 0);
  const waitForDup = async (n: number) => {
    while (probe.stats().received < n) await new Promise((r) => setTimeout(r, 2));
  };
  await waitForDup(2);
  const second = stampOf(await probe.run(target(srv.port), 500));
  t.deepEqual([second.duplicates, second.forwardLost, second.reverseLost], [1, 0, 0]);
  await waitForDup(4);
  t.is(stampOf(await probe.run(target(srv.port), 500)).duplicates, 1);
});

test('a duplicate of an answer 1,100 probes back is a duplicate, not a reordered late answer', async (t) => {
  // The probe once remembered only its last 1,024 answers (a Set per peer, ~50 KB each at
  // steady state); older duplicates inside the 4,096-number late window were booked again as
  // late, reordered answers. Now every number of the late window keeps its answered bit.
  let counter = 0;
  let first: { reply: Buffer; port: number; address: string } | undefined;
  const srv = await server((msg, rinfo, sock) => {
    const t2 = ntpFromUnixMs(clock.nowMs());
    const d = decodeSenderPacket(msg);
    if (!d.ok) return;
    const reply = replyFor(d.packet, msg.length, counter++, t2, t2);
    if (d.packet.seq === 0) first = { reply: Buffer.from(reply), ...rinfo };
    sock.send(reply, rinfo.port, rinfo.address);
  });
  const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1' });
  t.teardown(async () => {
    await probe.close();
    await srv.close();
  });
  for (let i = 0; i < 1100; i++) t.true((await probe.run(target(srv.port), 500)).ok, `probe ${i}`);
  srv.sock.send(first!.reply, first!.port, first!.address);
  while (probe.stats().received < 1101) await new Promise((r) => setTimeout(r, 2));
  const s = stampOf(await probe.run(target(srv.port), 500));
  t.deepEqual(
    { duplicates: s.duplicates, reordered: s.reordered, reverseLost: s.reverseLost },
    { duplicates: 1, reordered: 0, reverseLost: 0 },
  );
  t.is(probe.stats().unmatched, 0);
});

test('reordered answers are counted, and do not add to the total loss', async (t) => {
  // Holds the answer to each even seq until the next odd one is answered, then sends it.
  // Seq 5 is lost on the way back (the only real loss).
  let counter = 0;
  let held: (() => void) | undefined;
  const srv = await server((msg, rinfo, sock) => {
    const t2 = ntpFromUnixMs(clock.nowMs());
    const d = decodeSenderPacket(msg);
    if (!d.ok) return;
    const seq = d.packet.seq;
    const reply = replyFor(d.packet, msg.length, counter++, t2, t2);
    const send = () => sock.send(reply, rinfo.port, rinfo.address);
    if (seq === 5) return;
    if (seq < 4 && seq % 2 === 0) {
      held = send;
      return;
    }
    send();
    if (held !== undefined) {
      const h = held;
      held = undefined;
      setTimeout(h, 5);
    }
  });
  const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1' });
  t.teardown(async () => {
    await probe.close();
    await srv.close();
  });
  const tg = target(srv.port);
  const results: ProbeResult[] = [];
  // 0 and 1 in flight together: 1 is answered first, then 0.
  const p0 = probe.run(tg, 1000);
  await new Promise((r) => setTimeout(r, 5));
  const p1 = probe.run(tg, 1000);
  results.push(await p1, await p0);
  // 2 and 3 likewise, now with an established baseline.
  const p2 = probe.run(tg, 1000);
  await new Promise((r) => setTimeout(r, 5));
  const p3 = probe.run(tg, 1000);
  results.push(await p3, await p2);
  results.push(await probe.run(tg, 1000)); // 4
  results.push(await probe.run(tg, 150)); // 5: lost on the way back
  results.push(await probe.run(tg, 1000)); // 6
  t.deepEqual(
    results.map((r) => r.ok),
    [true, true, true, true, true, false, true],
  );
  const sum = (f: (s: StampDetail) => number) =>
    results.reduce((a, r) => a + (r.ok && r.stamp ? f(r.stamp) : 0), 0);
  t.is(
    sum((s) => s.reordered),
    2,
  );
  t.is(stampOf(results[1] as ProbeResult).reordered, 1, 'reported with the result resolved next');
  t.is(
    sum((s) => s.forwardLost),
    0,
  );
  t.is(
    sum((s) => s.reverseLost),
    1,
    'only seq 5 was really lost',
  );
});

test('mtu-size target sends the padded size and gets the same size back', async (t) => {
  const reflector = await StampReflector.start({ clock, address: '127.0.0.1', port: 0 });
  const sizes: { toReflector: number[]; toSender: number[] } = { toReflector: [], toSender: [] };
  // A relay in front of the reflector that records datagram sizes both ways.
  let senderAddr: dgram.RemoteInfo | undefined;
  const back = await server((msg) => {
    sizes.toSender.push(msg.length);
    if (senderAddr) front.sock.send(msg, senderAddr.port, senderAddr.address);
  });
  const front = await server((msg, rinfo) => {
    senderAddr = rinfo;
    sizes.toReflector.push(msg.length);
    back.sock.send(msg, reflector.port, '127.0.0.1');
  });
  const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1' });
  t.teardown(async () => {
    await probe.close();
    await front.close();
    await back.close();
    await reflector.close();
  });
  t.true((await probe.run(target(front.port, 'mtu', 1500), 1000)).ok);
  t.true((await probe.run(target(front.port, 'small', 1500), 1000)).ok);
  t.true((await probe.run(target(front.port, 'mtu', 9000), 1000)).ok);
  t.deepEqual(sizes.toReflector, [1472, 44, 8972]);
  t.deepEqual(sizes.toSender, [1472, 44, 8972]);
});

test('payloadLength: IP + UDP headers come off, never below the base packet', (t) => {
  t.is(payloadLength({ size: 'mtu', bytes: 1500 }), 1472);
  t.is(payloadLength({ size: 'mtu', bytes: 1500 }, KEY), 1472);
  t.is(payloadLength({ size: 'mtu', bytes: 50 }), 44);
  t.is(payloadLength({ size: 'mtu', bytes: 50 }, KEY), 112);
  t.is(payloadLength({ size: 'small', bytes: 1500 }), 44);
  t.is(payloadLength({ size: 'small', bytes: 1500 }, KEY), 112);
});

test('sessions are per peer: each peer has its own sequence numbers', async (t) => {
  const seen: [number, number][] = [];
  const mk = (tag: number) =>
    server((msg, rinfo, sock) => {
      const d = decodeSenderPacket(msg);
      if (!d.ok) return;
      seen.push([tag, d.packet.seq]);
      const t2 = ntpFromUnixMs(clock.nowMs());
      sock.send(replyFor(d.packet, msg.length, d.packet.seq, t2, t2), rinfo.port, rinfo.address);
    });
  const a = await mk(1);
  const b = await mk(2);
  const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1' });
  t.teardown(async () => {
    await probe.close();
    await a.close();
    await b.close();
  });
  await probe.run(target(a.port, 'small', 64, 'a/pod'), 500);
  await probe.run(target(a.port, 'small', 64, 'a/pod'), 500);
  await probe.run(target(b.port, 'small', 64, 'b/pod'), 500);
  probe.forget('a/pod');
  await probe.run(target(a.port, 'small', 64, 'a/pod'), 500);
  t.deepEqual(seen, [
    [1, 0],
    [1, 1],
    [2, 0],
    [1, 0],
  ]);
});

test('close() fails pending probes with error, and later runs fail the same way', async (t) => {
  const srv = await server(() => undefined);
  t.teardown(() => srv.close());
  const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1' });
  const pending = probe.run(target(srv.port), 10_000);
  await new Promise((r) => setTimeout(r, 10));
  await probe.close();
  t.like(await pending, { ok: false, reason: 'error', detail: 'probe closed' });
  t.like(await probe.run(target(srv.port), 100), {
    ok: false,
    reason: 'error',
    detail: 'probe closed',
  });
});

test('a send that dgram rejects resolves as a failure instead of throwing', async (t) => {
  const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1' });
  t.teardown(() => probe.close());
  const r = await probe.run(target(0), 100);
  t.like(r, { ok: false, reason: 'error' });
});

/**
 * A reflector on a worker thread of its own, so it answers while this thread is held: it
 * answers sender seq 0 after `firstDelayMs` and the rest at once, claiming no dwell.
 */
async function workerReflector(
  t: { teardown: (fn: () => Promise<unknown>) => void },
  firstDelayMs: number,
): Promise<number> {
  const code = `
    import { parentPort, workerData } from 'node:worker_threads';
    import dgram from 'node:dgram';
    const sock = dgram.createSocket('udp4');
    sock.on('message', (msg, rinfo) => {
      const seq = msg.readUInt32BE(0);
      const reply = Buffer.alloc(msg.length);
      reply.writeUInt32BE(seq, 0);
      msg.copy(reply, 4, 4, 12);
      msg.copy(reply, 16, 4, 12);
      reply.writeUInt32BE(seq, 24);
      msg.copy(reply, 28, 4, 12);
      msg.copy(reply, 36, 12, 14);
      setTimeout(() => sock.send(reply, rinfo.port, rinfo.address), seq === 0 ? workerData : 0);
    });
    sock.bind(0, '127.0.0.1', () => parentPort.postMessage(sock.address().port));`;
  const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), {
    workerData: firstDelayMs,
  });
  t.teardown(() => w.terminate());
  return new Promise<number>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
}

const kernelTest = addon.ok ? test : test.skip;

// Serial: it holds this worker's event loop, which other tests' timers would feel.
(addon.ok ? test.serial : test.serial.skip)(
  'a held thread: an answer is judged by its kernel times, not by when it was read (issue 14.3)',
  async (t) => {
    const port = await workerReflector(t, 200);
    const probe = await UdpStampProbe.open({ clock, bindAddress: '127.0.0.1' });
    t.teardown(() => probe.close());
    t.is(probe.timestamps.source, 'kernel');
    // The answer comes 200 ms after the request, past the 100 ms timeout; this thread is held
    // for 400 ms, so it reads the answer before its (late) timer gets to run. Late it is.
    const late = probe.run(target(port), 100);
    hold(400);
    t.like(await late, { ok: false, reason: 'timeout' });
    // The next answer comes at once, while this thread is held past the timeout again: in
    // time by its kernel times, so answered, whenever this thread got to it.
    const inTime = probe.run(target(port), 100);
    hold(400);
    const r = await inTime;
    t.true(r.ok, JSON.stringify(r));
    if (r.ok) t.true(r.rttSeconds < 0.1, `rtt ${r.rttSeconds}`);
  },
);

/**
 * The real addon, remembering every socket it opens, so a test can reach under the probe's
 * socket and break its polling the way the kernel can.
 */
function watchedAddon(): { load: AddonLoad; sockets: NativeSocket[] } {
  const sockets: NativeSocket[] = [];
  if (!addon.ok) return { load: addon, sockets };
  const Native = addon.addon.Socket;
  const Socket = function (...args: ConstructorParameters<typeof Native>) {
    const s = new Native(...args);
    sockets.push(s);
    return s;
  } as unknown as typeof Native;
  return { load: { ...addon, addon: { ...addon.addon, Socket } }, sockets };
}

/** SOL_SOCKET, SO_SELECT_ERR_QUEUE */
const SO_SELECT_ERR_QUEUE: [number, number] = [1, 45];

kernelTest(
  'a sender socket libuv stops polling: what was in flight fails as an error, the next probe is answered (issue 14.4)',
  async (t) => {
    const reflector = await StampReflector.start({ clock, address: '127.0.0.1', port: 0 });
    const silent = await server(() => undefined);
    const watched = watchedAddon();
    const probe = await UdpStampProbe.open({
      clock,
      bindAddress: '127.0.0.1',
      addon: watched.load,
    });
    t.teardown(async () => {
      await probe.close();
      await reflector.close();
      await silent.close();
    });
    t.true((await probe.run(target(reflector.port), 1000)).ok);
    // Out of the socket's own callback (where the answer's continuation runs), into a timer's.
    await new Promise((resolve) => setTimeout(resolve, 10));
    // Without SO_SELECT_ERR_QUEUE, a datagram waiting to be read (stray, sent synchronously
    // here) and the next request's transmit timestamp on the error queue raise POLLERR with
    // POLLIN and no POLLPRI, which libuv takes for a dead descriptor: it stops polling the
    // socket.
    watched.sockets[0]!.setOption(...SO_SELECT_ERR_QUEUE, 0);
    const stray = new (watched.load as { addon: TimestampingAddon }).addon.Socket(
      0,
      '127.0.0.1',
      0,
      0,
      () => undefined,
    );
    t.teardown(() => stray.close());
    stray.send(Buffer.from('stray'), '127.0.0.1', probe.port);
    // To a peer that never answers: only the socket's failure can end it before its timeout.
    const r = await probe.run(target(silent.port, 'small', 64, 'silent/pod'), 5000);
    t.like(r, { ok: false, reason: 'error' });
    // The socket was reopened: probes are answered again.
    const next = await probe.run(target(reflector.port), 1000);
    t.true(next.ok, JSON.stringify(next));
  },
);
