// Property tests of the ICMP packet codec: the Internet checksum, echo requests from the stored
// pattern, and the parsers of what raw sockets and ping sockets deliver (never throwing, whatever
// the bytes).

import test from 'ava';
import fc from 'fast-check';
import {
  echoRequestInto,
  internetChecksum,
  parseIcmpPacket,
  parsePingReply,
} from './icmp-packet.ts';

// --- The parser. -------------------------------------------------------------------------------

function ipHeader(src: number[], dst: number[], payloadLength: number, ihlWords = 5): Buffer {
  const h = Buffer.alloc(ihlWords * 4);
  h[0] = 0x40 | ihlWords;
  h.writeUInt16BE(h.length + payloadLength, 2);
  h[8] = 64;
  h[9] = 1;
  Buffer.from(src).copy(h, 12);
  Buffer.from(dst).copy(h, 16);
  return h;
}

function echo(type: number, id: number, seq: number, payload: Uint8Array): Buffer {
  const m = Buffer.alloc(8 + payload.length);
  m[0] = type;
  m.writeUInt16BE(id, 4);
  m.writeUInt16BE(seq, 6);
  m.set(payload, 8);
  m.writeUInt16BE(internetChecksum(m), 2);
  return m;
}

const octets = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 });

test('internetChecksum matches the RFC 1071 example and verifies to zero', (t) => {
  // RFC 1071 section 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2, checksum 220d.
  t.is(internetChecksum(Buffer.from('0001f203f4f5f6f7', 'hex')), 0x220d);
  const m = echo(8, 0x1234, 7, Buffer.from('hello, odd'));
  t.is(internetChecksum(m), 0);
});

test('echo requests from the stored pattern are byte for byte the ones built in full', (t) => {
  // The reference: header, ping-like pattern, checksum summed over every byte.
  const reference = (length: number, ident: number, seq: number): Buffer => {
    const m = Buffer.alloc(length);
    m[0] = 8;
    m.writeUInt16BE(ident, 4);
    m.writeUInt16BE(seq, 6);
    for (let i = 8; i < length; i++) m[i] = i & 0xff;
    m.writeUInt16BE(internetChecksum(m), 2);
    return m;
  };
  const property = fc.property(
    fc.integer({ min: 8, max: 9000 }),
    fc.integer({ min: 0, max: 0xffff }),
    fc.integer({ min: 0, max: 0xffff }),
    fc.nat(40),
    (length, ident, seq, offset) => {
      // Written at an offset (after an IP header) into a buffer full of leftovers.
      const packet = Buffer.alloc(offset + length, 0xa5);
      echoRequestInto(packet, offset, ident, seq);
      // Buffer.equals, not t.deepEqual: diffing hundreds of large buffers is slow, and this ran
      // beside the socket tests (icmp.test.ts), where it would hold up their event loop.
      return (
        packet.subarray(offset).equals(reference(length, ident, seq)) &&
        internetChecksum(packet, offset) === 0
      );
    },
  );
  t.notThrows(() => fc.assert(property, { numRuns: 300 }));
});

test('parser: random bytes never throw and give a known kind', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const r = parseIcmpPacket(bytes);
      return ['echo-reply', 'error', 'ignore', 'malformed'].includes(r.kind);
    }),
    { numRuns: 5000 },
  );
  // Random bytes behind a plausible IPv4/ICMP header, to get past the first checks.
  fc.assert(
    fc.property(fc.integer({ min: 5, max: 15 }), fc.uint8Array({ maxLength: 120 }), (ihl, rest) => {
      const p = Buffer.concat([
        Buffer.from([0x40 | ihl, 0, 0, 0, 0, 0, 0, 0, 64, 1]),
        Buffer.from(rest),
      ]);
      const r = parseIcmpPacket(p);
      return ['echo-reply', 'error', 'ignore', 'malformed'].includes(r.kind);
    }),
    { numRuns: 5000 },
  );
  t.pass();
});

