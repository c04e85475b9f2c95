// Tests for the STAMP session-reflector: the pure per-packet decision under property tests
// (random, truncated and corrupted packets in both modes), and the real socket on 127.0.0.1 for
// per-session numbering, LRU eviction, idle expiry, rate limiting and loop refusal; with kernel
// timestamps, T2 and T3 fall between the sender's kernel send and receive times, a busy
// reflector's wait shows in T3 - T2, and the sender's TTL is read; with user-space ones the TTL
// is "not measured". Under fire (issue #14): one spoofed packet between two reflectors gets at
// most one reply, a junk flood from one address costs another address none of its replies, and
// in authenticated mode a replayed or stale packet gets none.

import test from 'ava';
import fc from 'fast-check';
import dgram from 'node:dgram';
import { SystemClock } from '../core/clock.ts';
import { FakeClock } from '../../test/support/fake-clock.ts';
import { EventType, SocketKind, Stamps, loadTimestamping } from '../native/timestamping.ts';
import { holdKernelRxStamps } from '../../test/support/kernel-rx-stamps.ts';
import {
  decodeReflectorPacket,
  encodeReflectorPacket,
  encodeSenderPacket,
  ntpDiffNs,
  ntpFromUnixMs,
  unixNsFromNtp,
  type NtpTimestamp,
} from '../probes/stamp-codec.ts';
import type { TimestampedUdpSocket } from '../probes/timestamped-udp.ts';
import { SETTINGS_BY_KEY } from '../config/settings.ts';
import {
  DEFAULT_MAX_CLOCK_SKEW_MS,
  DEFAULT_REFLECTOR_PORTS,
  DEFAULT_REPLIES_PER_SOURCE,
  StampReflector,
  UNKNOWN_TTL,
  reflectPacket,
  type DropReason,
  type ReflectorStats,
} from './stamp-reflector.ts';

const KEY = Buffer.from('reflector-test-key');
const T1 = ntpFromUnixMs(1_700_000_000_123.25);
const T2 = ntpFromUnixMs(1_700_000_000_130);
const T3 = ntpFromUnixMs(1_700_000_000_131.5);

function senderPacket(seq: number, length?: number, key?: Buffer, timestamp = T1): Buffer {
  return encodeSenderPacket({ seq, timestamp, errorEstimate: 0x0102 }, { length, authKey: key });
}

/** The wall clock now, to the microsecond, as a sender writes T1 (authenticated mode checks it). */
function fresh(): NtpTimestamp {
  return ntpFromUnixMs(performance.timeOrigin + performance.now());
}

/** A reflector's reply to senderPacket(seq): what one reflector sends another in a loop. */
function replyPacket(seq: number, key?: Buffer, timestamp = T1): Buffer {
  return encodeReflectorPacket(
    {
      seq: 0,
      timestamp: T3,
      errorEstimate: 1,
      receiveTimestamp: T2,
      senderSeq: seq,
      senderTimestamp: timestamp,
      senderErrorEstimate: 0x0102,
      senderTtl: 64,
    },
    { authKey: key },
  );
}

function decide(packet: Buffer, key?: Buffer, fromPort = 40000) {
  return reflectPacket({
    packet,
    fromPort,
    ownPort: 862,
    reflectorSeq: 7,
    receiveTimestamp: T2,
    transmitTimestamp: () => T3,
    authKey: key,
    errorEstimate: 0x0001,
  });
}

// ---------------------------------------------------------------------------------------------
// Pure decision.

test('reflectPacket: a valid packet is answered with every field the RFC asks for', (t) => {
  for (const key of [undefined, KEY]) {
    const out = decide(senderPacket(42, 300, key), key);
    if (!out.ok) return t.fail(out.drop);
    t.is(out.reply.length, 300);
    t.is(out.senderSeq, 42);
    const d = decodeReflectorPacket(out.reply, key);
    if (!d.ok) return t.fail(d.reason);
    t.deepEqual(d.packet, {
      seq: 7,
      timestamp: T3,
      errorEstimate: 0x0001,
      receiveTimestamp: T2,
      senderSeq: 42,
      senderTimestamp: T1,
      senderErrorEstimate: 0x0102,
      // Node cannot read the arrival TTL; 0 marks it as unmeasured.
      senderTtl: 0,
    });
    const base = key === undefined ? 44 : 112;
    t.true(
      out.reply.subarray(base).every((b) => b === 0),
      'padding is zero',
    );
  }
});

