// A small authoritative DNS responder for `podmesh demo` and the tests: it serves A, AAAA and
// SRV records from memory over UDP and TCP on one port, so the dns probe has something real to
// query on loopback without touching the machine's resolver. It is not a DNS server for
// anything else and by default refuses to bind outside 127.0.0.0/8.
//
// Public API:
//   DnsServer.start({ address, port, zones, records?, srv?, ttl? }) -> Promise<DnsServer>
//   server.set(name, addresses) / server.remove(name) / server.setSrv(name, records)
//   server.port, server.address, server.stats(), server.close()
//
// Behaviour, chosen to look like CoreDNS's kubernetes plugin for the names it holds:
// - a name inside one of its zones: the records of the asked type (AA set); NOERROR with no
//   records (NODATA) when the name exists with other types, is a zone apex, or is an empty
//   non-terminal (a parent of a name that exists); NXDOMAIN otherwise. Negative answers carry
//   the zone's SOA in the authority section.
// - a name outside its zones: REFUSED. It never recurses and never forwards, so it can't be
//   used as an open resolver.
// - it never answers a response (QR set) or anything it can't decode (dropped and counted),
//   and answers a query with more than one question with FORMERR, another opcode with NOTIMP.
// - RD is copied from the query, RA is never set.
// - a UDP answer is never larger than 512 bytes, or the query's EDNS payload size (at most
//   4096); a larger one goes out with TC set and no records, so the client retries over TCP.
//   This bounds what a spoofed-source query can make it send.
// - TCP: length-prefixed messages, several per connection; idle connections are reset after
//   5 s and at most 128 are open at once.

import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Packet, Question, SrvData } from 'dns-packet';

export interface SrvRecord {
  readonly priority?: number;
  readonly weight?: number;
  readonly port: number;
  readonly target: string;
}

export interface DnsServerOptions {
  /** IPv4 address to bind; must be in 127.0.0.0/8 unless allowNonLoopback. */
  readonly address: string;
  /** 0 picks a free port (the same one for UDP and TCP); read it back from `port`. */
  readonly port: number;
  /** The zones it is authoritative for, e.g. ['cluster.local']; names elsewhere are REFUSED. */
  readonly zones: readonly string[];
  /** name -> addresses; IPv4 ones are served as A, IPv6 ones as AAAA. */
  readonly records?: Readonly<Record<string, readonly string[]>>;
  readonly srv?: Readonly<Record<string, readonly SrvRecord[]>>;
  /** TTL of every record, seconds. Default 5. */
  readonly ttl?: number;
  readonly allowNonLoopback?: boolean;
  /** Idle TCP connections are reset after this long. Default 5000. */
  readonly tcpIdleMs?: number;
}

export interface DnsServerStats {
  readonly udpQueries: number;
  readonly tcpQueries: number;
  /** Responses sent, any rcode. */
  readonly responses: number;
  /** UDP answers sent with TC set because they didn't fit. */
  readonly truncated: number;
  readonly nxdomain: number;
  readonly refused: number;
  /** Messages dropped without an answer: too short, undecodable, or not a query. */
  readonly malformed: number;
}

const PLAIN_UDP_LIMIT = 512;
const MAX_EDNS_LIMIT = 4096;
const OUR_EDNS_SIZE = 1232;
const MAX_TCP_CONNECTIONS = 128;
const DEFAULT_TCP_IDLE_MS = 5_000;

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

interface Node {
  v4: string[];
  v6: string[];
  srv: SrvRecord[];
}

function canonical(name: string): string {
  const lower = name.toLowerCase();
  if (lower === '.' || lower === '') return '';
  return lower.replace(/\.$/, '');
}

function inZone(name: string, zone: string): boolean {
  return zone === '' || name === zone || name.endsWith(`.${zone}`);
}

export class DnsServer {
  private readonly names = new Map<string, Node>();
  private readonly zones: readonly string[];
  private readonly ttl: number;
  private readonly sockets = new Set<net.Socket>();
  /** The demo's fault (src/demo/faults.ts): answer every query SERVFAIL, as a broken replica. */
  private servfail = false;
  private readonly tcpIdleMs: number;
  private closing: Promise<void> | undefined;
  private readonly counters = {
    udpQueries: 0,
    tcpQueries: 0,
    responses: 0,
    truncated: 0,
    nxdomain: 0,
    refused: 0,
    malformed: 0,
  };