test('parser: echo replies round-trip id, seq and addresses, with IP options too', (t) => {
  fc.assert(
    fc.property(
      octets,
      octets,
      fc.integer({ min: 0, max: 0xffff }),
      fc.integer({ min: 0, max: 0xffff }),
      fc.uint8Array({ maxLength: 100 }),
      fc.integer({ min: 5, max: 15 }),
      (src, dst, id, seq, payload, ihl) => {
        const m = echo(0, id, seq, payload);
        const r = parseIcmpPacket(Buffer.concat([ipHeader(src, dst, m.length, ihl), m]));
        t.deepEqual(r, {
          kind: 'echo-reply',
          source: src.join('.'),
          destination: dst.join('.'),
          id,
          seq,
        });
      },
    ),
    { numRuns: 500 },
  );
});

test('parser: a corrupted echo reply is malformed; our own echo requests are ignored', (t) => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 60 }),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      (payload, at, flip) => {
        const m = echo(0, 1, 2, payload);
        const i = 8 + (at % payload.length);
        m[i] = (m[i] ?? 0) ^ flip;
        t.is(
          parseIcmpPacket(Buffer.concat([ipHeader([127, 0, 0, 1], [127, 0, 0, 1], m.length), m]))
            .kind,
          'malformed',
        );
      },
    ),
    { numRuns: 300 },
  );
  const req = echo(8, 1, 2, Buffer.alloc(56));
  t.is(
    parseIcmpPacket(Buffer.concat([ipHeader([127, 0, 0, 1], [127, 0, 0, 1], req.length), req]))
      .kind,
    'ignore',
  );
});

test('parser: errors quoting an echo request give the quoted id, seq and destination', (t) => {
  fc.assert(
    fc.property(
      octets,
      octets,
      fc.integer({ min: 0, max: 0xffff }),
      fc.integer({ min: 0, max: 0xffff }),
      fc.constantFrom(3, 11),
      fc.integer({ min: 0, max: 15 }),
      fc.integer({ min: 5, max: 15 }),
      (router, target, id, seq, type, code, innerIhl) => {
        const quotedEcho = echo(8, id, seq, Buffer.alloc(0));
        const quoted = Buffer.concat([ipHeader([10, 0, 0, 1], target, 8, innerIhl), quotedEcho]);
        const err = Buffer.alloc(8);
        err[0] = type;
        err[1] = code;
        err.writeUInt16BE(1400, 6);
        const r = parseIcmpPacket(
          Buffer.concat([ipHeader(router, [10, 0, 0, 1], 8 + quoted.length), err, quoted]),
        );
        t.like(r, {
          kind: 'error',
          source: router.join('.'),
          quotedDestination: target.join('.'),
          id,
          seq,
          icmpType: type,
        });
        if (r.kind === 'error') t.is(r.nextHopMtu, type === 3 && code === 4 ? 1400 : undefined);
        // Every truncation of it is handled without throwing, and never mistaken for a reply.
        const whole = Buffer.concat([
          ipHeader(router, [10, 0, 0, 1], 8 + quoted.length),
          err,
          quoted,
        ]);
        for (let n = 0; n < whole.length; n++) {
          const k = parseIcmpPacket(whole.subarray(0, n)).kind;
          t.true(k === 'malformed' || k === 'ignore', `length ${n}: ${k}`);
        }
      },
    ),
    { numRuns: 100 },
  );
});

test('parsePingReply: echo replies give id and seq; short or other types are not replies', (t) => {
  const reply = echo(0, 0x1234, 7, Buffer.from('abc'));
  t.deepEqual(parsePingReply(reply, '10.0.0.1', undefined), {
    kind: 'echo-reply',
    source: '10.0.0.1',
    destination: '',
    id: 0x1234,
    seq: 7,
  });
  t.like(parsePingReply(reply, '10.0.0.1', '10.0.0.2'), { destination: '10.0.0.2' });
  t.like(parsePingReply(reply.subarray(0, 7), '10.0.0.1', undefined), { kind: 'malformed' });
  t.like(parsePingReply(echo(8, 1, 1, Buffer.alloc(0)), '10.0.0.1', undefined), {
    kind: 'ignore',
  });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
      const k = parsePingReply(bytes, '10.0.0.1', undefined).kind;
      return k === 'echo-reply' || k === 'ignore' || k === 'malformed';
    }),
  );
});
