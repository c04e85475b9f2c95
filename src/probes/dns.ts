// The 'dns' probe: one query to one DNS server, timed, with the answer checked and classified.
// Queries are built and parsed with dns-packet and sent over node:dgram or node:net to an IPv4
// literal; the system resolver is never in the measurement path (both sockets get a lookup
// function that refuses to resolve anything).
//
// Public API:
//   DnsProbe.open({ clock, bindAddress?, ednsUdpSize?, maxTcpResponseBytes? }) -> Promise<DnsProbe>
//   probe.run(query, timeoutMs) -> Promise<DnsResult>   never rejects, never outlives timeoutMs
//   probe.stats() -> DnsProbeStats
//   probe.close() -> Promise<void>                       in-flight queries end as 'error'
//   checkResponse(expected, message, maxBytes) -> ResponseCheck   the pure answer checker
//   answeredCorrectly(outcome)                            noerror | nodata | nxdomain
//
// UDP: one socket serves every query; each query gets a random 16-bit id not already in flight,
// and an answer must come from the queried server's address:port, carry that id, be a response
// (QR) to a standard QUERY, and repeat the question (name compared case-insensitively, type,
// class IN). A datagram that fails any of that does not end the query, because a spoofed or
// garbled datagram must not fail a query that the real answer can still satisfy: it is counted
// (stats: malformed when it cannot be a DNS response at all, mismatched when it is one but not
// for any query in flight) and the query keeps waiting. If the deadline passes and such a
// datagram had come from the right server with the right id, the outcome is 'malformed' rather
// than 'timeout': the server spoke, but nonsense. An answer with TC set is retried over TCP at
// once; the result then reports truncatedRetried and the total time of both legs.
//
// Linux does not report ICMP errors (port unreachable) to an unconnected UDP socket, so a UDP
// query to a closed port is a 'timeout', not 'unreachable'. 'unreachable' is for the cases the
// kernel does tell us: a refused or unroutable TCP connection, or a send that fails (EHOSTUNREACH,
// ENETUNREACH, EPERM from a firewall rule in OUTPUT).
//
// TCP: a fresh connection per query, one 2-byte length-prefixed message each way, closed with
// a reset (resetAndDestroy) once connected so no TIME_WAIT piles up at high query rates. Over
// TCP any answer that fails the checks ends the query as 'malformed' (there is no one else who
// could answer on that connection). Time includes the handshake, as a client would see it.
//
// Size limits: a UDP answer must fit what we asked for (512 bytes, or the EDNS size we
// advertised); a TCP answer must fit maxTcpResponseBytes (16 KiB by default, 65535 at most).
// dns-packet accepts only backward compression pointers, so loops are impossible, but chains of
// pointers are followed one hop at a time: a hostile 64 KiB answer built from pointer chains
// costs ~300 ms of CPU to reject, a 16 KiB one a few ms. Hence the modest TCP default.

import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { DecodedPacket, Packet, RecordType } from 'dns-packet';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { errnoOf, reasonFromErrno } from './probe.ts';

export const DNS_OUTCOMES = [
  'noerror',
  'nodata',
  'nxdomain',
  'servfail',
  'refused',
  'other-rcode',
  'timeout',
  'unreachable',
  'malformed',
  'error',
] as const;
/**
 * noerror: NOERROR with at least one record of the asked type. nodata: NOERROR without one.
 * nxdomain, servfail, refused: those rcodes. other-rcode: any other rcode (FORMERR, NOTIMP...).
 * timeout: no acceptable answer in time. unreachable: the kernel said the server can't be
 * reached (TCP refused, no route, send blocked). malformed: the server answered with something
 * that is not a valid answer to the query. error: anything else (bad query, probe closed...).
 */
export type DnsOutcome = (typeof DNS_OUTCOMES)[number];
export type DnsTransport = 'udp' | 'tcp';
export type DnsRecordType = RecordType;

