// Tests for the dns probe over real loopback sockets: against the DnsServer responder for the
// honest outcomes (answers, NODATA, NXDOMAIN, REFUSED, truncation then TCP), and against small
// hand-made servers that send crafted answers (wrong id, wrong question, wrong source, cut
// short, oversized, compression loops, random bytes) to check those are counted, never end a UDP
// query a real answer can still satisfy, never crash and never hang. Every query goes to a
// server this file started on 127.0.0.1; nothing reaches the machine's resolver.

import test from 'ava';
import fc from 'fast-check';
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { DecodedPacket } from 'dns-packet';
import { SystemClock } from '../core/clock.ts';
import { DnsServer } from '../demo/dns-server.ts';
import {
  DnsProbe,
  answeredCorrectly,
  checkResponse,
  type DnsQuery,
  type DnsResult,
} from './dns.ts';

const clock = new SystemClock();
const LO = '127.0.0.1';
const ZONE = 'cluster.local';
const NAME = 'kubernetes.default.svc.cluster.local';

async function open(
  opts: { ednsUdpSize?: number; maxTcpResponseBytes?: number } = {},
): Promise<DnsProbe> {
  return DnsProbe.open({ clock, bindAddress: LO, ...opts });
}

async function startServer(): Promise<DnsServer> {
  return DnsServer.start({
    address: LO,
    port: 0,
    zones: [ZONE],
    records: { [NAME]: ['10.96.0.1'], 'v6only.default.svc.cluster.local': ['fd00::1'] },
  });
}

function q(port: number, over: Partial<DnsQuery> = {}): DnsQuery {
  return { server: LO, port, name: NAME, type: 'A', transport: 'udp', ...over };
}

/** A bare UDP server on 127.0.0.1 that hands every datagram to `onQuery`. */
async function crafted(
  onQuery: (msg: Buffer, reply: (b: Buffer) => void, rinfo: dgram.RemoteInfo) => void,
): Promise<{ port: number; close: () => Promise<void> }> {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) =>
    onQuery(msg, (b) => sock.send(b, rinfo.port, rinfo.address), rinfo),
  );
  await new Promise<void>((resolve) => sock.bind(0, LO, () => resolve()));
  return {
    port: sock.address().port,
    close: () => new Promise((resolve) => sock.close(() => resolve())),
  };
}

