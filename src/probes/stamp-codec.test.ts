// Byte-layout tests for the STAMP codec. Expected packets are assembled by hand from RFC 8762
// section 4's figures, with every offset spelled out here rather than taken from the codec, so a
// wrong offset in the codec cannot hide behind the same mistake in the test.

import test from 'ava';
import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import {
  NTP_UNIX_OFFSET_SECONDS,
  decodeErrorEstimate,
  decodeReflectorPacket,
  decodeSenderPacket,
  encodeErrorEstimate,
  encodeReflectorPacket,
  encodeSenderPacket,
  errorEstimateFromSeconds,
  hasReflectorFields,
  errorEstimateSeconds,
  ntpAddNs,
  ntpDiffNs,
  ntpFromParts,
  ntpFromUnixMs,
  ntpFromUnixNs,
  ntpParts,
  unixMsFromNtp,
  unixNsFromNtp,
  type ReflectorPacket,
  type SenderPacket,
} from './stamp-codec.ts';

const KEY = Buffer.from('podmesh-test-key-0123456789abcdef');

const T1 = 0x1122334455667788n;
const T2 = 0x99aabbccddeeff00n;
const T3 = 0x0102030405060708n;

const sender: SenderPacket = { seq: 0xdeadbeef, timestamp: T1, errorEstimate: 0x8a05 };
const reflector: ReflectorPacket = {
  seq: 0x01020304,
  timestamp: T3,
  errorEstimate: 0x0133,
  receiveTimestamp: T2,
  senderSeq: 0xdeadbeef,
  senderTimestamp: T1,
  senderErrorEstimate: 0x8a05,
  senderTtl: 0x40,
};

function put(buf: Buffer, at: number, hex: string): void {
  Buffer.from(hex, 'hex').copy(buf, at);
}

function hmac16(key: Buffer, covered: Buffer): Buffer {
  return createHmac('sha256', key).update(covered).digest().subarray(0, 16);
}

// Each direction signs with its own key, HMAC-SHA-256(shared key, label), spelled out here
// (docs/stamp.md) rather than taken from the codec.
const REQUEST_KEY = createHmac('sha256', KEY)
  .update('podmesh STAMP HMAC key v1: session-sender to session-reflector')
  .digest();
const REPLY_KEY = createHmac('sha256', KEY)
  .update('podmesh STAMP HMAC key v1: session-reflector to session-sender')
  .digest();

// --- unauthenticated sender: seq @0 (4), timestamp @4 (8), error estimate @12 (2), MBZ @14 (30)
function expectedUnauthSender(): Buffer {
  const b = Buffer.alloc(44);
  put(b, 0, 'deadbeef');
  put(b, 4, '1122334455667788');
  put(b, 12, '8a05');
  return b;
}

// --- unauthenticated reflector: seq @0, T3 @4, err @12, MBZ @14 (2), T2 @16, ss seq @24,
// ss timestamp @28, ss err @36, MBZ @38 (2), ss TTL @40, MBZ @41 (3)
function expectedUnauthReflector(): Buffer {
  const b = Buffer.alloc(44);
  put(b, 0, '01020304');
  put(b, 4, '0102030405060708');
  put(b, 12, '0133');
  put(b, 16, '99aabbccddeeff00');
  put(b, 24, 'deadbeef');
  put(b, 28, '1122334455667788');
  put(b, 36, '8a05');
  put(b, 40, '40');
  return b;
}

// --- authenticated sender: seq @0, MBZ @4 (12), timestamp @16, err @24, MBZ @26 (70), HMAC @96
function expectedAuthSender(): Buffer {
  const b = Buffer.alloc(112);
  put(b, 0, 'deadbeef');
  put(b, 16, '1122334455667788');
  put(b, 24, '8a05');
  hmac16(REQUEST_KEY, b.subarray(0, 96)).copy(b, 96);
  return b;
}

