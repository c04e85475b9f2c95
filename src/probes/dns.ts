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
// The parts: dns-message.ts builds queries and checks and classifies answers (pure), dns-udp.ts
// sorts datagrams onto queries in flight, dns-tcp.ts runs one query over a connection, and this
// file runs a lookup from start to result: validation, the deadline, the TCP retry, the counters.
//
// Size limits: a UDP answer must fit what we asked for (512 bytes, or the EDNS size we
// advertised); a TCP answer must fit maxTcpResponseBytes (16 KiB by default, 65535 at most).
// dns-packet accepts only backward compression pointers, so loops are impossible, but chains of
// pointers are followed one hop at a time: a hostile 64 KiB answer built from pointer chains
// costs ~300 ms of CPU to reject, a 16 KiB one a few ms. Hence the modest TCP default.

import { randomInt } from 'node:crypto';
import type dgram from 'node:dgram';
import net from 'node:net';
import type { Clock, TimerHandle } from '../core/clock.ts';
import {
  answerResult,
  encodeQuery,
  errorText,
  failedResult,
  normaliseName,
  type DnsOutcome,
  type DnsQuery,
  type DnsResult,
  type DnsTransport,
  type ExpectedAnswer,
  type ResponseCheck,
} from './dns-message.ts';
import { DnsTcpLeg } from './dns-tcp.ts';
import { DnsUdp, bindUdpSocket } from './dns-udp.ts';
import { errnoOf, reasonFromErrno } from './probe.ts';

export {
  DNS_OUTCOMES,
  answeredCorrectly,
  checkResponse,
  normaliseName,
  type DnsOutcome,
  type DnsQuery,
  type DnsRecordType,
  type DnsResult,
  type DnsTransport,
  type ExpectedAnswer,
  type ResponseCheck,
} from './dns-message.ts';

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
  /** The TCP leg, when the query went (or was retried) over TCP. */
  tcp: DnsTcpLeg | undefined;
}

export class DnsProbe {
  private readonly active = new Set<Active>();
  private readonly udp: DnsUdp<Active>;
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

  /** The local UDP port every query is sent from. */
  readonly port: number;

  private constructor(
    socket: dgram.Socket,
    private readonly clock: Clock,
    private readonly bindAddress: string | undefined,
    private readonly ednsUdpSize: number | undefined,
    maxTcpResponseBytes: number,
  ) {
    this.tcpLimit = maxTcpResponseBytes;
    const maxBytes = Math.max(MAX_UDP_PLAIN, ednsUdpSize ?? 0);
    this.udp = new DnsUdp<Active>(
      socket,
      { clock, bindAddress, maxBytes },
      {
        received: () => {
          this.counters.received++;
        },
        rejected: (counter, detail, a) => {
          this.counters[counter]++;
          if (a !== undefined) a.garbled = detail;
        },
        answer: (a, check, endNs) => this.onUdpAnswer(a, check, endNs),
        sendFailed: (a, err) => this.failErrno(a, err, 'send'),
      },
    );
    this.port = this.udp.port;
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
    const socket = await bindUdpSocket(opts.bindAddress);
    return new DnsProbe(socket, opts.clock, opts.bindAddress, edns, tcpMax);
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
    return this.udp.close();
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
      id = this.udp.freeId();
      if (id === undefined) return reject('too many UDP queries in flight');
    } else {
      id = randomInt(0, 65_536);
    }
    const wire = encodeQuery(id, full, this.ednsUdpSize);
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
      garbled: undefined,
      tcp: undefined,
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
    if (transport === 'udp') this.sendUdp(a);
    else this.sendTcp(a);
  }

  private sendUdp(a: Active): void {
    this.counters.sent++;
    this.counters.udpSent++;
    this.udp.send(a);
  }

  /** A UDP answer: the query ends, or goes on over TCP when the answer was truncated. */
  private onUdpAnswer(
    a: Active,
    check: Extract<ResponseCheck, { kind: 'answer' }>,
    endNs: bigint,
  ): void {
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
    const q = a.query;
    const leg = { server: q.server, port: q.port, bindAddress: this.bindAddress };
    try {
      a.tcp = DnsTcpLeg.connect(
        { ...leg, wire: a.wire, expected: a.expected, maxBytes: this.tcpLimit },
        this.clock,
        {
          sent: () => {
            this.counters.sent++;
            this.counters.tcpSent++;
          },
          received: () => {
            this.counters.received++;
          },
          answer: (check, endNs) => this.answer(a, check, endNs),
          malformed: (detail, counter) => {
            if (counter !== undefined) this.counters[counter]++;
            this.tcpMalformed(a, detail);
          },
          failed: (err, stage) => this.failErrno(a, err, stage),
          closedEmpty: () => this.fail(a, 'error', 'connection closed without an answer'),
        },
      );
    } catch (err) {
      this.failErrno(a, err, 'connect');
    }
  }

  private tcpMalformed(a: Active, detail: string): void {
    this.fail(a, 'malformed', a.truncatedRetried ? `${detail} (TCP retry)` : detail);
  }

  private answer(
    a: Active,
    check: Extract<ResponseCheck, { kind: 'answer' }>,
    endNs: bigint,
  ): void {
    const leg = {
      truncatedRetried: a.truncatedRetried,
      seconds: Math.max(0, Number(endNs - a.startNs) / 1e9),
      sentAtMs: a.sentAtMs,
      transport: a.transport,
    };
    this.finish(a, answerResult(check, leg));
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
    const leg = {
      truncatedRetried: a.truncatedRetried,
      seconds: Math.max(0, Number(this.clock.monoNs() - a.startNs) / 1e9),
      sentAtMs: a.sentAtMs,
      transport: a.transport,
    };
    this.finish(a, failedResult(outcome, detail, leg));
  }

  private finish(a: Active, result: DnsResult): void {
    if (a.done) return;
    a.done = true;
    if (a.timer !== undefined) this.clock.clearTimeout(a.timer);
    this.active.delete(a);
    this.udp.end(a);
    a.tcp?.close();
    a.resolve(result);
  }
}

/** A query that ended before anything was sent. */
function bare(
  transport: DnsTransport,
  sentAtMs: number,
  outcome: DnsOutcome,
  detail: string,
): DnsResult {
  return failedResult(outcome, detail, {
    truncatedRetried: false,
    seconds: 0,
    sentAtMs,
    transport,
  });
}