/** A bare TCP server that hands each connection to `onConn`; records how each one ended. */
async function craftedTcp(
  onConn: (socket: net.Socket, query: () => Promise<Buffer>) => void,
): Promise<{ port: number; endings: string[]; close: () => Promise<void> }> {
  const endings: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', (err) => endings.push((err as NodeJS.ErrnoException).code ?? 'error'));
    socket.on('end', () => endings.push('fin'));
    socket.on('close', () => sockets.delete(socket));
    let buf = Buffer.alloc(0);
    const waiting: Array<(b: Buffer) => void> = [];
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const m = buf.subarray(2, 2 + buf.readUInt16BE(0));
        for (const w of waiting.splice(0)) w(m);
      }
    });
    onConn(socket, () => new Promise((resolve) => waiting.push(resolve)));
  });
  await new Promise<void>((resolve) => server.listen(0, LO, () => resolve()));
  const addr = server.address() as net.AddressInfo;
  return {
    port: addr.port,
    endings,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An honest answer to `query`, built with dns-packet, then optionally changed. */
function answerTo(query: Buffer, change: (p: Record<string, unknown>) => void = () => {}): Buffer {
  const qp = dnsPacket.decode(query);
  const p: Record<string, unknown> = {
    type: 'response',
    id: qp.id,
    flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED,
    questions: qp.questions,
    answers: [{ type: 'A', name: qp.questions?.[0]?.name ?? '.', ttl: 5, data: '10.96.0.1' }],
  };
  change(p);
  return dnsPacket.encode(p);
}

function framed(b: Buffer): Buffer {
  const f = Buffer.alloc(2 + b.length);
  f.writeUInt16BE(b.length, 0);
  b.copy(f, 2);
  return f;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------- honest server

test('noerror with answers over UDP', async (t) => {
  const server = await startServer();
  const probe = await open();
  t.teardown(async () => {
    await probe.close();
    await server.close();
  });
  const r = await probe.run(q(server.port), 2000);
  t.like(r, {
    ok: true,
    outcome: 'noerror',
    rcode: 'NOERROR',
    answers: 1,
    addresses: ['10.96.0.1'],
    transport: 'udp',
    truncatedRetried: false,
    authoritative: true,
  });
  t.true(r.seconds > 0 && r.seconds < 1, `seconds ${r.seconds}`);
  t.true(Math.abs(r.sentAtMs - Date.now()) < 5000);
  t.is(server.stats().udpQueries, 1);
  t.like(probe.stats(), {
    sent: 1,
    udpSent: 1,
    received: 1,
    malformed: 0,
    mismatched: 0,
    inFlight: 0,
  });
});

for (const transport of ['udp', 'tcp'] as const) {
  test(`outcomes over ${transport}: noerror, nodata, nxdomain, refused; trailing dot and case`, async (t) => {
    const server = await startServer();
    const probe = await open();
    t.teardown(async () => {
      await probe.close();
      await server.close();
    });
    const cases: Array<[Partial<DnsQuery>, Partial<DnsResult>]> = [
      [{ name: `${NAME}.` }, { outcome: 'noerror', answers: 1, rcode: 'NOERROR' }],
      [{ name: NAME.toUpperCase() }, { outcome: 'noerror', answers: 1 }],
      [{ type: 'AAAA' }, { outcome: 'nodata', answers: 0, rcode: 'NOERROR' }],
      [
        { name: 'v6only.default.svc.cluster.local', type: 'AAAA' },
        { outcome: 'noerror', addresses: ['fd00::1'] },
      ],
      [{ name: 'missing.default.svc.cluster.local' }, { outcome: 'nxdomain', rcode: 'NXDOMAIN' }],
      [{ name: 'example.com' }, { outcome: 'refused', rcode: 'REFUSED' }],
    ];
    for (const [over, want] of cases) {
      const r = await probe.run(q(server.port, { transport, ...over }), 2000);
      t.like(r, { ok: true, transport, truncatedRetried: false, ...want }, JSON.stringify(over));
    }
    const s = server.stats();
    t.is(transport === 'udp' ? s.udpQueries : s.tcpQueries, cases.length);
    t.true(answeredCorrectly('nxdomain') && !answeredCorrectly('refused'));
  });
}

test('a truncated UDP answer is retried over TCP; time covers both legs', async (t) => {
  const server = await startServer();
  const probe = await open();
  t.teardown(async () => {
    await probe.close();
    await server.close();
  });
  const big = 'big.default.svc.cluster.local';
  server.set(
    big,
    Array.from({ length: 60 }, (_, i) => `10.3.0.${i + 1}`),
  );
  const r = await probe.run(q(server.port, { name: big }), 2000);
  t.like(r, {
    ok: true,
    outcome: 'noerror',
    answers: 60,
    truncatedRetried: true,
    transport: 'tcp',
  });
  t.like(server.stats(), { udpQueries: 1, tcpQueries: 1, truncated: 1 });
  t.like(probe.stats(), { udpSent: 1, tcpSent: 1, truncated: 1 });
  // With EDNS the same answer fits in one datagram.
  const edns = await open({ ednsUdpSize: 4096 });
  t.teardown(() => edns.close());
  const r2 = await edns.run(q(server.port, { name: big }), 2000);
  t.like(r2, { outcome: 'noerror', answers: 60, truncatedRetried: false, transport: 'udp' });
});

test('two hundred concurrent queries share one socket and each gets its own answer', async (t) => {
  const server = await startServer();
  const probe = await open();
  t.teardown(async () => {
    await probe.close();
    await server.close();
  });
  for (let i = 0; i < 50; i++)
    server.set(`svc-${i}.default.svc.cluster.local`, [`10.4.0.${i + 1}`]);
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, k) =>
      probe.run(q(server.port, { name: `svc-${k % 50}.default.svc.cluster.local` }), 5000),
    ),
  );
  results.forEach((r, k) => t.deepEqual(r.addresses, [`10.4.0.${(k % 50) + 1}`], `query ${k}`));
  t.is(probe.stats().inFlight, 0);
});

