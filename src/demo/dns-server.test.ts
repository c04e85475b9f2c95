// Tests for the demo/test DNS responder, driven with raw sockets and dns-packet (not with the
// dns probe) so the responder is checked independently of the client that usually queries it.
// Everything runs on 127.0.0.1 with kernel-chosen ports.

import test from 'ava';
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Packet, RecordType } from 'dns-packet';
import { DnsServer } from './dns-server.ts';

const ZONE = 'cluster.local';

function dataOf(a: Answer): unknown {
  return 'data' in a ? a.data : undefined;
}

async function startServer(): Promise<DnsServer> {
  return DnsServer.start({
    address: '127.0.0.1',
    port: 0,
    zones: [ZONE],
    records: {
      'kubernetes.default.svc.cluster.local': ['10.96.0.1'],
      'dual.default.svc.cluster.local.': ['10.0.0.7', 'fd00::7'],
    },
    srv: {
      '_https._tcp.kubernetes.default.svc.cluster.local': [
        { priority: 0, weight: 100, port: 443, target: 'kubernetes.default.svc.cluster.local' },
      ],
    },
  });
}

function query(
  name: string,
  type: RecordType,
  opts: { rd?: boolean; edns?: number; id?: number } = {},
): Buffer {
  const p: Packet = {
    type: 'query',
    id: opts.id ?? 4242,
    flags: opts.rd === false ? 0 : dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
  };
  if (opts.edns !== undefined)
    p.additionals = [
      {
        type: 'OPT',
        name: '.',
        udpPayloadSize: opts.edns,
        extendedRcode: 0,
        ednsVersion: 0,
        flags: 0,
        flag_do: false,
        options: [],
      },
    ];
  return dnsPacket.encode(p);
}

/** Sends one datagram and returns the first reply, or undefined after waitMs. */
async function udpExchange(port: number, msg: Buffer, waitMs = 1000): Promise<Buffer | undefined> {
  const sock = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
    return await new Promise<Buffer | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), waitMs);
      sock.once('message', (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      sock.send(msg, port, '127.0.0.1');
    });
  } finally {
    sock.close();
  }
}

async function udpAsk(port: number, msg: Buffer): Promise<{ raw: Buffer; p: DecodedPacket }> {
  const raw = await udpExchange(port, msg);
  if (raw === undefined) throw new Error('no reply');
  return { raw, p: dnsPacket.decode(raw) };
}

/** Sends framed messages on one TCP connection and collects that many framed replies. */
async function tcpExchange(port: number, msgs: readonly Buffer[]): Promise<DecodedPacket[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const out: DecodedPacket[] = [];
    socket.on('error', reject);
    socket.on('connect', () => {
      for (const m of msgs) {
        const f = Buffer.alloc(2 + m.length);
        f.writeUInt16BE(m.length, 0);
        m.copy(f, 2);
        socket.write(f);
      }
    });
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0);
        out.push(dnsPacket.decode(buf.subarray(2, 2 + len)));
        buf = buf.subarray(2 + len);
      }
      if (out.length === msgs.length) {
        socket.resetAndDestroy();
        resolve(out);
      }
    });
  });
}

test('A record: flags, id, question echoed with its case, answer', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const { p } = await udpAsk(
    server.port,
    query('Kubernetes.Default.svc.CLUSTER.local', 'A', { id: 777 }),
  );
  t.is(p.id, 777);
  t.true(p.flag_qr);
  t.true(p.flag_aa);
  t.true(p.flag_rd);
  t.false(p.flag_ra);
  t.false(p.flag_tc);
  t.is((p as unknown as { rcode: string }).rcode, 'NOERROR');
  t.deepEqual(p.questions, [
    { name: 'Kubernetes.Default.svc.CLUSTER.local', type: 'A', class: 'IN' },
  ]);
  t.is(p.answers?.length, 1);
  t.like(p.answers?.[0], {
    type: 'A',
    data: '10.96.0.1',
    name: 'Kubernetes.Default.svc.CLUSTER.local',
  });
});

test('RD is copied, not forced', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const { p } = await udpAsk(
    server.port,
    query('kubernetes.default.svc.cluster.local', 'A', { rd: false }),
  );
  t.false(p.flag_rd);
  t.is(p.answers?.length, 1);
});