// --- authenticated reflector: seq @0, MBZ @4 (12), T3 @16, err @24, MBZ @26 (6), T2 @32,
// MBZ @40 (8), ss seq @48, MBZ @52 (12), ss timestamp @64, ss err @72, MBZ @74 (6), ss TTL @80,
// MBZ @81 (15), HMAC @96 (16)
function expectedAuthReflector(): Buffer {
  const b = Buffer.alloc(112);
  put(b, 0, '01020304');
  put(b, 16, '0102030405060708');
  put(b, 24, '0133');
  put(b, 32, '99aabbccddeeff00');
  put(b, 48, 'deadbeef');
  put(b, 64, '1122334455667788');
  put(b, 72, '8a05');
  put(b, 80, '40');
  hmac16(REPLY_KEY, b.subarray(0, 96)).copy(b, 96);
  return b;
}

test('unauthenticated sender packet: encode matches the RFC layout, decode reads it', (t) => {
  const expected = expectedUnauthSender();
  t.deepEqual(encodeSenderPacket(sender), expected);
  t.deepEqual(decodeSenderPacket(expected), { ok: true, packet: sender });
});

test('unauthenticated reflector packet: encode matches the RFC layout, decode reads it', (t) => {
  const expected = expectedUnauthReflector();
  t.deepEqual(encodeReflectorPacket(reflector), expected);
  t.deepEqual(decodeReflectorPacket(expected), { ok: true, packet: reflector });
});

test('authenticated sender packet: encode matches the RFC layout with HMAC over 96 octets', (t) => {
  const expected = expectedAuthSender();
  t.deepEqual(encodeSenderPacket(sender, { authKey: KEY }), expected);
  t.deepEqual(decodeSenderPacket(expected, KEY), { ok: true, packet: sender });
});

test('authenticated reflector packet: encode matches the RFC layout with HMAC over 96 octets', (t) => {
  const expected = expectedAuthReflector();
  t.deepEqual(encodeReflectorPacket(reflector, { authKey: KEY }), expected);
  t.deepEqual(decodeReflectorPacket(expected, KEY), { ok: true, packet: reflector });
});

test('padding: longer packets are zero-padded on encode and accepted on decode', (t) => {
  const unauth = encodeSenderPacket(sender, { length: 1472 });
  t.is(unauth.length, 1472);
  t.deepEqual(unauth.subarray(0, 44), expectedUnauthSender());
  t.true(unauth.subarray(44).every((b) => b === 0));
  t.deepEqual(decodeSenderPacket(unauth), { ok: true, packet: sender });

  const auth = encodeReflectorPacket(reflector, { length: 500, authKey: KEY });
  t.is(auth.length, 500);
  t.deepEqual(auth.subarray(0, 112), expectedAuthReflector());
  t.true(auth.subarray(112).every((b) => b === 0));
  t.deepEqual(decodeReflectorPacket(auth, KEY), { ok: true, packet: reflector });
});

test('a requested length below the base size still yields the full base packet', (t) => {
  t.is(encodeSenderPacket(sender, { length: 10 }).length, 44);
  t.is(encodeSenderPacket(sender, { length: 10, authKey: KEY }).length, 112);
});

test('short packets are rejected as short, in both modes and both directions', (t) => {
  t.deepEqual(decodeSenderPacket(Buffer.alloc(43)), { ok: false, reason: 'short' });
  t.deepEqual(decodeReflectorPacket(Buffer.alloc(43)), { ok: false, reason: 'short' });
  t.deepEqual(decodeSenderPacket(Buffer.alloc(111), KEY), { ok: false, reason: 'short' });
  t.deepEqual(decodeReflectorPacket(expectedAuthReflector().subarray(0, 111), KEY), {
    ok: false,
    reason: 'short',
  });
  t.deepEqual(decodeSenderPacket(Buffer.alloc(0)), { ok: false, reason: 'short' });
});