// ---------------------------------------------------------------- nothing answering

test('timeout: a silent server, and a closed UDP port (ICMP is not reported)', async (t) => {
  const silent = await crafted(() => {});
  const probe = await open();
  t.teardown(async () => {
    await probe.close();
    await silent.close();
  });
  const r = await probe.run(q(silent.port), 150);
  t.like(r, { ok: false, outcome: 'timeout', answers: 0, transport: 'udp' });
  t.true(r.seconds >= 0.14 && r.seconds < 1, `seconds ${r.seconds}`);
  const closedPort = await freePort('udp');
  const r2 = await probe.run(q(closedPort), 150);
  t.is(r2.outcome, 'timeout');
});

test('unreachable: TCP to a closed port is refused at once', async (t) => {
  const probe = await open();
  t.teardown(() => probe.close());
  const closedPort = await freePort('tcp');
  const r = await probe.run(q(closedPort, { transport: 'tcp' }), 2000);
  t.like(r, { ok: false, outcome: 'unreachable', transport: 'tcp' });
  t.regex(r.detail ?? '', /ECONNREFUSED/);
  t.true(r.seconds < 1);
});

async function freePort(kind: 'udp' | 'tcp'): Promise<number> {
  if (kind === 'udp') {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, LO, () => resolve()));
    const port = s.address().port;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    return port;
  }
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, LO, () => resolve()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

// ---------------------------------------------------------------- bad queries, lifecycle

test('bad queries end as error without sending anything', async (t) => {
  const seen: Buffer[] = [];
  const srv = await crafted((m) => seen.push(m));
  const probe = await open();
  t.teardown(async () => {
    await probe.close();
    await srv.close();
  });
  const bad: Array<[Partial<DnsQuery>, RegExp]> = [
    [{ server: 'localhost' }, /not an IPv4/],
    [{ server: '::1' }, /not an IPv4/],
    [{ port: 0 }, /bad port/],
    [{ port: 70_000 }, /bad port/],
    [{ name: '' }, /empty name/],
    [{ name: 'a..b' }, /empty label/],
    [{ name: `${'x'.repeat(64)}.example` }, /63/],
    [{ name: `${'abcdefghi.'.repeat(26)}com` }, /longer than 253/],
    [{ type: 'BOGUS' as 'A' }, /cannot encode/],
  ];
  for (const [over, why] of bad) {
    const r = await probe.run(q(srv.port, over), 500);
    t.like(r, { ok: false, outcome: 'error' }, JSON.stringify(over));
    t.regex(r.detail ?? '', why, JSON.stringify(over));
  }
  await sleep(50);
  t.is(seen.length, 0);
  t.is(probe.stats().sent, 0);
});

test('close() ends queries in flight; run() after close is an error', async (t) => {
  const silent = await crafted(() => {});
  const silentTcp = await craftedTcp(() => {});
  t.teardown(async () => {
    await silent.close();
    await silentTcp.close();
  });
  const probe = await open();
  const pending = probe.run(q(silent.port), 10_000);
  const pendingTcp = probe.run(q(silentTcp.port, { transport: 'tcp' }), 10_000);
  await sleep(50);
  t.is(probe.stats().inFlight, 2);
  await probe.close();
  t.like(await pending, { ok: false, outcome: 'error', detail: 'probe closed' });
  t.like(await pendingTcp, {
    ok: false,
    outcome: 'error',
    detail: 'probe closed',
    transport: 'tcp',
  });
  t.like(await probe.run(q(silent.port), 100), { outcome: 'error', detail: 'probe closed' });
  t.is(probe.stats().inFlight, 0);
});

test('ids are random per query', async (t) => {
  const ids: number[] = [];
  const srv = await crafted((m, reply) => {
    ids.push(m.readUInt16BE(0));
    reply(answerTo(m));
  });
  const probe = await open();
  t.teardown(async () => {
    await probe.close();
    await srv.close();
  });
  for (let i = 0; i < 100; i++) t.is((await probe.run(q(srv.port), 1000)).outcome, 'noerror');
  t.true(new Set(ids).size >= 95, `${new Set(ids).size} distinct ids of 100`);
  const sorted = [...ids].sort((a, b) => a - b);
  t.notDeepEqual(ids, sorted, 'ids are not sequential');
});