test('reflectPacket: loop, malformed, rate-limited and auth-failed drops', (t) => {
  t.deepEqual(decide(senderPacket(1), undefined, 862), { ok: false, drop: 'loop' });
  t.deepEqual(decide(senderPacket(1).subarray(0, 43)), { ok: false, drop: 'malformed' });
  t.deepEqual(
    decide(senderPacket(1), KEY),
    { ok: false, drop: 'malformed' },
    '44 octets is short for auth',
  );
  t.deepEqual(decide(senderPacket(1, 112), KEY), { ok: false, drop: 'auth_failed' }, 'no HMAC');
  t.deepEqual(decide(senderPacket(1, 112, Buffer.from('other')), KEY), {
    ok: false,
    drop: 'auth_failed',
  });
  let asked = 0;
  const limited = reflectPacket({
    packet: senderPacket(1),
    fromPort: 1,
    ownPort: 2,
    reflectorSeq: 0,
    receiveTimestamp: T2,
    transmitTimestamp: () => T3,
    errorEstimate: 1,
    admit: () => {
      asked++;
      return false;
    },
  });
  t.deepEqual(limited, { ok: false, drop: 'rate_limited' });
  t.is(asked, 1);
  // The limiter is not consulted for packets that fail the free checks.
  reflectPacket({
    packet: Buffer.alloc(3),
    fromPort: 1,
    ownPort: 2,
    reflectorSeq: 0,
    receiveTimestamp: T2,
    transmitTimestamp: () => T3,
    errorEstimate: 1,
    admit: () => {
      asked++;
      return true;
    },
  });
  t.is(asked, 1);
});

test('reflectPacket: a reflected packet is never answered, whatever port it comes from', (t) => {
  for (const key of [undefined, KEY]) {
    // Another reflector's reply, from a port this one doesn't know: in authenticated mode its
    // HMAC is even good (same key), so only its own fields give it away.
    t.deepEqual(decide(replyPacket(1, key), key, 40000), { ok: false, drop: 'loop' });
    // From a port the shipped manifests give reflectors, even looking like a test packet.
    for (const port of [9862, 9872])
      t.deepEqual(
        reflectPacket({
          packet: senderPacket(1, undefined, key),
          fromPort: port,
          ownPort: 40001,
          reflectorPorts: new Set([862, 9862, 9872]),
          reflectorSeq: 0,
          receiveTimestamp: T2,
          transmitTimestamp: () => T3,
          authKey: key,
          errorEstimate: 1,
        }),
        { ok: false, drop: 'loop' },
      );
  }
});

test('reflectPacket (authenticated): stale, replayed, and the HMAC budget asked before the HMAC', (t) => {
  const skew = 30_000_000_000n;
  const base = {
    fromPort: 40000,
    ownPort: 862,
    reflectorSeq: 0,
    receiveTimestamp: T2,
    transmitTimestamp: () => T3,
    authKey: KEY,
    errorEstimate: 1,
    maxClockSkewNs: skew,
  };
  const at = (ms: number) => senderPacket(1, undefined, KEY, ntpFromUnixMs(1_700_000_000_130 + ms));
  t.true(reflectPacket({ ...base, packet: at(-29_000) }).ok);
  t.true(reflectPacket({ ...base, packet: at(29_000) }).ok);
  t.deepEqual(reflectPacket({ ...base, packet: at(-3_600_000) }), { ok: false, drop: 'stale' });
  t.deepEqual(reflectPacket({ ...base, packet: at(31_000) }), { ok: false, drop: 'stale' });
  t.deepEqual(reflectPacket({ ...base, packet: at(0), replayed: () => true }), {
    ok: false,
    drop: 'replayed',
  });
  let checks = 0;
  const limited = reflectPacket({
    ...base,
    packet: senderPacket(1, undefined, Buffer.from('not the key'), T2),
    admitVerify: () => {
      checks++;
      return false;
    },
    admit: () => {
      t.fail('the reply budget is never asked for an unchecked packet');
      return true;
    },
  });
  t.deepEqual(limited, { ok: false, drop: 'verify_limited' });
  t.is(checks, 1);
  // Junk that fails the HMAC never reaches the reply budget.
  const junk = reflectPacket({
    ...base,
    packet: senderPacket(1, undefined, Buffer.from('not the key'), T2),
    admitVerify: () => true,
    admit: () => {
      t.fail('the reply budget is never asked for junk');
      return true;
    },
  });
  t.deepEqual(junk, { ok: false, drop: 'auth_failed' });
});