export interface DnsQuery {
  /** IPv4 literal of the server. */
  readonly server: string;
  /** Default 53. */
  readonly port?: number;
  /** Absolute name, with or without the trailing dot. */
  readonly name: string;
  readonly type: DnsRecordType;
  readonly transport: DnsTransport;
  /**
   * Send this UDP query from a socket of its own (a new source port), the way a Pod's stub
   * resolver does. Through a Service VIP each lookup is then its own conntrack flow, DNAT'ed
   * afresh, so lookups spread over the replicas as a Pod's do instead of sticking to one.
   */
  readonly freshSocket?: boolean;
}

export interface DnsResult {
  /** The server answered with a well-formed response to this query, whatever its rcode. */
  readonly ok: boolean;
  readonly outcome: DnsOutcome;
  /** The answer's rcode as dns-packet names it ('NOERROR', 'NXDOMAIN'...), when there is one. */
  readonly rcode?: string;
  /** Records of the asked type in the answer section. */
  readonly answers: number;
  /** A/AAAA data of those records (at most 32), for logs and the demo. */
  readonly addresses: readonly string[];
  /** The UDP answer was truncated and the query was repeated over TCP. */
  readonly truncatedRetried: boolean;
  /** Time from sending the query to the final answer (or to the failure being known). */
  readonly seconds: number;
  /** Wall-clock time the query was sent, ms since the epoch. */
  readonly sentAtMs: number;
  /** The transport of the final leg: 'tcp' after a truncation retry. */
  readonly transport: DnsTransport;
  /** The answer had AA set (the server is authoritative for the name). */
  readonly authoritative?: boolean;
  /** Human-readable detail for logs; never a label value. */
  readonly detail?: string;
}

export interface DnsProbeOptions {
  readonly clock: Clock;
  /** Local address for the UDP socket and TCP connections; default: any. */
  readonly bindAddress?: string;
  /**
   * Advertise EDNS0 with this UDP payload size (512..4096). Default: no EDNS, like glibc
   * without `options edns0`, so answers over 512 bytes come back truncated.
   */
  readonly ednsUdpSize?: number;
  /** Largest TCP answer accepted; default 16384, at most 65535. */
  readonly maxTcpResponseBytes?: number;
}

export interface DnsProbeStats {
  /** Queries put on the wire (UDP datagrams plus TCP messages). */
  readonly sent: number;
  readonly udpSent: number;
  readonly tcpSent: number;
  /** Datagrams that arrived on the UDP socket plus complete TCP answers. */
  readonly received: number;
  /** Not a usable DNS response: too short, oversized, undecodable, QR clear, wrong opcode. */
  readonly malformed: number;
  /** A DNS response for no query in flight: unknown id, wrong source, wrong question. */
  readonly mismatched: number;
  /** UDP answers with TC set (each retried over TCP). */
  readonly truncated: number;
  readonly inFlight: number;
}

export const DEFAULT_DNS_PORT = 53;
export const DEFAULT_MAX_TCP_RESPONSE = 16_384;
const MAX_UDP_PLAIN = 512;
const MAX_ADDRESSES = 32;
const MAX_NAME = 253;
const RECV_BUFFER_BYTES = 1 << 20;

/** What a response must match; `id` is the query's id. */
export interface ExpectedAnswer {
  readonly id: number;
  /** Name without the trailing dot ('.' for the root). */
  readonly name: string;
  readonly type: DnsRecordType;
}

export type ResponseCheck =
  | {
      readonly kind: 'answer';
      readonly rcode: string;
      readonly truncated: boolean;
      readonly authoritative: boolean;
      readonly answers: number;
      readonly addresses: readonly string[];
    }
  | { readonly kind: 'malformed'; readonly detail: string }
  | { readonly kind: 'mismatched'; readonly detail: string };

/**
 * Checks one received message against the query it should answer. Pure; never throws.
 * 'malformed' means it cannot be a DNS response; 'mismatched' means it is one, for another query.
 */