// ---------------------------------------------------------------- hostile UDP answers

interface HostileCase {
  readonly title: string;
  /** The bad datagram(s) sent for a query. */
  readonly bad: (query: Buffer) => Buffer[];
  /** Counter the bad datagram must land in. */
  readonly counter: 'malformed' | 'mismatched';
  /** Outcome when only the bad datagram comes: 'malformed' if attributable, else 'timeout'. */
  readonly alone: 'malformed' | 'timeout';
}

function pointerLoopAnswer(query: Buffer, kind: 'self' | 'cycle' | 'forward'): Buffer {
  const h = Buffer.from(query.subarray(0, 12));
  h.writeUInt16BE(0x8180, 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(0, 6);
  const body =
    kind === 'self'
      ? Buffer.from([0xc0, 12, 0, 1, 0, 1])
      : kind === 'cycle'
        ? Buffer.from([1, 0x61, 0xc0, 14, 0xc0, 12, 0, 1, 0, 1])
        : Buffer.from([0xc0, 20, 0, 1, 0, 1, 0, 0, 1, 0x61, 0]);
  return Buffer.concat([h, body]);
}

const HOSTILE: readonly HostileCase[] = [
  {
    title: 'wrong id',
    bad: (m) => [answerTo(m, (p) => (p.id = ((p.id as number) + 1) & 0xffff))],
    counter: 'mismatched',
    alone: 'timeout',
  },
  {
    title: 'wrong question name',
    bad: (m) => [
      answerTo(m, (p) => (p.questions = [{ name: 'evil.example', type: 'A', class: 'IN' }])),
    ],
    counter: 'mismatched',
    alone: 'malformed',
  },
  {
    title: 'wrong question type',
    bad: (m) => [answerTo(m, (p) => (p.questions = [{ name: NAME, type: 'MX', class: 'IN' }]))],
    counter: 'mismatched',
    alone: 'malformed',
  },
  {
    title: 'no question',
    bad: (m) => [answerTo(m, (p) => (p.questions = []))],
    counter: 'mismatched',
    alone: 'malformed',
  },
  {
    title: 'truncated bytes',
    bad: (m) => {
      const full = answerTo(m);
      return [full.subarray(0, full.length - 7), full.subarray(0, 13), full.subarray(0, 1)];
    },
    counter: 'malformed',
    alone: 'malformed',
  },
  {
    title: 'oversized (over 512 bytes without EDNS)',
    bad: (m) => [
      answerTo(m, (p) => {
        p.answers = Array.from({ length: 40 }, (_, i) => ({
          type: 'A',
          name: NAME,
          ttl: 5,
          data: `10.9.0.${i}`,
        }));
      }),
    ],
    counter: 'malformed',
    alone: 'malformed',
  },
  {
    title: 'QR clear (the query echoed back)',
    bad: (m) => [Buffer.from(m)],
    counter: 'malformed',
    alone: 'malformed',
  },
  {
    title: 'another opcode',
    bad: (m) => {
      const b = answerTo(m);
      b.writeUInt16BE(b.readUInt16BE(2) | (2 << 11), 2);
      return [b];
    },
    counter: 'malformed',
    alone: 'malformed',
  },
  {
    title: 'compression pointer to itself',
    bad: (m) => [pointerLoopAnswer(m, 'self')],
    counter: 'malformed',
    alone: 'malformed',
  },
  {
    title: 'compression pointer cycle',
    bad: (m) => [pointerLoopAnswer(m, 'cycle')],
    counter: 'malformed',
    alone: 'malformed',
  },
  {
    title: 'forward compression pointer',
    bad: (m) => [pointerLoopAnswer(m, 'forward')],
    counter: 'malformed',
    alone: 'malformed',
  },
  {
    title: 'header claims 65535 questions',
    bad: (m) => {
      const b = answerTo(m);
      b.writeUInt16BE(0xffff, 4);
      return [b];
    },
    counter: 'mismatched',
    alone: 'malformed',
  },
  {
    title: 'garbage',
    bad: (m) => [
      Buffer.concat([m.subarray(0, 2), Buffer.from('\xff\xfe garbage garbage garbage')]),
    ],
    counter: 'malformed',
    alone: 'malformed',
  },
];

for (const c of HOSTILE) {
  test(`hostile UDP answer, ${c.title}: counted, does not end the query`, async (t) => {
    const srv = await crafted((m, reply) => {
      for (const b of c.bad(m)) reply(b);
      // The real answer follows a little later.
      setTimeout(() => reply(answerTo(m)), 30);
    });
    const probe = await open();
    t.teardown(async () => {
      await probe.close();
      await srv.close();
    });
    const r = await probe.run(q(srv.port), 2000);
    t.like(r, { ok: true, outcome: 'noerror', answers: 1 });
    t.true(probe.stats()[c.counter] >= 1, JSON.stringify(probe.stats()));
  });

  test.serial(
    `hostile UDP answer, ${c.title}: alone it gives '${c.alone}' at the deadline`,
    async (t) => {
      let sent = 0;
      const srv = await crafted((m, reply) => {
        for (const b of c.bad(m)) {
          reply(b);
          sent++;
        }
      });
      const probe = await open();
      t.teardown(async () => {
        await probe.close();
        await srv.close();
      });
      const before = Date.now();
      const r = await probe.run(q(srv.port), 300);
      const took = Date.now() - before;
      t.like(r, { ok: false, outcome: c.alone });
      t.true(took >= 290 && took < 2000, `took ${took} ms`);
      t.true(sent >= 1);
      t.is(probe.stats()[c.counter], sent, JSON.stringify(probe.stats()));
    },
  );
}

test('an answer from the right address but another port is ignored', async (t) => {
  const other = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => other.bind(0, LO, () => resolve()));
  const srv = await crafted((m, _reply, rinfo) => {
    other.send(answerTo(m), rinfo.port, rinfo.address);
  });
  const probe = await open();
  t.teardown(async () => {
    await probe.close();
    await srv.close();
    other.close();
  });
  const r = await probe.run(q(srv.port), 200);
  t.is(r.outcome, 'timeout');
  t.is(probe.stats().mismatched, 1);
});