test("the reflector's defaults are the settings' defaults, and the shipped reflector ports", (t) => {
  const def = (key: string): unknown => SETTINGS_BY_KEY.get(key)?.default;
  t.deepEqual(def('stamp.reflectorPorts'), DEFAULT_REFLECTOR_PORTS);
  t.is(def('stamp.maxRepliesPerSecondPerSource'), DEFAULT_REPLIES_PER_SOURCE);
  t.is(def('stamp.maxClockSkewMs'), DEFAULT_MAX_CLOCK_SKEW_MS);
  // deploy/base: the pod agents' stampPort and the host agents'.
  t.true(DEFAULT_REFLECTOR_PORTS.includes(9862) && DEFAULT_REFLECTOR_PORTS.includes(9872));
});

/** What a packet must lead to, worked out from the RFC's rules, not from the code under test. */
function expectedOutcome(
  packet: Buffer,
  key: Buffer | undefined,
  pristine: Buffer | undefined,
): DropReason | 'ok' {
  const base = key === undefined ? 44 : 112;
  if (packet.length < base) return 'malformed';
  // Where a reflector writes its fields, MBZ in a test packet (RFC 8762 section 4): a packet
  // with anything there is a reflected packet, refused before the HMAC.
  const [from, to] = key === undefined ? [16, 44] : [28, 96];
  if (packet.subarray(from, to).some((b) => b !== 0)) return 'loop';
  if (key === undefined) return 'ok';
  // Authenticated: only a packet whose first 112 octets are an untouched valid packet passes.
  if (pristine !== undefined && packet.subarray(0, 112).equals(pristine.subarray(0, 112)))
    return 'ok';
  return 'auth_failed';
}

/**
 * Random bytes, truncated valid packets, and valid packets with random octets changed. With
 * `live`, valid packets are what a live sender sends: the current time and sequence numbers
 * that only go up (authenticated mode refuses stale and replayed packets).
 */
function packetArb(key: Buffer | undefined, live = false) {
  let nextSeq = 0;
  const valid = fc
    .record({ seq: fc.nat(), len: fc.integer({ min: 0, max: 1500 }) })
    .map(({ seq, len }) =>
      live ? senderPacket(nextSeq++, len, key, fresh()) : senderPacket(seq, len, key),
    );
  const random = fc
    .uint8Array({ maxLength: 600 })
    .map((b) => ({ packet: Buffer.from(b), pristine: undefined }));
  const truncated = fc
    .tuple(valid, fc.integer({ min: 0, max: 200 }))
    .map(([p, n]) => ({ packet: Buffer.from(p.subarray(0, Math.min(p.length, n))), pristine: p }));
  const flipped = fc
    .tuple(
      valid,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
    )
    .map(([p, flips]) => {
      const copy = Buffer.from(p);
      for (const [at, x] of flips) {
        const i = at % copy.length;
        copy[i] = (copy[i] ?? 0) ^ x;
      }
      return { packet: copy, pristine: p };
    });
  const intact = valid.map((p) => ({ packet: p, pristine: p }));
  return fc.oneof(random, truncated, flipped, intact);
}