test('HMAC: a wrong key or any flipped covered bit fails; padding is not covered', (t) => {
  const good = expectedAuthSender();
  t.deepEqual(decodeSenderPacket(good, Buffer.from('another key')), { ok: false, reason: 'auth' });
  for (let i = 0; i < 112; i++) {
    const bad = Buffer.from(good);
    bad[i] = (bad[i] ?? 0) ^ 0x01;
    t.deepEqual(decodeSenderPacket(bad, KEY), { ok: false, reason: 'auth' }, `byte ${i}`);
  }
  const padded = encodeSenderPacket(sender, { length: 200, authKey: KEY });
  padded[150] = 0xff;
  t.true(decodeSenderPacket(padded, KEY).ok);
});

test('HMAC direction: a reply never verifies as a test packet, nor a test packet as a reply', (t) => {
  // With one key over the same covered octets, a reflector's reply was a valid test packet for
  // another reflector: one spoofed packet started a loop between two reflectors.
  const reply = encodeReflectorPacket(reflector, { authKey: KEY });
  t.deepEqual(decodeSenderPacket(reply, KEY), { ok: false, reason: 'auth' });
  const request = encodeSenderPacket(sender, { authKey: KEY });
  t.deepEqual(decodeReflectorPacket(request, KEY), { ok: false, reason: 'auth' });
  // Not even a reply whose reflector fields are all zero, which looks like a test packet.
  const bare = encodeReflectorPacket(
    {
      ...reflector,
      receiveTimestamp: 0n,
      senderSeq: 0,
      senderTimestamp: 0n,
      senderErrorEstimate: 0,
      senderTtl: 0,
    },
    { authKey: KEY, length: 112 },
  );
  t.deepEqual(decodeSenderPacket(bare, KEY), { ok: false, reason: 'auth' });
  t.true(decodeReflectorPacket(bare, KEY).ok);
});

test('reflector fields: every reply carries them, a test packet never does', (t) => {
  for (const key of [undefined, KEY]) {
    t.false(hasReflectorFields(encodeSenderPacket(sender, { authKey: key, length: 300 }), key));
    t.true(hasReflectorFields(encodeReflectorPacket(reflector, { authKey: key }), key));
    // The RFC 8972 Session-Sender Identifier just before the span is not a reflector field.
    const withSsid = encodeSenderPacket(sender, { authKey: key });
    withSsid[key === undefined ? 14 : 26] = 0xab;
    t.false(hasReflectorFields(withSsid, key));
  }
});

test('decoders never throw on arbitrary bytes', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, auth) => {
      const buf = Buffer.from(bytes);
      const key = auth ? KEY : undefined;
      const a = decodeSenderPacket(buf, key);
      const b = decodeReflectorPacket(buf, key);
      const min = auth ? 112 : 44;
      if (buf.length < min) return !a.ok && a.reason === 'short' && !b.ok && b.reason === 'short';
      // A random 16-octet HMAC matches with probability 2^-128.
      if (auth) return !a.ok && a.reason === 'auth' && !b.ok && b.reason === 'auth';
      return a.ok && b.ok;
    }),
  );
  t.pass();
});

test('encode/decode round-trip for arbitrary field values', (t) => {
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
  const u16 = fc.integer({ min: 0, max: 0xffff });
  fc.assert(
    fc.property(
      u32,
      u64,
      u16,
      u64,
      u32,
      u64,
      u16,
      fc.integer({ min: 0, max: 255 }),
      fc.boolean(),
      (...v) => {
        const [
          seq,
          timestamp,
          errorEstimate,
          receiveTimestamp,
          senderSeq,
          senderTimestamp,
          senderErrorEstimate,
          senderTtl,
          auth,
        ] = v;
        const p: ReflectorPacket = {
          seq,
          timestamp,
          errorEstimate,
          receiveTimestamp,
          senderSeq,
          senderTimestamp,
          senderErrorEstimate,
          senderTtl,
        };
        const key = auth ? KEY : undefined;
        const r = decodeReflectorPacket(encodeReflectorPacket(p, { authKey: key }), key);
        const s = decodeSenderPacket(
          encodeSenderPacket({ seq, timestamp, errorEstimate }, { authKey: key }),
          key,
        );
        t.deepEqual(r, { ok: true, packet: p });
        t.deepEqual(s, { ok: true, packet: { seq, timestamp, errorEstimate } });
      },
    ),
    { numRuns: 200 },
  );
});