export function checkResponse(
  expected: ExpectedAnswer,
  message: Buffer,
  maxBytes: number,
): ResponseCheck {
  if (message.length > maxBytes)
    return { kind: 'malformed', detail: `oversized: ${message.length} bytes > ${maxBytes}` };
  if (message.length < 12)
    return { kind: 'malformed', detail: `short: ${message.length} bytes, no DNS header` };
  const flags = message.readUInt16BE(2);
  if ((flags & 0x8000) === 0) return { kind: 'malformed', detail: 'not a response (QR clear)' };
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== 0) return { kind: 'malformed', detail: `opcode ${opcode}, not QUERY` };
  const rcodeNum = flags & 0xf;
  const qdcount = message.readUInt16BE(4);
  // FORMERR and NOTIMP answers may leave the question out; anything else must repeat exactly it.
  // Checked before decoding so a crafted header can't make us parse thousands of questions.
  if (qdcount !== 1 && !(qdcount === 0 && (rcodeNum === 1 || rcodeNum === 4))) {
    const id = message.readUInt16BE(0);
    return id === expected.id
      ? { kind: 'mismatched', detail: `${qdcount} questions in the answer` }
      : { kind: 'mismatched', detail: `id ${id}, expected ${expected.id}` };
  }
  let packet: DecodedPacket;
  try {
    packet = dnsPacket.decode(message);
  } catch (err) {
    return { kind: 'malformed', detail: `undecodable: ${errorText(err)}` };
  }
  if (packet.id !== expected.id)
    return { kind: 'mismatched', detail: `id ${String(packet.id)}, expected ${expected.id}` };
  const rcode = (packet as { rcode?: unknown }).rcode;
  const rcodeText = typeof rcode === 'string' ? rcode : `RCODE_${rcodeNum}`;
  const q = packet.questions?.[0];
  if (q !== undefined) {
    const name = q.name === '' ? '.' : q.name;
    if (name.toLowerCase() !== expected.name.toLowerCase())
      return { kind: 'mismatched', detail: `question name ${name}, expected ${expected.name}` };
    if (q.type !== expected.type)
      return { kind: 'mismatched', detail: `question type ${q.type}, expected ${expected.type}` };
    if ((q.class ?? 'IN') !== 'IN')
      return { kind: 'mismatched', detail: `question class ${String(q.class)}, expected IN` };
  }
  let answers = 0;
  const addresses: string[] = [];
  for (const a of packet.answers ?? []) {
    if (a.type !== expected.type) continue;
    answers++;
    if ((a.type === 'A' || a.type === 'AAAA') && addresses.length < MAX_ADDRESSES)
      addresses.push(a.data);
  }
  return {
    kind: 'answer',
    rcode: rcodeText,
    truncated: packet.flag_tc,
    authoritative: packet.flag_aa,
    answers,
    addresses,
  };
}

/** The server answered correctly: a name that exists, exists without that type, or doesn't. */
export function answeredCorrectly(outcome: DnsOutcome): boolean {
  return outcome === 'noerror' || outcome === 'nodata' || outcome === 'nxdomain';
}

function outcomeOfRcode(rcode: string, answers: number): DnsOutcome {
  switch (rcode) {
    case 'NOERROR':
      return answers > 0 ? 'noerror' : 'nodata';
    case 'NXDOMAIN':
      return 'nxdomain';
    case 'SERVFAIL':
      return 'servfail';
    case 'REFUSED':
      return 'refused';
    default:
      return 'other-rcode';
  }
}

/** Normalises a query name (no trailing dot, '.' for the root) or says why it can't be sent. */
export function normaliseName(
  name: string,
): { ok: true; name: string } | { ok: false; why: string } {
  if (typeof name !== 'string' || name === '') return { ok: false, why: 'empty name' };
  if (name === '.') return { ok: true, name: '.' };
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  if (bare.length > MAX_NAME) return { ok: false, why: `name longer than ${MAX_NAME}` };
  for (const label of bare.split('.')) {
    if (label === '') return { ok: false, why: 'empty label' };
    if (Buffer.byteLength(label) > 63) return { ok: false, why: 'label longer than 63 bytes' };
  }
  return { ok: true, name: bare };
}