for (const mode of ['unauthenticated', 'authenticated'] as const) {
  const key = mode === 'authenticated' ? KEY : undefined;

  test(`reflectPacket property (${mode}): never throws, never longer, right drop reason`, (t) => {
    fc.assert(
      fc.property(
        packetArb(key),
        fc.integer({ min: 0, max: 65535 }),
        ({ packet, pristine }, fromPort) => {
          const before = Buffer.from(packet);
          const out = decide(packet, key, fromPort);
          const expected = fromPort === 862 ? 'loop' : expectedOutcome(packet, key, pristine);
          if (!packet.equals(before)) return false; // the input is never modified
          if (out.ok)
            return expected === 'ok' && out.reply.length === packet.length && out.reply !== packet;
          return out.drop === expected;
        },
      ),
      { numRuns: 2000 },
    );
    t.pass();
  });
}

// ---------------------------------------------------------------------------------------------
// Real sockets on loopback.

interface Client {
  readonly socket: dgram.Socket;
  readonly port: number;
  readonly replies: Buffer[];
  send(buf: Buffer, port: number, address?: string): Promise<void>;
  close(): Promise<void>;
}

async function client(address = '127.0.0.1', port = 0): Promise<Client> {
  const socket = dgram.createSocket('udp4');
  const replies: Buffer[] = [];
  socket.on('message', (m) => replies.push(m));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => resolve());
  });
  return {
    socket,
    port: socket.address().port,
    replies,
    send: (buf, p, a = '127.0.0.1') =>
      new Promise((resolve, reject) =>
        socket.send(buf, p, a, (err) => (err ? reject(err) : resolve())),
      ),
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function drops(s: ReflectorStats): number {
  return (
    s.malformed + s.authFailed + s.loop + s.rateLimited + s.verifyLimited + s.stale + s.replayed
  );
}

/** Sends one packet and waits until the reflector has handled it (and the reply, if any, is in). */
async function roundTrip(c: Client, r: StampReflector, buf: Buffer): Promise<Buffer | undefined> {
  const before = r.stats();
  const repliesBefore = c.replies.length;
  await c.send(buf, r.port);
  await until(() => r.stats().received === before.received + 1, 'reflector to receive');
  if (r.stats().reflected === before.reflected) return undefined;
  await until(() => c.replies.length === repliesBefore + 1, 'reply');
  return c.replies[repliesBefore];
}

for (const [mode, timestamps] of [
  ['unauthenticated', 'auto'],
  ['authenticated', 'auto'],
  ['authenticated', 'userspace'],
] as const) {
  const key = mode === 'authenticated' ? KEY : undefined;

  test(`real socket (${mode}, ${timestamps} timestamps): random/truncated/corrupted datagrams are each counted once`, async (t) => {
    const r = await StampReflector.start({
      clock: new SystemClock(),
      address: '127.0.0.1',
      port: 0,
      authKey: key,
      timestamps,
    });
    const c = await client();
    t.teardown(async () => {
      await c.close();
      await r.close();
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(packetArb(key, true), { minLength: 1, maxLength: 8 }),
        async (batch) => {
          for (const { packet, pristine } of batch) {
            // A zero-length datagram is a valid UDP send; include it as is.
            const before = r.stats();
            const reply = await roundTrip(c, r, packet);
            const after = r.stats();
            const expected = expectedOutcome(packet, key, pristine);
            if (after.received !== before.received + 1) return false;
            const counted = {
              ok: after.reflected - before.reflected,
              malformed: after.malformed - before.malformed,
              auth_failed: after.authFailed - before.authFailed,
              loop: after.loop - before.loop,
              rate_limited: after.rateLimited - before.rateLimited,
              verify_limited: after.verifyLimited - before.verifyLimited,
              stale: after.stale - before.stale,
              replayed: after.replayed - before.replayed,
            };
            // Exactly one counter moved, and it is the right one.
            if (Object.values(counted).reduce((a, b) => a + b, 0) !== 1) return false;
            if (counted[expected] !== 1) return false;
            if (expected === 'ok') {
              if (reply === undefined || reply.length !== packet.length) return false;
              if (!decodeReflectorPacket(reply, key).ok) return false;
            } else if (reply !== undefined) return false;
          }
          const s = r.stats();
          return s.received === s.reflected + drops(s);
        },
      ),
      { numRuns: 40 },
    );
    t.pass();
  });
}

test('real socket: stateful numbering is per session, and replies echo the sender fields', async (t) => {
  const r = await StampReflector.start({ clock: new SystemClock(), address: '127.0.0.1', port: 0 });
  const a = await client();
  const b = await client();
  t.teardown(async () => {
    await a.close();
    await b.close();
    await r.close();
  });
  const order: [Client, number][] = [
    [a, 100],
    [a, 101],
    [b, 500],
    [a, 102],
    [b, 501],
  ];
  const seen: [number, number][] = [];
  for (const [c, seq] of order) {
    const reply = await roundTrip(c, r, senderPacket(seq));
    const d = decodeReflectorPacket(reply ?? Buffer.alloc(0));
    if (!d.ok) return t.fail('no valid reply');
    t.is(d.packet.senderTimestamp, T1);
    t.true(ntpDiffNs(d.packet.timestamp, d.packet.receiveTimestamp) >= 0n, 'T3 >= T2');
    seen.push([d.packet.senderSeq, d.packet.seq]);
  }
  t.deepEqual(seen, [
    [100, 0],
    [101, 1],
    [500, 0],
    [102, 2],
    [501, 1],
  ]);
  t.is(r.stats().sessions, 2);
});

async function reflectorSeqOf(c: Client, r: StampReflector, seq: number): Promise<number> {
  const d = decodeReflectorPacket((await roundTrip(c, r, senderPacket(seq))) ?? Buffer.alloc(0));
  if (!d.ok) throw new Error('no valid reply');
  return d.packet.seq;
}

test('real socket: the session table is bounded and evicts the least recently used', async (t) => {
  const r = await StampReflector.start({
    clock: new SystemClock(),
    address: '127.0.0.1',
    port: 0,
    maxSessions: 2,
  });
  const [a, b, c] = [await client(), await client(), await client()];
  t.teardown(async () => {
    await Promise.all([a.close(), b.close(), c.close()]);
    await r.close();
  });
  t.is(await reflectorSeqOf(a, r, 1), 0);
  t.is(await reflectorSeqOf(b, r, 1), 0);
  t.is(await reflectorSeqOf(a, r, 2), 1); // a is now the most recently used
  t.is(await reflectorSeqOf(c, r, 1), 0); // evicts b
  t.deepEqual([r.stats().sessions, r.stats().evicted], [2, 1]);
  t.is(await reflectorSeqOf(a, r, 3), 2, 'a kept its session');
  t.is(await reflectorSeqOf(b, r, 2), 0, 'b starts over'); // evicts c
  t.is(await reflectorSeqOf(a, r, 4), 3);
  t.is(await reflectorSeqOf(c, r, 2), 0, 'c was evicted by b');
  t.is(r.stats().evicted, 3);
});

test('real socket: an idle session expires on the injected clock', async (t) => {
  const clock = new FakeClock();
  const r = await StampReflector.start({
    clock,
    address: '127.0.0.1',
    port: 0,
    sessionIdleMs: 60_000,
  });
  const a = await client();
  const b = await client();
  t.teardown(async () => {
    await a.close();
    await b.close();
    await r.close();
  });
  t.is(await reflectorSeqOf(a, r, 1), 0);
  t.is(await reflectorSeqOf(b, r, 1), 0);
  await clock.advance(59_999);
  t.is(await reflectorSeqOf(b, r, 2), 1, 'b kept alive');
  t.is(r.stats().sessions, 2);
  await clock.advance(1);
  t.deepEqual([r.stats().sessions, r.stats().expired], [1, 1], 'a idle for 60 s');
  t.is(await reflectorSeqOf(a, r, 2), 0, 'a starts over');
  t.is(await reflectorSeqOf(b, r, 3), 2);
});

test('real socket: replies are rate limited by a token bucket on the injected clock', async (t) => {
  const clock = new FakeClock();
  const r = await StampReflector.start({
    clock,
    address: '127.0.0.1',
    port: 0,
    maxRepliesPerSecond: 5,
  });
  const a = await client();
  t.teardown(async () => {
    await a.close();
    await r.close();
  });
  const answered = async (n: number): Promise<number> => {
    let count = 0;
    for (let i = 0; i < n; i++) if ((await roundTrip(a, r, senderPacket(i))) !== undefined) count++;
    return count;
  };
  t.is(await answered(8), 5, 'burst of one second');
  t.is(r.stats().rateLimited, 3);
  await clock.advance(400);
  t.is(await answered(5), 2, '400 ms refills two tokens');
  await clock.advance(10_000);
  t.is(await answered(7), 5, 'never more than the burst');
  const s = r.stats();
  t.is(s.received, s.reflected + drops(s));
  // Packets that are not answered anyway do not use up tokens.
  await clock.advance(1000);
  await roundTrip(a, r, Buffer.alloc(10));
  t.is(await answered(6), 5);
});

test('real socket: a datagram from the reflector port (another reflector) is never answered', async (t) => {
  const r = await StampReflector.start({ clock: new SystemClock(), address: '127.0.0.1', port: 0 });
  // Same port on another loopback address: what a peer reflector's reply looks like.
  const twin = await client('127.0.0.2', r.port);
  t.teardown(async () => {
    await twin.close();
    await r.close();
  });
  t.is(await roundTrip(twin, r, senderPacket(1)), undefined);
  t.is(r.stats().loop, 1);
  t.is(r.stats().reflected, 0);
  t.is(r.stats().sessions, 0);
});

test('real socket: a datagram from a configured reflector port is never answered', async (t) => {
  const c = await client();
  const r = await StampReflector.start({
    clock: new SystemClock(),
    address: '127.0.0.1',
    port: 0,
    reflectorPorts: [c.port],
  });
  t.teardown(async () => {
    await c.close();
    await r.close();
  });
  t.is(await roundTrip(c, r, senderPacket(1)), undefined);
  t.like(r.stats(), { loop: 1, reflected: 0, sessions: 0 });
});

/** Plays the attacker: sends from a reflector's own socket, which on the wire is exactly a
 * packet spoofed with that reflector's address and port as its source. */
function sendAs(r: StampReflector, packet: Buffer, port: number, address: string): void {
  const socket = (r as unknown as { socket: TimestampedUdpSocket }).socket;
  socket.send(packet, port, address, () => undefined);
}

for (const mode of ['unauthenticated', 'authenticated'] as const) {
  const key = mode === 'authenticated' ? KEY : undefined;

  test(`real socket (${mode}): one spoofed packet between two reflectors on different ports gets at most one reply`, async (t) => {
    const opts = { clock: new SystemClock(), port: 0, authKey: key, maxRepliesPerSecond: 1000 };
    const r1 = await StampReflector.start({ ...opts, address: '127.0.0.1' });
    const r2 = await StampReflector.start({ ...opts, address: '127.0.0.2' });
    t.teardown(async () => {
      await r1.close();
      await r2.close();
    });
    t.not(r1.port, r2.port);
    // To r1, from r2's address and port: r1 answers it to r2.
    sendAs(r2, senderPacket(1, undefined, key, fresh()), r1.port, '127.0.0.1');
    await until(() => r2.stats().received >= 1, 'r1 to answer to r2');
    // Give a loop time to show: each reflector would answer the other's reply.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const [s1, s2] = [r1.stats(), r2.stats()];
    t.is(s1.reflected + s2.reflected, 1, `replies: ${s1.reflected} and ${s2.reflected}`);
    t.like(s1, { received: 1, reflected: 1 });
    t.like(s2, { received: 1, reflected: 0, loop: 1 });
  });

  test(`real socket (${mode}): a junk flood from one address costs another address none of its replies`, async (t) => {
    // FakeClock at the wall time: the budgets run on it, and a kernel T2 is the wall time.
    const clock = new FakeClock(Date.now());
    const r = await StampReflector.start({
      clock,
      address: '127.0.0.1',
      port: 0,
      authKey: key,
      maxRepliesPerSecond: 400,
      maxRepliesPerSecondPerSource: 40,
    });
    const junk = await client('127.0.0.2');
    const peer = await client('127.0.0.3');
    t.teardown(async () => {
      await junk.close();
      await peer.close();
      await r.close();
    });
    // Unauthenticated junk is any test packet (nothing tells it from a real one); in
    // authenticated mode it is one the key didn't sign.
    const junkKey = key === undefined ? undefined : Buffer.from('not the key');
    let answered = 0;
    // One second (on the injected clock) of 2,000 junk packets a second, 40 probes among them.
    for (let step = 0; step < 40; step++) {
      const before = r.stats().received;
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          junk.send(senderPacket(step * 50 + i, undefined, junkKey, fresh()), r.port),
        ),
      );
      await until(() => r.stats().received === before + 50, 'the junk to arrive');
      const reply = await roundTrip(peer, r, senderPacket(step, undefined, key, fresh()));
      if (reply !== undefined && decodeReflectorPacket(reply, key).ok) answered++;
      await clock.advance(25);
    }
    t.is(answered, 40);
    const s = r.stats();
    t.is(s.received, 40 * 51);
    t.true(s.rateLimited + s.verifyLimited > 0, 'the flood was limited');
    t.is(s.received, s.reflected + drops(s));
  });
}