test('crafted rcodes: SERVFAIL, FORMERR without a question', async (t) => {
  let mode: 'servfail' | 'formerr' = 'servfail';
  const srv = await crafted((m, reply) => {
    if (mode === 'servfail') reply(answerTo(m, (p) => ((p.flags = 2), (p.answers = []))));
    else reply(answerTo(m, (p) => ((p.flags = 1), (p.answers = []), (p.questions = []))));
  });
  const probe = await open();
  t.teardown(async () => {
    await probe.close();
    await srv.close();
  });
  t.like(await probe.run(q(srv.port), 1000), { ok: true, outcome: 'servfail', rcode: 'SERVFAIL' });
  mode = 'formerr';
  t.like(await probe.run(q(srv.port), 1000), {
    ok: true,
    outcome: 'other-rcode',
    rcode: 'FORMERR',
  });
});

test('only answers of the asked type count; a CNAME alone is nodata', async (t) => {
  const srv = await crafted((m, reply) =>
    reply(
      answerTo(m, (p) => {
        p.answers = [{ type: 'CNAME', name: NAME, ttl: 5, data: 'elsewhere.cluster.local' }];
      }),
    ),
  );
  const probe = await open();
  t.teardown(async () => {
    await probe.close();
    await srv.close();
  });
  t.like(await probe.run(q(srv.port), 1000), { ok: true, outcome: 'nodata', answers: 0 });
});