/**
 * The lookup function given to our sockets: IP literals pass through unchanged (dgram calls
 * lookup even for them), anything else is refused, so no name is ever sent to a resolver.
 */
function noLookup(
  hostname: string,
  options: unknown,
  callback: (...args: unknown[]) => void,
): void {
  const family = net.isIP(hostname);
  const all =
    typeof options === 'object' && options !== null && (options as { all?: unknown }).all === true;
  process.nextTick(() => {
    if (family === 0) {
      callback(Object.assign(new Error(`refusing to resolve ${hostname}`), { code: 'ENOTFOUND' }));
    } else if (all) {
      callback(null, [{ address: hostname, family }]);
    } else {
      callback(null, hostname, family);
    }
  });
}

interface Active {
  readonly query: Required<DnsQuery>;
  readonly expected: ExpectedAnswer;
  readonly wire: Buffer;
  readonly startNs: bigint;
  readonly sentAtMs: number;
  readonly resolve: (r: DnsResult) => void;
  timer: TimerHandle | undefined;
  done: boolean;
  transport: DnsTransport;
  truncatedRetried: boolean;
  /** Set when a bad answer came from the right server with the right id (UDP). */
  garbled: string | undefined;
  udpId: number | undefined;
  /** The query's own UDP socket, when it asked for a fresh one. */
  udpSocket: dgram.Socket | undefined;
  tcp: net.Socket | undefined;
  tcpConnected: boolean;
}