test('real socket (authenticated): a replayed test packet gets no reply, from any address; a fresh one does', async (t) => {
  const r = await StampReflector.start({
    clock: new SystemClock(),
    address: '127.0.0.1',
    port: 0,
    authKey: KEY,
  });
  const a = await client('127.0.0.1');
  const b = await client('127.0.0.2');
  t.teardown(async () => {
    await a.close();
    await b.close();
    await r.close();
  });
  const captured = senderPacket(1, undefined, KEY, fresh());
  t.truthy(await roundTrip(a, r, captured), 'the original is answered');
  t.is(await roundTrip(a, r, captured), undefined, 'replayed in its own session');
  t.is(await roundTrip(b, r, captured), undefined, 'replayed from another address');
  const hourAgo = ntpFromUnixMs(Date.now() - 3_600_000);
  t.is(await roundTrip(b, r, senderPacket(7, undefined, KEY, hourAgo)), undefined, 'an hour old');
  const inAnHour = ntpFromUnixMs(Date.now() + 3_600_000);
  t.is(
    await roundTrip(b, r, senderPacket(8, undefined, KEY, inAnHour)),
    undefined,
    'from the future',
  );
  t.like(r.stats(), { reflected: 1, replayed: 2, stale: 2 });
  t.truthy(await roundTrip(a, r, senderPacket(2, undefined, KEY, fresh())), 'a fresh one');
  // Reordering is not replay: a later number first, then the one overtaken.
  const overtaken = senderPacket(3, undefined, KEY, fresh());
  t.truthy(await roundTrip(a, r, senderPacket(4, undefined, KEY, fresh())));
  t.truthy(await roundTrip(a, r, overtaken), 'an overtaken packet');
  t.is(await roundTrip(a, r, overtaken), undefined, 'but only once');
  // A sender restarted on the same port numbers from the start again, with newer timestamps.
  t.truthy(await roundTrip(a, r, senderPacket(1, undefined, KEY, fresh())), 'a restarted sender');
  t.like(r.stats(), { reflected: 5, replayed: 3, stale: 2 });
});