test('property: random bytes as answers never crash, never outlive the deadline, are counted', async (t) => {
  let nextReply: Buffer = Buffer.alloc(0);
  let withId = false;
  const srv = await crafted((m, reply) => {
    const b = Buffer.from(nextReply);
    if (withId && b.length >= 2) m.copy(b, 0, 0, 2);
    reply(b);
  });
  const probe = await open();
  t.teardown(async () => {
    await probe.close();
    await srv.close();
  });
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ minLength: 0, maxLength: 700 }),
      fc.boolean(),
      async (bytes, keepId) => {
        nextReply = Buffer.from(bytes);
        withId = keepId;
        const before = probe.stats();
        const started = Date.now();
        const r = await probe.run(q(srv.port), 40);
        const took = Date.now() - started;
        await sleep(5);
        const after = probe.stats();
        runs++;
        const counted =
          after.malformed + after.mismatched - before.malformed - before.mismatched >= 1;
        // Random bytes with the right id may by chance be a valid answer; then it must say so.
        const valid =
          r.ok &&
          ['noerror', 'nodata', 'nxdomain', 'servfail', 'refused', 'other-rcode'].includes(
            r.outcome,
          );
        return (
          took < 40 + 1500 && (valid || (['timeout', 'malformed'].includes(r.outcome) && counted))
        );
      },
    ),
    { numRuns: 60 },
  );
  t.is(runs, 60);
  t.is(probe.stats().inFlight, 0);
});

// ---------------------------------------------------------------- hostile TCP answers

test('TCP: a malformed answer ends the query at once as malformed', async (t) => {
  const cases: Array<[string, (m: Buffer, s: net.Socket) => void, RegExp]> = [
    [
      'wrong id',
      (m, s) => s.write(framed(answerTo(m, (p) => (p.id = (p.id as number) ^ 1)))),
      /id/,
    ],
    [
      'wrong question',
      (m, s) =>
        s.write(framed(answerTo(m, (p) => (p.questions = [{ name: 'x.example', type: 'A' }])))),
      /question/,
    ],
    [
      'garbage',
      (_m, s) => s.write(framed(Buffer.from('garbage garbage garbage'))),
      /QR|undecodable|opcode|questions/,
    ],
    [
      'cut short then closed',
      (m, s) => {
        const f = framed(answerTo(m));
        s.end(f.subarray(0, f.length - 5));
      },
      /truncated/,
    ],
    [
      'length prefix over the limit',
      (_m, s) => s.write(Buffer.from([0xff, 0xff, 1, 2, 3])),
      /oversized/,
    ],
    ['pointer loop', (m, s) => s.write(framed(pointerLoopAnswer(m, 'cycle'))), /undecodable/],
  ];
  for (const [title, act, why] of cases) {
    const srv = await craftedTcp((socket, query) => {
      void query().then((m) => act(m, socket));
    });
    const probe = await open({ maxTcpResponseBytes: 4096 });
    const started = Date.now();
    const r = await probe.run(q(srv.port, { transport: 'tcp' }), 3000);
    t.like(r, { ok: false, outcome: 'malformed', transport: 'tcp' }, title);
    t.regex(r.detail ?? '', why, title);
    t.true(Date.now() - started < 1000, title);
    await probe.close();
    await srv.close();
  }
});

test('TCP: closed without an answer is an error; silent is a timeout', async (t) => {
  const closer = await craftedTcp((socket, query) => void query().then(() => socket.end()));
  const silent = await craftedTcp(() => {});
  const probe = await open();
  t.teardown(async () => {
    await probe.close();
    await closer.close();
    await silent.close();
  });
  t.like(await probe.run(q(closer.port, { transport: 'tcp' }), 2000), {
    outcome: 'error',
    detail: 'connection closed without an answer',
  });
  const r = await probe.run(q(silent.port, { transport: 'tcp' }), 150);
  t.like(r, { outcome: 'timeout', transport: 'tcp' });
});

test('TCP: an answer split over many writes is reassembled; the connection ends with a reset', async (t) => {
  const srv = await craftedTcp((socket, query) => {
    void query().then(async (m) => {
      const f = framed(answerTo(m));
      for (let i = 0; i < f.length; i++) {
        socket.write(f.subarray(i, i + 1));
        if (i % 8 === 0) await sleep(1);
      }
    });
  });
  const probe = await open();
  t.teardown(async () => {
    await probe.close();
    await srv.close();
  });
  const r = await probe.run(q(srv.port, { transport: 'tcp' }), 3000);
  t.like(r, { ok: true, outcome: 'noerror', answers: 1, transport: 'tcp' });
  await sleep(50);
  t.deepEqual(srv.endings, ['ECONNRESET']);
});