test('error estimate: bit layout S|Z|scale(6)|multiplier(8)', (t) => {
  // S=1, Z=0, scale=0b001010 (10), multiplier=5  ->  1 0 001010 00000101 = 0x8a05
  t.is(encodeErrorEstimate({ synchronized: true, scale: 10, multiplier: 5 }), 0x8a05);
  t.deepEqual(decodeErrorEstimate(0x8a05), {
    synchronized: true,
    ptp: false,
    scale: 10,
    multiplier: 5,
  });
  // Z bit alone is 0x4000.
  t.true(decodeErrorEstimate(0x4001).ptp);
  // Multiplier is never encoded as zero.
  t.is(encodeErrorEstimate({ synchronized: false, scale: 0, multiplier: 0 }) & 0xff, 1);
  // 10 ms: the estimate is never below what was asked for, and within one multiplier step.
  const e = errorEstimateFromSeconds(0.01, false);
  const secs = errorEstimateSeconds(e);
  t.true(secs >= 0.01 && secs < 0.01 * (1 + 2 / 128), `${secs}`);
  t.true(e.multiplier >= 1 && e.multiplier <= 255);
});

test('NTP: the Unix epoch is 2208988800 s after the NTP epoch', (t) => {
  t.is(NTP_UNIX_OFFSET_SECONDS, 2208988800);
  t.deepEqual(ntpParts(ntpFromUnixMs(0)), { seconds: 2208988800, fraction: 0 });
  t.is(unixMsFromNtp(ntpFromParts(2208988800, 0)), 0);
  // 2023-11-14T22:13:20.5Z = 1700000000.5 s: fraction 0.5 is 0x80000000.
  t.deepEqual(ntpParts(ntpFromUnixMs(1_700_000_000_500)), {
    seconds: 1_700_000_000 + 2208988800,
    fraction: 0x80000000,
  });
  // 0.25 s in ns.
  t.deepEqual(ntpParts(ntpFromUnixNs(250_000_000n)), { seconds: 2208988800, fraction: 0x40000000 });
});

test('NTP: wall ms round-trips to well under a microsecond', (t) => {
  fc.assert(
    fc.property(fc.double({ min: 0, max: 4_000_000_000_000, noNaN: true }), (ms) => {
      const back = unixMsFromNtp(ntpFromUnixMs(ms));
      return Math.abs(back - ms) < 1e-3;
    }),
  );
  t.pass();
});

test('NTP: ns round-trips exactly, including across the 2036 era rollover', (t) => {
  const rollover = (2n ** 32n - BigInt(NTP_UNIX_OFFSET_SECONDS)) * 1_000_000_000n; // 2036-02-07
  fc.assert(
    fc.property(
      fc.bigInt({ min: 0n, max: 4_000_000_000n * 1_000_000_000n }),
      (ns) => unixNsFromNtp(ntpFromUnixNs(ns)) === ns,
    ),
  );
  t.is(unixNsFromNtp(ntpFromUnixNs(rollover + 1n)), rollover + 1n);
  t.is(ntpParts(ntpFromUnixNs(rollover)).seconds, 0);
  t.is(ntpDiffNs(ntpFromUnixNs(rollover + 5_000n), ntpFromUnixNs(rollover - 5_000n)), 10_000n);
});

test('NTP: T3 = T2 + d gives T3 - T2 = d exactly (to the ns)', (t) => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      fc.bigInt({ min: 0n, max: 10n ** 12n }),
      (t2, d) => ntpDiffNs(ntpAddNs(t2, d), t2) === d,
    ),
  );
  t.is(ntpDiffNs(ntpFromParts(10, 0), ntpFromParts(11, 0)), -1_000_000_000n);
});