  private constructor(
    private readonly udp: dgram.Socket,
    private readonly tcp: net.Server,
    readonly address: string,
    readonly port: number,
    options: DnsServerOptions,
  ) {
    // Longest zone first, so the most specific one supplies the SOA.
    this.zones = [...new Set(options.zones.map(canonical))].sort((a, b) => b.length - a.length);
    this.ttl = Math.max(0, Math.trunc(options.ttl ?? 5));
    this.tcpIdleMs = options.tcpIdleMs ?? DEFAULT_TCP_IDLE_MS;
    for (const [name, addrs] of Object.entries(options.records ?? {})) this.set(name, addrs);
    for (const [name, recs] of Object.entries(options.srv ?? {})) this.setSrv(name, recs);
    udp.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    udp.on('error', () => undefined);
    tcp.on('connection', (socket) => this.onConnection(socket));
    tcp.on('error', () => undefined);
  }

  /** Binds UDP and TCP on the same port. Rejects on a bad address or a port in use. */
  static async start(options: DnsServerOptions): Promise<DnsServer> {
    if (!net.isIPv4(options.address))
      throw new Error(`dns server: ${options.address} is not an IPv4 address`);
    if (options.allowNonLoopback !== true && !options.address.startsWith('127.'))
      throw new Error(`dns server: ${options.address} is outside 127.0.0.0/8`);
    if (options.zones.length === 0) throw new Error('dns server: no zones');
    // With port 0 the UDP port the kernel picks may be taken for TCP: try a few times.
    for (let attempt = 0; ; attempt++) {
      const udp = dgram.createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address: options.address, port: options.port, exclusive: true }, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      const port = udp.address().port;
      const tcp = net.createServer();
      tcp.maxConnections = MAX_TCP_CONNECTIONS;
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen({ host: options.address, port }, () => {
            tcp.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        udp.close();
        if (options.port === 0 && attempt < 5) continue;
        throw err;
      }
      try {
        return new DnsServer(udp, tcp, options.address, port, options);
      } catch (err) {
        // A record outside the zones or a bad address: don't leave the sockets bound.
        udp.close();
        tcp.close();
        throw err;
      }
    }
  }

  /** Sets the addresses of a name (replacing them); an empty list leaves the name with none. */
  set(name: string, addresses: readonly string[]): void {
    const node = this.node(name);
    const v4: string[] = [];
    const v6: string[] = [];
    for (const a of addresses) {
      if (net.isIPv4(a)) v4.push(a);
      else if (net.isIPv6(a)) v6.push(a);
      else throw new Error(`dns server: ${a} is not an IP address`);
    }
    node.v4 = v4;
    node.v6 = v6;
  }

  setSrv(name: string, records: readonly SrvRecord[]): void {
    this.node(name).srv = records.map((r) => ({ ...r, target: r.target.replace(/\.$/, '') }));
  }

  /** Removes a name and all its records; it answers NXDOMAIN from now on. */
  remove(name: string): boolean {
    return this.names.delete(canonical(name));
  }