test('a worst-case pointer-chain answer at the TCP size limit is rejected quickly', (t) => {
  // Pointers chained back-to-back in an opaque record, then many records whose owner names
  // start at the end of the chain: the most work dns-packet can be made to do per byte.
  const limit = 16_384;
  const header = Buffer.alloc(12);
  header.writeUInt16BE(7, 0);
  header.writeUInt16BE(0x8180, 2);
  header.writeUInt16BE(1, 4);
  const question = Buffer.from([0, 0, 1, 0, 1]);
  const chainLen = 4096;
  const rdata = Buffer.alloc(chainLen * 2);
  const rdStart = 12 + question.length + 1 + 10; // root owner, fixed fields
  rdata.writeUInt16BE(0x0000, 0);
  for (let i = 1; i < chainLen; i++) rdata.writeUInt16BE(0xc000 | (rdStart + (i - 1) * 2), i * 2);
  const nullRr = Buffer.concat([Buffer.from([0, 0, 10, 0, 1, 0, 0, 0, 5]), Buffer.alloc(2), rdata]);
  nullRr.writeUInt16BE(rdata.length, 9);
  const last = 0xc000 | (rdStart + (chainLen - 1) * 2);
  const rrs: Buffer[] = [nullRr];
  let size = 12 + question.length + nullRr.length;
  while (size + 16 <= limit) {
    const rr = Buffer.from([0, 0, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1]);
    rr.writeUInt16BE(last, 0);
    rrs.push(rr);
    size += rr.length;
  }
  header.writeUInt16BE(rrs.length, 6);
  const msg = Buffer.concat([header, question, ...rrs]);
  t.true(msg.length <= limit);
  const started = process.hrtime.bigint();
  const res = checkResponse({ id: 7, name: '.', type: 'A' }, msg, limit);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.true(ms < 1000, `${ms} ms`);
  t.not(res.kind, 'mismatched');
});

test('checkResponse: oversized before anything else, short header, honest answer', (t) => {
  const query = dnsPacket.encode({ type: 'query', id: 5, questions: [{ name: NAME, type: 'A' }] });
  const good = answerTo(query);
  const expected = { id: 5, name: NAME, type: 'A' } as const;
  t.like(checkResponse(expected, good, 512), { kind: 'answer', rcode: 'NOERROR', answers: 1 });
  t.like(checkResponse(expected, good, good.length - 1), { kind: 'malformed' });
  t.like(checkResponse(expected, good.subarray(0, 11), 512), { kind: 'malformed' });
  t.like(checkResponse({ ...expected, name: NAME.toUpperCase() }, good, 512), { kind: 'answer' });
  t.like(checkResponse({ ...expected, type: 'AAAA' }, good, 512), { kind: 'mismatched' });
  const decoded: DecodedPacket = dnsPacket.decode(good);
  t.true(decoded.flag_qr);
});

test('freshSocket: each UDP lookup comes from a new source port, like a Pod resolver', async (t) => {
  const ports: number[] = [];
  const srv = dgram.createSocket('udp4');
  srv.on('message', (msg, rinfo) => {
    ports.push(rinfo.port);
    const q = dnsPacket.decode(msg);
    const reply = dnsPacket.encode({
      id: q.id,
      type: 'response',
      flags: dnsPacket.AUTHORITATIVE_ANSWER,
      questions: q.questions,
      answers: [{ type: 'A', name: q.questions![0]!.name, ttl: 5, data: '127.0.0.9' }],
    });
    srv.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => srv.bind(0, '127.0.0.1', r));
  const probe = await DnsProbe.open({ clock: new SystemClock(), bindAddress: '127.0.0.1' });
  t.teardown(async () => {
    await probe.close();
    srv.close();
  });
  const port = srv.address().port;
  const q = { server: '127.0.0.1', port, name: 'a.example', type: 'A', transport: 'udp' } as const;
  for (let i = 0; i < 3; i++)
    t.like(await probe.run({ ...q, freshSocket: true }, 1000), { outcome: 'noerror' });
  t.like(await probe.run(q, 1000), { outcome: 'noerror' });
  t.is(new Set(ports.slice(0, 3)).size, 3, `fresh lookups came from ${ports.join(', ')}`);
  t.false(ports.slice(0, 3).includes(probe.port), 'not from the shared socket');
  t.is(ports[3], probe.port, 'a plain lookup uses the shared socket');
});