test('real socket: authenticated replies carry a valid HMAC and exact length', async (t) => {
  const r = await StampReflector.start({
    clock: new SystemClock(),
    address: '127.0.0.1',
    port: 0,
    authKey: KEY,
  });
  const a = await client();
  t.teardown(async () => {
    await a.close();
    await r.close();
  });
  const reply = await roundTrip(a, r, senderPacket(9, 1000, KEY, fresh()));
  t.is(reply?.length, 1000);
  const d = decodeReflectorPacket(reply ?? Buffer.alloc(0), KEY);
  t.true(d.ok);
  t.false(decodeReflectorPacket(reply ?? Buffer.alloc(0), Buffer.from('x')).ok);
  t.is(
    await roundTrip(a, r, senderPacket(10, 1000, undefined, fresh())),
    undefined,
    'unauthenticated packet refused',
  );
  t.is(r.stats().authFailed, 1);
});

test('start rejects when the port is taken, and the reflector port is reported', async (t) => {
  const r = await StampReflector.start({ clock: new SystemClock(), address: '127.0.0.1', port: 0 });
  t.teardown(() => r.close());
  t.true(r.port > 0);
  await t.throwsAsync(
    StampReflector.start({ clock: new SystemClock(), address: '127.0.0.1', port: r.port }),
  );
});