test('AAAA and SRV records', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const aaaa = await udpAsk(server.port, query('dual.default.svc.cluster.local', 'AAAA'));
  t.deepEqual(aaaa.p.answers?.map(dataOf), ['fd00::7']);
  const a = await udpAsk(server.port, query('dual.default.svc.cluster.local', 'A'));
  t.deepEqual(a.p.answers?.map(dataOf), ['10.0.0.7']);
  const srv = await udpAsk(
    server.port,
    query('_https._tcp.kubernetes.default.svc.cluster.local', 'SRV'),
  );
  t.like(srv.p.answers?.[0], {
    type: 'SRV',
    data: { port: 443, target: 'kubernetes.default.svc.cluster.local' },
  });
});

test('NXDOMAIN inside the zone, with the SOA', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const { p } = await udpAsk(server.port, query('nope.default.svc.cluster.local', 'A'));
  t.is((p as unknown as { rcode: string }).rcode, 'NXDOMAIN');
  t.true(p.flag_aa);
  t.is(p.answers?.length, 0);
  t.is(p.authorities?.[0]?.type, 'SOA');
  t.is(p.authorities?.[0]?.name, ZONE);
  t.is(server.stats().nxdomain, 1);
});

test('NODATA: other type, zone apex, empty non-terminal', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  for (const [name, type] of [
    ['kubernetes.default.svc.cluster.local', 'AAAA'],
    ['kubernetes.default.svc.cluster.local', 'TXT'],
    [ZONE, 'A'],
    ['default.svc.cluster.local', 'A'],
    ['svc.cluster.local', 'A'],
  ] as const) {
    const { p } = await udpAsk(server.port, query(name, type));
    t.is((p as unknown as { rcode: string }).rcode, 'NOERROR', `${name} ${type}`);
    t.is(p.answers?.length, 0, `${name} ${type}`);
    t.is(p.authorities?.[0]?.type, 'SOA', `${name} ${type}`);
  }
});

test('REFUSED outside its zones, not authoritative, and never recursing', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  for (const name of ['example.com', 'cluster.local.evil.example', 'local', 'notcluster.local']) {
    const { p } = await udpAsk(server.port, query(name, 'A'));
    t.is((p as unknown as { rcode: string }).rcode, 'REFUSED', name);
    t.false(p.flag_aa, name);
    t.false(p.flag_ra, name);
    t.is(p.answers?.length, 0, name);
  }
  t.is(server.stats().refused, 4);
});

test('set and remove change answers at run time', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const name = 'web.default.svc.cluster.local';
  t.is((await udpAsk(server.port, query(name, 'A'))).p.answers?.length, 0);
  server.set(name, ['10.0.0.1', '10.0.0.2']);
  t.deepEqual((await udpAsk(server.port, query(name, 'A'))).p.answers?.map(dataOf), [
    '10.0.0.1',
    '10.0.0.2',
  ]);
  t.true(server.remove('Dual.default.svc.cluster.local.'));
  const gone = await udpAsk(server.port, query('dual.default.svc.cluster.local', 'A'));
  t.is((gone.p as unknown as { rcode: string }).rcode, 'NXDOMAIN');
  t.false(server.remove('dual.default.svc.cluster.local'));
  // A removed name that still has names below it exists as an empty non-terminal (RFC 8020).
  t.true(server.remove('kubernetes.default.svc.cluster.local'));
  const parent = await udpAsk(server.port, query('kubernetes.default.svc.cluster.local', 'A'));
  t.is((parent.p as unknown as { rcode: string }).rcode, 'NOERROR');
  t.is(parent.p.answers?.length, 0);
  t.throws(() => server.set('outside.example', ['10.0.0.1']), { message: /outside its zones/ });
  t.throws(() => server.set(name, ['not-an-ip']), { message: /not an IP/ });
});

test('the demo fault: SERVFAIL for every query while on, normal answers once off', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const name = 'kubernetes.default.svc.cluster.local';
  server.setServfail(true);
  const failed = await udpAsk(server.port, query(name, 'A'));
  t.is((failed.p as unknown as { rcode: string }).rcode, 'SERVFAIL');
  t.is(failed.p.answers?.length, 0);
  server.setServfail(false);
  const ok = await udpAsk(server.port, query(name, 'A'));
  t.is((ok.p as unknown as { rcode: string }).rcode, 'NOERROR');
  t.true((ok.p.answers?.length ?? 0) > 0);
});