export class DnsProbe {
  private readonly active = new Set<Active>();
  private readonly udpPending = new Map<number, Active>();
  private readonly udpLimit: number;
  private readonly tcpLimit: number;
  private closed = false;
  private readonly counters = {
    sent: 0,
    udpSent: 0,
    tcpSent: 0,
    received: 0,
    malformed: 0,
    mismatched: 0,
    truncated: 0,
  };

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly clock: Clock,
    private readonly bindAddress: string | undefined,
    private readonly ednsUdpSize: number | undefined,
    maxTcpResponseBytes: number,
    /** The local UDP port every query is sent from. */
    readonly port: number,
  ) {
    this.udpLimit = Math.max(MAX_UDP_PLAIN, ednsUdpSize ?? 0);
    this.tcpLimit = maxTcpResponseBytes;
    socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    socket.on('error', () => undefined);
    try {
      // Bursts of answers must not overflow the default buffer; the kernel caps this at
      // net.core.rmem_max, so it is best effort.
      socket.setRecvBufferSize(RECV_BUFFER_BYTES);
    } catch {
      // Keep the default.
    }
  }

  /** Binds the shared UDP socket. Rejects only if the bind address can't be bound. */
  static async open(opts: DnsProbeOptions): Promise<DnsProbe> {
    const edns =
      opts.ednsUdpSize === undefined
        ? undefined
        : Math.min(4096, Math.max(MAX_UDP_PLAIN, Math.trunc(opts.ednsUdpSize)));
    const tcpMax = Math.min(
      65_535,
      Math.max(12, Math.trunc(opts.maxTcpResponseBytes ?? DEFAULT_MAX_TCP_RESPONSE)),
    );
    const socket = dgram.createSocket({ type: 'udp4', lookup: noLookup as never });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        const bind: dgram.BindOptions = { port: 0 };
        if (opts.bindAddress !== undefined) bind.address = opts.bindAddress;
        socket.bind(bind, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      throw err;
    }
    return new DnsProbe(socket, opts.clock, opts.bindAddress, edns, tcpMax, socket.address().port);
  }

  run(query: DnsQuery, timeoutMs: number): Promise<DnsResult> {
    return new Promise<DnsResult>((resolve) => {
      try {
        this.start(query, timeoutMs, resolve);
      } catch (err) {
        resolve(
          bare(
            query?.transport === 'tcp' ? 'tcp' : 'udp',
            this.clock.nowMs(),
            'error',
            `unexpected: ${errorText(err)}`,
          ),
        );
      }
    });
  }

  stats(): DnsProbeStats {
    return { ...this.counters, inFlight: this.active.size };
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const a of [...this.active]) this.fail(a, 'error', 'probe closed');
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  private start(query: DnsQuery, timeoutMs: number, resolve: (r: DnsResult) => void): void {
    const transport: DnsTransport = query.transport === 'tcp' ? 'tcp' : 'udp';
    const sentAtMs = this.clock.nowMs();
    const reject = (detail: string): void => resolve(bare(transport, sentAtMs, 'error', detail));
    if (this.closed) return reject('probe closed');
    if (!net.isIPv4(query.server)) return reject(`server ${query.server} is not an IPv4 literal`);
    const port = query.port ?? DEFAULT_DNS_PORT;
    if (!Number.isInteger(port) || port < 1 || port > 65_535) return reject(`bad port ${port}`);
    const norm = normaliseName(query.name);
    if (!norm.ok) return reject(`bad name: ${norm.why}`);
    const full: Required<DnsQuery> = {
      server: query.server,
      port,
      name: norm.name,
      type: query.type,
      transport,
      freshSocket: query.freshSocket === true,
    };
    let id: number | undefined;
    if (transport === 'udp') {
      id = this.freeId();
      if (id === undefined) return reject('too many UDP queries in flight');
    } else {
      id = randomInt(0, 65_536);
    }
    const wire = this.encode(id, full);
    if (wire === undefined) return reject(`cannot encode a ${String(query.type)} query`);
    const a: Active = {
      query: full,
      expected: { id, name: norm.name, type: query.type },
      wire,
      startNs: this.clock.monoNs(),
      sentAtMs,
      resolve,
      timer: undefined,
      done: false,
      transport,
      truncatedRetried: false,
      udpSocket: undefined,
      garbled: undefined,
      udpId: undefined,
      tcp: undefined,
      tcpConnected: false,
    };
    this.active.add(a);
    a.timer = this.clock.setTimeout(() => {
      a.timer = undefined;
      // Timers run before I/O in each turn of the event loop: when the loop was busy, an answer
      // that reached the socket before the deadline may still be unread. Let that I/O through.
      setImmediate(() => {
        if (a.garbled !== undefined)
          this.fail(a, 'malformed', `no valid answer in ${timeoutMs} ms; got: ${a.garbled}`);
        else this.fail(a, 'timeout', `no answer in ${timeoutMs} ms over ${a.transport}`);
      });
    }, timeoutMs);
    if (transport === 'udp') this.sendUdp(a, id);
    else this.sendTcp(a);
  }

  /** A random id no UDP query in flight uses. */
  private freeId(): number | undefined {
    if (this.udpPending.size >= 32_768) return undefined;
    for (;;) {
      const id = randomInt(0, 65_536);
      if (!this.udpPending.has(id)) return id;
    }
  }

  /** A fresh Buffer per query, checked to round-trip so an unknown type can't go out as type 0. */
  private encode(id: number, q: Required<DnsQuery>): Buffer | undefined {
    try {
      const packet: Packet = {
        type: 'query',
        id,
        flags: dnsPacket.RECURSION_DESIRED,
        questions: [{ type: q.type, name: q.name === '.' ? '.' : q.name, class: 'IN' }],
      };
      if (this.ednsUdpSize !== undefined && q.transport === 'udp') {
        packet.additionals = [
          {
            type: 'OPT',
            name: '.',
            udpPayloadSize: this.ednsUdpSize,
            extendedRcode: 0,
            ednsVersion: 0,
            flags: 0,
            flag_do: false,
            options: [],
          },
        ];
      }
      const wire = dnsPacket.encode(packet);
      const back = dnsPacket.decode(wire).questions?.[0];
      if (back?.type !== q.type) return undefined;
      return wire;
    } catch {
      return undefined;
    }
  }

  private sendUdp(a: Active, id: number): void {
    a.udpId = id;
    this.udpPending.set(id, a);
    this.counters.sent++;
    this.counters.udpSent++;
    if (a.query.freshSocket) {
      this.sendFromFreshSocket(a);
      return;
    }
    try {
      this.socket.send(a.wire, a.query.port, a.query.server, (err) => {
        if (err) this.failErrno(a, err, 'send');
      });
    } catch (err) {
      this.failErrno(a, err, 'send');
    }
  }

  private sendFromFreshSocket(a: Active): void {
    const s = dgram.createSocket({ type: 'udp4', lookup: noLookup as never });
    a.udpSocket = s;
    s.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    s.on('error', () => undefined);
    const bind: dgram.BindOptions = { port: 0 };
    if (this.bindAddress !== undefined) bind.address = this.bindAddress;
    try {
      s.bind(bind, () => {
        if (a.done) return;
        s.send(a.wire, a.query.port, a.query.server, (err) => {
          if (err) this.failErrno(a, err, 'send');
        });
      });
    } catch (err) {
      this.failErrno(a, err, 'send');
    }
  }

  private onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const endNs = this.clock.monoNs();
    this.counters.received++;
    const id = msg.length >= 2 ? msg.readUInt16BE(0) : undefined;
    const a = id === undefined ? undefined : this.udpPending.get(id);
    const fromServer =
      a !== undefined && rinfo.address === a.query.server && rinfo.port === a.query.port;
    const check = checkResponse(
      a?.expected ?? { id: -1, name: '.', type: 'A' },
      msg,
      this.udpLimit,
    );
    if (check.kind === 'malformed') {
      this.counters.malformed++;
      if (a !== undefined && fromServer) a.garbled = check.detail;
      return;
    }
    if (a === undefined || !fromServer) {
      this.counters.mismatched++;
      return;
    }
    if (check.kind === 'mismatched') {
      this.counters.mismatched++;
      a.garbled = check.detail;
      return;
    }
    this.udpPending.delete(a.expected.id);
    a.udpId = undefined;
    if (check.truncated) {
      this.counters.truncated++;
      a.truncatedRetried = true;
      a.transport = 'tcp';
      a.garbled = undefined;
      this.sendTcp(a);
      return;
    }
    this.answer(a, check, endNs);
  }

  private sendTcp(a: Active): void {
    let socket: net.Socket;
    try {
      const opts: net.TcpNetConnectOpts = {
        host: a.query.server,
        port: a.query.port,
        lookup: noLookup as never,
        noDelay: true,
      };
      if (this.bindAddress !== undefined && this.bindAddress !== '0.0.0.0')
        opts.localAddress = this.bindAddress;
      socket = net.connect(opts);
    } catch (err) {
      this.failErrno(a, err, 'connect');
      return;
    }
    a.tcp = socket;
    const chunks: Buffer[] = [];
    let have = 0;
    let expectLen: number | undefined;
    // Stays attached after the query ends: a late reset must never become an uncaught error.
    socket.on('error', (err) => {
      if (a.done) return;
      if (have > 0) this.tcpMalformed(a, `truncated: connection failed after ${have} bytes`);
      else this.failErrno(a, err, a.tcpConnected ? 'tcp' : 'connect');
    });
    socket.on('connect', () => {
      if (a.done) return;
      a.tcpConnected = true;
      const frame = Buffer.allocUnsafe(2 + a.wire.length);
      frame.writeUInt16BE(a.wire.length, 0);
      a.wire.copy(frame, 2);
      this.counters.sent++;
      this.counters.tcpSent++;
      socket.write(frame);
    });
    socket.on('data', (chunk: Buffer) => {
      if (a.done) return;
      chunks.push(chunk);
      have += chunk.length;
      if (expectLen === undefined && have >= 2) {
        const head = Buffer.concat(chunks, have);
        expectLen = head.readUInt16BE(0);
        if (expectLen > this.tcpLimit) {
          this.counters.malformed++;
          this.tcpMalformed(a, `oversized: ${expectLen} bytes > ${this.tcpLimit}`);
          return;
        }
      }
      if (expectLen !== undefined && have >= 2 + expectLen) {
        const endNs = this.clock.monoNs();
        const all = Buffer.concat(chunks, have);
        const msg = all.subarray(2, 2 + expectLen);
        this.counters.received++;
        const check = checkResponse(a.expected, msg, this.tcpLimit);
        if (check.kind === 'answer') {
          this.answer(a, check, endNs);
          return;
        }
        if (check.kind === 'malformed') this.counters.malformed++;
        else this.counters.mismatched++;
        this.tcpMalformed(a, check.detail);
      }
    });
    socket.on('end', () => {
      if (a.done) return;
      if (have > 0)
        this.tcpMalformed(
          a,
          `truncated: connection closed after ${have} of ${expectLen === undefined ? '?' : expectLen + 2} bytes`,
        );
      else this.fail(a, 'error', 'connection closed without an answer');
    });
  }

  private tcpMalformed(a: Active, detail: string): void {
    this.fail(a, 'malformed', a.truncatedRetried ? `${detail} (TCP retry)` : detail);
  }

  private answer(
    a: Active,
    check: Extract<ResponseCheck, { kind: 'answer' }>,
    endNs: bigint,
  ): void {
    const base = {
      ok: true,
      outcome: outcomeOfRcode(check.rcode, check.answers),
      rcode: check.rcode,
      answers: check.answers,
      addresses: check.addresses,
      truncatedRetried: a.truncatedRetried,
      seconds: Math.max(0, Number(endNs - a.startNs) / 1e9),
      sentAtMs: a.sentAtMs,
      transport: a.transport,
      authoritative: check.authoritative,
    };
    this.finish(a, check.truncated ? { ...base, detail: 'truncated answer over TCP' } : base);
  }

  private failErrno(a: Active, err: unknown, stage: string): void {
    const code = errnoOf(err);
    const reason = reasonFromErrno(code);
    const outcome: DnsOutcome =
      reason === 'refused' || reason === 'unreachable' || reason === 'permission'
        ? 'unreachable'
        : reason === 'timeout'
          ? 'timeout'
          : 'error';
    const leg = a.truncatedRetried ? ' (TCP retry)' : '';
    this.fail(a, outcome, `${stage}: ${code ?? errorText(err)}${leg}`);
  }

  private fail(a: Active, outcome: DnsOutcome, detail: string): void {
    this.finish(a, {
      ok: false,
      outcome,
      answers: 0,
      addresses: [],
      truncatedRetried: a.truncatedRetried,
      seconds: Math.max(0, Number(this.clock.monoNs() - a.startNs) / 1e9),
      sentAtMs: a.sentAtMs,
      transport: a.transport,
      detail,
    });
  }

  private finish(a: Active, result: DnsResult): void {
    if (a.done) return;
    a.done = true;
    if (a.timer !== undefined) this.clock.clearTimeout(a.timer);
    if (a.udpId !== undefined && this.udpPending.get(a.udpId) === a)
      this.udpPending.delete(a.udpId);
    this.active.delete(a);
    if (a.udpSocket !== undefined) {
      try {
        a.udpSocket.close();
      } catch {
        // already closed
      }
    }
    const socket = a.tcp;
    if (socket !== undefined) {
      try {
        // resetAndDestroy() on a socket still connecting waits for a handshake that may never
        // come; only an established connection is reset.
        if (a.tcpConnected && !socket.destroyed) socket.resetAndDestroy();
        else socket.destroy();
      } catch {
        socket.destroy();
      }
    }
    a.resolve(result);
  }
}

function bare(
  transport: DnsTransport,
  sentAtMs: number,
  outcome: DnsOutcome,
  detail: string,
): DnsResult {
  return {
    ok: false,
    outcome,
    answers: 0,
    addresses: [],
    truncatedRetried: false,
    seconds: 0,
    sentAtMs,
    transport,
    detail,
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