// ---------------------------------------------------------------------------------------------
// Kernel timestamps.

const addon = loadTimestamping();
const kernelTest = addon.ok ? test : test.skip;
holdKernelRxStamps(test);

/**
 * A sender on the addon's own socket: sends one packet, then (after `holdMs` of this thread
 * being busy, which holds up the reflector too) returns the reply with the sender's kernel
 * send (T1) and receive (T4) times.
 */
async function kernelRoundTrip(
  r: StampReflector,
  holdMs: number,
): Promise<{ t1: bigint; t4: bigint; reply: Buffer }> {
  if (!addon.ok) throw new Error(addon.reason);
  let done: ((v: { reply: Buffer; t4: bigint }) => void) | undefined;
  const answered = new Promise<{ reply: Buffer; t4: bigint }>((resolve) => (done = resolve));
  const sock = new addon.addon.Socket(
    SocketKind.udp,
    '127.0.0.1',
    0,
    Stamps.both,
    (type, b, _a, _p, rx) => {
      if (type === EventType.message) done?.({ reply: b as Buffer, t4: rx as bigint });
    },
  );
  try {
    const id = sock.send(senderPacket(1), '127.0.0.1', r.port);
    const t0 = performance.now();
    while (performance.now() - t0 < holdMs) {
      // busy
    }
    const { reply, t4 } = await answered;
    const t1 = sock.txTime(id);
    if (t1 === undefined) throw new Error('no kernel transmit time');
    return { t1, t4, reply };
  } finally {
    sock.close();
  }
}