  stats(): DnsServerStats {
    return { ...this.counters };
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const s of this.sockets) reset(s);
      let pending = 2;
      const done = (): void => {
        if (--pending === 0) resolve();
      };
      this.tcp.close(() => done());
      try {
        this.udp.close(() => done());
      } catch {
        done();
      }
    });
    return this.closing;
  }

  private node(name: string): Node {
    const key = canonical(name);
    if (key === '' || !this.zones.some((z) => inZone(key, z)))
      throw new Error(`dns server: ${name} is outside its zones`);
    let node = this.names.get(key);
    if (node === undefined) {
      node = { v4: [], v6: [], srv: [] };
      this.names.set(key, node);
    }
    return node;
  }

  /** The demo's fault injection: true answers every query SERVFAIL until set back to false. */
  setServfail(on: boolean): void {
    this.servfail = on;
  }

  private onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.counters.udpQueries++;
    const reply = this.respond(msg, 'udp');
    if (reply === undefined) return;
    this.udp.send(reply, rinfo.port, rinfo.address, () => undefined);
  }

  private onConnection(socket: net.Socket): void {
    if (this.closing !== undefined) {
      reset(socket);
      return;
    }
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => this.sockets.delete(socket));
    socket.setTimeout(this.tcpIdleMs, () => reset(socket));
    let buffered: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const len = buffered.readUInt16BE(0);
        if (len < 12) {
          this.counters.malformed++;
          reset(socket);
          return;
        }
        if (buffered.length < 2 + len) return;
        const msg = buffered.subarray(2, 2 + len);
        buffered = buffered.subarray(2 + len);
        this.counters.tcpQueries++;
        const reply = this.respond(msg, 'tcp');
        if (reply === undefined) continue;
        const frame = Buffer.allocUnsafe(2 + reply.length);
        frame.writeUInt16BE(reply.length, 0);
        reply.copy(frame, 2);
        socket.write(frame);
      }
    });
  }

  /** The answer to one query message, or undefined to drop it. Never throws. */
  private respond(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
    try {
      return this.respondUnsafe(msg, transport);
    } catch {
      this.counters.malformed++;
      return undefined;
    }
  }

  private respondUnsafe(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
    if (msg.length < 12 || (msg.readUInt16BE(2) & 0x8000) !== 0) {
      this.counters.malformed++;
      return undefined;
    }
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      this.counters.malformed++;
      return undefined;
    }
    const opcode = (msg.readUInt16BE(2) >> 11) & 0xf;
    const opt = (query.additionals ?? []).find((a) => a.type === 'OPT');
    const limit =
      transport === 'tcp'
        ? 65_535
        : opt === undefined
          ? PLAIN_UDP_LIMIT
          : Math.max(PLAIN_UDP_LIMIT, Math.min(MAX_EDNS_LIMIT, opt.udpPayloadSize));
    const questions = query.questions ?? [];
    const reply: Packet & { flags: number } = {
      type: 'response',
      id: query.id ?? 0,
      flags: query.flag_rd ? dnsPacket.RECURSION_DESIRED : 0,
      questions: questions.length === 1 ? questions : [],
      answers: [],
      authorities: [],
      additionals: opt === undefined ? [] : [ourOpt()],
    };
    let rcode: number;
    const q = questions[0];
    if (opcode !== 0) rcode = RCODE.NOTIMP;
    else if (q === undefined || questions.length !== 1) rcode = RCODE.FORMERR;
    else if (this.servfail) rcode = RCODE.SERVFAIL;
    else rcode = this.fill(reply, q);
    if (rcode === RCODE.NXDOMAIN) this.counters.nxdomain++;
    if (rcode === RCODE.REFUSED) this.counters.refused++;
    reply.flags |= rcode;
    let wire = dnsPacket.encode(reply);
    if (wire.length > limit) {
      reply.answers = [];
      reply.authorities = [];
      reply.flags |= dnsPacket.TRUNCATED_RESPONSE;
      wire = dnsPacket.encode(reply);
      if (transport === 'udp') this.counters.truncated++;
      if (wire.length > limit) return undefined;
    }
    this.counters.responses++;
    return wire;
  }

  /** Fills answers/authorities for one question and returns the rcode. */
  private fill(reply: Packet & { flags: number }, q: Question): number {
    if ((q.class ?? 'IN') !== 'IN') return RCODE.REFUSED;
    const name = canonical(q.name);
    const zone = this.zones.find((z) => inZone(name, z));
    if (zone === undefined) return RCODE.REFUSED;
    reply.flags |= dnsPacket.AUTHORITATIVE_ANSWER;
    const node = this.names.get(name);
    const answers: Answer[] = [];
    if (node !== undefined) {
      if (q.type === 'A')
        for (const a of node.v4) answers.push({ type: 'A', name: q.name, ttl: this.ttl, data: a });
      if (q.type === 'AAAA')
        for (const a of node.v6)
          answers.push({ type: 'AAAA', name: q.name, ttl: this.ttl, data: a });
      if (q.type === 'SRV')
        for (const s of node.srv) {
          const data: SrvData = {
            priority: s.priority ?? 0,
            weight: s.weight ?? 0,
            port: s.port,
            target: s.target,
          };
          answers.push({ type: 'SRV', name: q.name, ttl: this.ttl, data });
        }
    }
    if (answers.length > 0) {
      reply.answers = answers;
      return RCODE.NOERROR;
    }
    reply.authorities = [this.soa(zone)];
    return this.exists(name, zone) ? RCODE.NOERROR : RCODE.NXDOMAIN;
  }

  private exists(name: string, zone: string): boolean {
    if (name === zone || this.names.has(name)) return true;
    const suffix = `.${name}`;
    for (const n of this.names.keys()) if (n.endsWith(suffix)) return true;
    return false;
  }

  private soa(zone: string): Answer {
    const apex = zone === '' ? '.' : zone;
    return {
      type: 'SOA',
      name: apex,
      ttl: this.ttl,
      data: {
        mname: zone === '' ? 'ns.podmesh.invalid' : `ns.dns.${zone}`,
        rname: zone === '' ? 'hostmaster.podmesh.invalid' : `hostmaster.${zone}`,
        serial: 1,
        refresh: 7200,
        retry: 1800,
        expire: 86400,
        minimum: this.ttl,
      },
    };
  }
}

function ourOpt(): Answer {
  return {
    type: 'OPT',
    name: '.',
    udpPayloadSize: OUR_EDNS_SIZE,
    extendedRcode: 0,
    ednsVersion: 0,
    flags: 0,
    flag_do: false,
    options: [],
  };
}

function reset(socket: net.Socket): void {
  try {
    if (!socket.destroyed) socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