test('a big answer is truncated over UDP, complete with EDNS or over TCP', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const name = 'many.default.svc.cluster.local';
  const addrs = Array.from({ length: 60 }, (_, i) => `10.1.0.${i + 1}`);
  server.set(name, addrs);
  const plain = await udpAsk(server.port, query(name, 'A'));
  t.true(plain.raw.length <= 512);
  t.true(plain.p.flag_tc);
  t.is(plain.p.answers?.length, 0);
  t.is(plain.p.questions?.[0]?.name, name);
  t.is(server.stats().truncated, 1);
  const edns = await udpAsk(server.port, query(name, 'A', { edns: 4096 }));
  t.false(edns.p.flag_tc);
  t.is(edns.p.answers?.length, 60);
  t.true(edns.raw.length > 512);
  const [viaTcp] = await tcpExchange(server.port, [query(name, 'A')]);
  t.false(viaTcp?.flag_tc);
  t.is(viaTcp?.answers?.length, 60);
});

test('UDP answers never exceed max(512, EDNS size), however many records', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const name = 'grow.default.svc.cluster.local';
  for (const count of [0, 10, 28, 29, 30, 31, 40, 100, 250]) {
    server.set(
      name,
      Array.from({ length: count }, (_, i) => `10.2.${i >> 8}.${i & 255}`),
    );
    for (const edns of [undefined, 512, 600, 1232, 100_000 % 65_536]) {
      const { raw, p } = await udpAsk(
        server.port,
        query(name, 'A', edns === undefined ? {} : { edns }),
      );
      const limit = edns === undefined ? 512 : Math.max(512, Math.min(4096, edns));
      t.true(raw.length <= limit, `count ${count} edns ${String(edns)}: ${raw.length} > ${limit}`);
      t.is(p.flag_tc, (p.answers?.length ?? 0) < count, `count ${count} edns ${String(edns)}`);
    }
  }
});

test('TCP serves several queries on one connection', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const replies = await tcpExchange(server.port, [
    query('kubernetes.default.svc.cluster.local', 'A', { id: 1 }),
    query('nope.cluster.local', 'A', { id: 2 }),
  ]);
  t.deepEqual(
    replies.map((r) => r.id),
    [1, 2],
  );
  t.is(server.stats().tcpQueries, 2);
});

test('garbage and responses are dropped and counted, never answered', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const response = dnsPacket.encode({
    type: 'response',
    id: 9,
    questions: [{ name: 'kubernetes.default.svc.cluster.local', type: 'A' }],
  });
  const inputs = [
    Buffer.from([1, 2, 3]),
    Buffer.from('this is not a dns message at all!!'),
    response,
    // A query whose question name runs past the end.
    Buffer.from([0, 5, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, 0x61]),
  ];
  for (const msg of inputs) t.is(await udpExchange(server.port, msg, 200), undefined);
  t.is(server.stats().malformed, inputs.length);
  t.is(server.stats().responses, 0);
  // Still serving afterwards.
  t.is(
    (await udpAsk(server.port, query('kubernetes.default.svc.cluster.local', 'A'))).p.answers
      ?.length,
    1,
  );
});

test('FORMERR for two questions, NOTIMP for another opcode', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const two = dnsPacket.encode({
    type: 'query',
    id: 3,
    questions: [
      { name: 'a.cluster.local', type: 'A' },
      { name: 'b.cluster.local', type: 'A' },
    ],
  });
  const formerr = await udpAsk(server.port, two);
  t.is((formerr.p as unknown as { rcode: string }).rcode, 'FORMERR');
  t.is(formerr.p.questions?.length, 0);
  const notify = Buffer.from(query('kubernetes.default.svc.cluster.local', 'A'));
  notify.writeUInt16BE(notify.readUInt16BE(2) | (4 << 11), 2);
  const notimp = await udpAsk(server.port, notify);
  t.is((notimp.p as unknown as { rcode: string }).rcode, 'NOTIMP');
  t.is(notimp.p.answers?.length, 0);
});

test('refuses to bind outside loopback unless asked', async (t) => {
  await t.throwsAsync(DnsServer.start({ address: '192.0.2.1', port: 0, zones: [ZONE] }), {
    message: /outside 127\.0\.0\.0\/8/,
  });
  await t.throwsAsync(
    DnsServer.start({
      address: '127.0.0.1',
      port: 0,
      zones: [ZONE],
      records: { 'www.example.com': ['10.0.0.1'] },
    }),
    { message: /outside its zones/ },
  );
  await t.throwsAsync(DnsServer.start({ address: 'localhost', port: 0, zones: [ZONE] }), {
    message: /not an IPv4/,
  });
});

test('close() resets open TCP connections and frees the port', async (t) => {
  const server = await startServer();
  const socket = net.connect({ host: '127.0.0.1', port: server.port });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await server.close();
  await closed;
  // The same port can be bound again for both protocols.
  const again = await DnsServer.start({ address: '127.0.0.1', port: server.port, zones: [ZONE] });
  t.is(again.port, server.port);
  await again.close();
});