kernelTest(
  'kernel: T1 <= T2 <= T3 <= T4 on one host, a busy wait shows as dwell, TTL is read',
  async (t) => {
    const r = await StampReflector.start({
      clock: new SystemClock(),
      address: '127.0.0.1',
      port: 0,
    });
    t.teardown(() => r.close());
    t.is(r.timestamps.source, 'kernel');
    for (const holdMs of [0, 25]) {
      const { t1, t4, reply } = await kernelRoundTrip(r, holdMs);
      const d = decodeReflectorPacket(reply);
      if (!d.ok) return t.fail('no valid reply');
      const t2 = unixNsFromNtp(d.packet.receiveTimestamp);
      const t3 = unixNsFromNtp(d.packet.timestamp);
      // NTP's 2^-32 s units round to the ns both ways: allow 1 ns.
      t.true(t1 <= t2 + 1n, `T1 ${t1} <= T2 ${t2}`);
      t.true(t2 <= t3, `T2 ${t2} <= T3 ${t3}`);
      t.true(t3 <= t4 + 1n, `T3 ${t3} <= T4 ${t4}`);
      t.true(t3 - t2 >= BigInt(holdMs) * 1_000_000n - 1_000_000n, `dwell ${t3 - t2} ns`);
      t.is(d.packet.senderTtl, 64);
    }
  },
);

test('userspace: the sender TTL is written as "not measured"', async (t) => {
  const r = await StampReflector.start({
    clock: new SystemClock(),
    address: '127.0.0.1',
    port: 0,
    timestamps: 'userspace',
  });
  const c = await client();
  t.teardown(async () => {
    await c.close();
    await r.close();
  });
  t.is(r.timestamps.source, 'userspace');
  const d = decodeReflectorPacket((await roundTrip(c, r, senderPacket(3))) ?? Buffer.alloc(0));
  if (!d.ok) return t.fail('no valid reply');
  t.is(d.packet.senderTtl, UNKNOWN_TTL);
});
