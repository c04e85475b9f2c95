// ICMP echo probe. Three sockets, tried in this order (docs/timestamps.md):
//
//   ping        podmesh's timestamping addon (src/native), an unprivileged ICMP socket
//               (SOCK_DGRAM, IPPROTO_ICMP): no capability needed where the sysctl
//               net.ipv4.ping_group_range includes the process's group. The kernel picks the
//               echo identifier, delivers only our replies, and reports ICMP errors on the
//               socket error queue.
//   raw         the same addon, a raw ICMP socket: needs CAP_NET_RAW.
//   raw-socket  the `raw-socket` package (needs CAP_NET_RAW), when the addon can't load.
//
// With the addon, T1 and T4 are the kernel's transmit and receive times and the addon polls on
// the current thread's loop, so the probe runs on a worker thread too. raw-socket is a legacy nan
// addon that polls on uv_default_loop(): loaded or used off the main thread it hangs the process
// or crashes it at exit. So it is required lazily inside open(), open() refuses it in a worker
// thread, and its times are user-space readings.
//
// Every raw ICMP socket in the host sees every ICMP packet, including the replies meant for
// other probe instances in the same process (the demo runs several agents in one process), so
// replies are matched strictly on identifier, sequence number and addresses.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIPv4 } from 'node:net';
import { isMainThread } from 'node:worker_threads';
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { FailureReason, ProbeResult, ProbeTarget, SizeClass } from '../core/types.ts';
import {
  EventType,
  SocketKind,
  Stamps,
  loadTimestamping,
  type AddonLoad,
  type NativeEventHandler,
  type NativeSocket,
  type TimestampInfo,
  type TimestampingAddon,
} from '../native/timestamping.ts';
import { reasonFromErrno } from './probe.ts';
import type { Probe } from './probe.ts';
import type { TimestampMode } from './timestamped-udp.ts';

const IP_HEADER_BYTES = 20;
const ICMP_HEADER_BYTES = 8;
/** The smallest packet we can send: an IP header plus a bare echo header. */
export const ICMP_MIN_PACKET_BYTES = IP_HEADER_BYTES + ICMP_HEADER_BYTES;
/** The largest IPv4 packet (the total-length field is 16 bits). */
export const ICMP_MAX_PACKET_BYTES = 65_535;

const ICMP_ECHO_REPLY = 0;
const ICMP_DEST_UNREACHABLE = 3;
const ICMP_ECHO_REQUEST = 8;
const ICMP_TIME_EXCEEDED = 11;
const IPPROTO_ICMP = 1;

// Linux values; raw-socket does not export them.
const IPPROTO_IP_LEVEL = 0;
const IP_MTU_DISCOVER = 10;
const IP_PMTUDISC_DO = 2;
const SOL_SOCKET_LEVEL = 1;
/** Raw ICMP sockets only: a bitmask of ICMP types the kernel should NOT deliver (linux/icmp.h). */
const SOL_RAW_LEVEL = 255;
const ICMP_FILTER = 1;
/**
 * Everything but echo replies, destination unreachable and time exceeded. A raw ICMP socket
 * otherwise gets a copy of every ICMP packet the node handles, other probers' echo requests
 * included; on a busy node those fill its receive buffer and crowd out our own replies.
 */
// Unsigned: raw-socket's setOption takes only a uint32 (the addon's takes the same 32 bits).
const ICMP_FILTER_MASK =
  ~((1 << ICMP_ECHO_REPLY) | (1 << ICMP_DEST_UNREACHABLE) | (1 << ICMP_TIME_EXCEEDED)) >>> 0;
const SO_RCVBUF = 8;
const IP_HDRINCL = 3;

/** Big enough for any IPv4 packet, so large (mtu) replies are never truncated on receive. */
const RECV_BUFFER_BYTES = 65_536;
const SOCKET_RCVBUF_BYTES = 1 << 20;

// ---------------------------------------------------------------------------------------------
// The parts of raw-socket we use. Typed here because the package ships no types.

export interface RawSocket {
  on(event: 'message', listener: (buffer: Buffer, source: string) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  send(
    buffer: Buffer,
    offset: number,
    length: number,
    address: string,
    beforeCallback: () => void,
    afterCallback: (error: Error | null, bytes: number) => void,
  ): unknown;
  setOption(level: number, option: number, value: number): void;
  close(): unknown;
}

export interface RawSocketModule {
  createSocket(options: { protocol: number; bufferSize?: number }): RawSocket;
}

// ---------------------------------------------------------------------------------------------
// Packet parsing: pure, total over all inputs (hostile packets must never throw).

export type IcmpParse =
  | {
      readonly kind: 'echo-reply';
      readonly source: string;
      readonly destination: string;
      readonly id: number;
      readonly seq: number;
    }
  | {
      readonly kind: 'error';
      /** The router (or host) that reported the error. */
      readonly source: string;
      readonly destination: string;
      readonly icmpType: number;
      readonly icmpCode: number;
      /** Destination of the echo request quoted inside the error. */
      readonly quotedDestination: string;
      readonly id: number;
      readonly seq: number;
      /** Next-hop MTU from a "fragmentation needed" error (RFC 1191), when given. */
      readonly nextHopMtu?: number;
    }
  | { readonly kind: 'ignore'; readonly why: string }
  | { readonly kind: 'malformed'; readonly why: string };

function ipv4At(p: Uint8Array, offset: number): string {
  return `${p[offset]}.${p[offset + 1]}.${p[offset + 2]}.${p[offset + 3]}`;
}

function u16At(p: Uint8Array, offset: number): number {
  return ((p[offset] ?? 0) << 8) | (p[offset + 1] ?? 0);
}

/** RFC 1071 Internet checksum of p[offset, offset+length). */
export function internetChecksum(p: Uint8Array, offset = 0, length = p.length - offset): number {
  let sum = 0;
  const end = offset + length;
  let i = offset;
  for (; i + 1 < end; i += 2) sum += ((p[i] ?? 0) << 8) | (p[i + 1] ?? 0);
  if (i < end) sum += (p[i] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Asks the kernel to keep from a raw socket the ICMP types a prober never reads. */
function filterIcmpTypes(
  socket: { setOption(level: number, option: number, value: number): void },
  log: (msg: string) => void,
): void {
  try {
    socket.setOption(SOL_RAW_LEVEL, ICMP_FILTER, ICMP_FILTER_MASK);
  } catch (err) {
    log(`icmp: cannot filter ICMP types, other traffic may crowd out replies: ${messageOf(err)}`);
  }
}

/** Echo request bodies by ICMP length, identifier and sequence 0, with their one's-complement sum. */
const echoTemplates = new Map<number, { readonly bytes: Buffer; readonly sum: number }>();
const MAX_ECHO_TEMPLATES = 16;

/**
 * Writes an ICMP echo request (header and a ping-like byte pattern) filling `packet` from
 * `offset` to its end. The pattern and its checksum are worked out once per size: at hundreds
 * of echoes a second, most of them MTU-sized, filling and summing every byte each time was the
 * probe's largest cost in JavaScript. Only the identifier and sequence number change, and they
 * are added to the stored sum (RFC 1071 one's-complement addition is associative).
 */
export function echoRequestInto(packet: Buffer, offset: number, ident: number, seq: number): void {
  const length = packet.length - offset;
  let t = echoTemplates.get(length);
  if (t === undefined) {
    const bytes = Buffer.alloc(length);
    bytes[0] = ICMP_ECHO_REQUEST;
    // A recognisable pattern, like ping's, so captures are easy to read.
    for (let i = ICMP_HEADER_BYTES; i < length; i++) bytes[i] = i & 0xff;
    t = { bytes, sum: ~internetChecksum(bytes) & 0xffff };
    if (echoTemplates.size >= MAX_ECHO_TEMPLATES) echoTemplates.clear();
    echoTemplates.set(length, t);
  }
  t.bytes.copy(packet, offset);
  packet.writeUInt16BE(ident & 0xffff, offset + 4);
  packet.writeUInt16BE(seq & 0xffff, offset + 6);
  let sum = t.sum + (ident & 0xffff) + (seq & 0xffff);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  packet.writeUInt16BE(~sum & 0xffff, offset + 2);
}

/**
 * Reads an IPv4 packet as delivered by a Linux raw ICMP socket (IP header included). Never
 * throws: anything that is not a well-formed echo reply or a well-formed error quoting an
 * echo request comes back as 'ignore' (valid but not for a prober) or 'malformed'.
 */
export function parseIcmpPacket(packet: Uint8Array): IcmpParse {
  if (packet.length < IP_HEADER_BYTES)
    return { kind: 'malformed', why: 'shorter than an IP header' };
  const b0 = packet[0] ?? 0;
  if (b0 >> 4 !== 4) return { kind: 'malformed', why: 'not IPv4' };
  const ihl = (b0 & 0x0f) * 4;
  if (ihl < IP_HEADER_BYTES) return { kind: 'malformed', why: 'IP header length below 20' };
  if (packet.length < ihl + ICMP_HEADER_BYTES)
    return { kind: 'malformed', why: 'truncated ICMP header' };
  if (packet[9] !== IPPROTO_ICMP) return { kind: 'malformed', why: 'not ICMP' };
  const source = ipv4At(packet, 12);
  const destination = ipv4At(packet, 16);
  const type = packet[ihl] ?? 0;
  const code = packet[ihl + 1] ?? 0;

  if (type === ICMP_ECHO_REPLY) {
    if (internetChecksum(packet, ihl) !== 0) return { kind: 'malformed', why: 'bad ICMP checksum' };
    return {
      kind: 'echo-reply',
      source,
      destination,
      id: u16At(packet, ihl + 4),
      seq: u16At(packet, ihl + 6),
    };
  }
  if (type !== ICMP_DEST_UNREACHABLE && type !== ICMP_TIME_EXCEEDED) {
    return { kind: 'ignore', why: `ICMP type ${type}` };
  }

  // An error quotes the offending IP header plus at least the first 8 bytes of its payload.
  const inner = ihl + ICMP_HEADER_BYTES;
  if (packet.length < inner + IP_HEADER_BYTES)
    return { kind: 'malformed', why: 'error without quoted header' };
  const ib0 = packet[inner] ?? 0;
  if (ib0 >> 4 !== 4) return { kind: 'malformed', why: 'quoted packet not IPv4' };
  const innerIhl = (ib0 & 0x0f) * 4;
  if (innerIhl < IP_HEADER_BYTES)
    return { kind: 'malformed', why: 'quoted IP header length below 20' };
  if (packet.length < inner + innerIhl + ICMP_HEADER_BYTES) {
    return { kind: 'malformed', why: 'quoted payload shorter than 8 bytes' };
  }
  if (packet[inner + 9] !== IPPROTO_ICMP)
    return { kind: 'ignore', why: 'error quotes a non-ICMP packet' };
  const quoted = inner + innerIhl;
  if (packet[quoted] !== ICMP_ECHO_REQUEST)
    return { kind: 'ignore', why: 'error quotes a non-echo packet' };
  const mtu = u16At(packet, ihl + 6);
  const fragNeeded = type === ICMP_DEST_UNREACHABLE && code === 4 && mtu > 0;
  return {
    kind: 'error',
    source,
    destination,
    icmpType: type,
    icmpCode: code,
    quotedDestination: ipv4At(packet, inner + 16),
    id: u16At(packet, quoted + 4),
    seq: u16At(packet, quoted + 6),
    ...(fragNeeded ? { nextHopMtu: mtu } : {}),
  };
}

const UNREACHABLE_CODES: Record<number, string> = {
  0: 'network unreachable',
  1: 'host unreachable',
  2: 'protocol unreachable',
  3: 'port unreachable',
  4: 'fragmentation needed',
  9: 'network administratively prohibited',
  10: 'host administratively prohibited',
  13: 'communication administratively prohibited',
};

function describeIcmpError(e: Extract<IcmpParse, { kind: 'error' }>): string {
  if (e.icmpType === ICMP_TIME_EXCEEDED)
    return `ICMP time exceeded (code ${e.icmpCode}) from ${e.source}`;
  const what = UNREACHABLE_CODES[e.icmpCode] ?? `code ${e.icmpCode}`;
  const mtu = e.nextHopMtu === undefined ? '' : `, next-hop MTU ${e.nextHopMtu}`;
  return `ICMP destination unreachable (${what}${mtu}) from ${e.source}`;
}

// ---------------------------------------------------------------------------------------------
// Error mapping. raw-socket throws plain Errors carrying strerror() text and no code.

const STRERROR_TO_CODE: Record<string, string> = {
  'Operation not permitted': 'EPERM',
  'Permission denied': 'EACCES',
  'Message too long': 'EMSGSIZE',
  'Network is unreachable': 'ENETUNREACH',
  'No route to host': 'EHOSTUNREACH',
  'Host is down': 'EHOSTDOWN',
  'Network is down': 'ENETDOWN',
  'Cannot assign requested address': 'EADDRNOTAVAIL',
  'No buffer space available': 'ENOBUFS',
  'Invalid argument': 'EINVAL',
  'Protocol not supported': 'EPROTONOSUPPORT',
  'Address family not supported by protocol': 'EAFNOSUPPORT',
};

/** The errno name behind an error from raw-socket (or from Node, which sets `code`). */
export function rawSocketErrno(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const message = (err as { message?: unknown }).message;
    if (typeof message === 'string') return STRERROR_TO_CODE[message.trim()];
  }
  return undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Maps a failed send onto the closed reason set, with a detail worth logging. */
export function sendFailure(err: unknown): { reason: FailureReason; detail: string } {
  const code = rawSocketErrno(err);
  if (code === 'EMSGSIZE')
    return { reason: 'error', detail: 'send failed: larger than the known path MTU' };
  return { reason: reasonFromErrno(code), detail: `send failed: ${code ?? messageOf(err)}` };
}

// ---------------------------------------------------------------------------------------------
// The probe.

export interface IcmpUnavailable {
  readonly unavailable: true;
  readonly reason: 'permission' | 'error';
  readonly detail: string;
}

/** Which socket carries the echoes: see the header comment. */
export type IcmpSocketMode = 'ping' | 'raw' | 'raw-socket';

export interface IcmpProbeOptions {
  readonly clock: Clock;
  /**
   * Source address for the echo requests, and only replies addressed to it count. The addon's
   * sockets bind() to it; raw-socket cannot bind, so there we write the IP header ourselves
   * (IP_HDRINCL) with this source.
   */
  readonly bindAddress?: string;
  readonly log?: (msg: string) => void;
  /** Replaces the raw-socket addon (and skips the timestamping addon); for tests. */
  readonly rawSocketModule?: RawSocketModule;
  /** 'userspace': behave as if the timestamping addon could not load (raw-socket). */
  readonly timestamps?: TimestampMode;
  /**
   * Which of the timestamping addon's sockets: 'auto' (default) tries an unprivileged ping
   * socket first and a raw socket (CAP_NET_RAW) second.
   */
  readonly socket?: 'auto' | 'ping' | 'raw';
  /** For tests: what loadTimestamping() would have returned. */
  readonly addon?: AddonLoad;
}

export interface IcmpStats {
  readonly sent: number;
  /** Replies and errors matched to one of our in-flight probes. */
  readonly received: number;
  /** Well-formed packets that were not answers to our in-flight probes. */
  readonly ignored: number;
  readonly malformed: number;
  /** Answers whose request had no kernel transmit time (the pre-send time was used). */
  readonly txStampMissing: number;
}

interface Pending {
  readonly seq: number;
  readonly peerId: string;
  readonly address: string;
  readonly size: SizeClass;
  readonly sentAtMs: number;
  /** Just before the send, on the transport's clock; T1 unless the kernel's comes. */
  sentNs: bigint | undefined;
  /** What the addon files this send's transmit time under. */
  ticket: number | undefined;
  timer: TimerHandle | undefined;
  readonly resolve: (r: ProbeResult) => void;
}

/** Identifiers in use in this process, so two instances never share one. */
const identifiersInUse = new Set<number>();

function allocateIdentifier(): number {
  for (;;) {
    const id = Math.floor(Math.random() * 0x10000);
    if (!identifiersInUse.has(id)) {
      identifiersInUse.add(id);
      return id;
    }
  }
}

function isPermissionError(err: unknown): boolean {
  const code = rawSocketErrno(err);
  return code === 'EPERM' || code === 'EACCES';
}

/** A socket the probe sends on: the timestamping addon's, or raw-socket's. */
type Transport =
  | { readonly kind: 'raw-socket'; readonly socket: RawSocket }
  | {
      readonly kind: 'native';
      readonly mode: 'ping' | 'raw';
      readonly socket: NativeSocket;
      readonly realtimeNs: () => bigint;
      /** The socket's event callback forwards here; attach() points it at the probe. */
      readonly relay: { fn: NativeEventHandler };
    };

/** What open() settled on; reopening after a socket failure makes the same choice. */
type Opener =
  | { readonly kind: 'raw-socket'; readonly module: RawSocketModule }
  | { readonly kind: 'native'; readonly mode: 'ping' | 'raw'; readonly addon: TimestampingAddon };

/** Why unprivileged ICMP was refused, for the log: the sysctl and this process's group. */
function pingGroupRangeText(): string {
  let range = 'unknown';
  try {
    range = readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8').trim().replace(/\s+/, ' ');
  } catch {
    // not Linux, or /proc not mounted
  }
  return `net.ipv4.ping_group_range is "${range}", this process's group is ${process.getgid?.() ?? '?'}`;
}

export class IcmpProbe implements Probe {
  readonly kind = 'icmp' as const;
  /** Which socket the echoes go through. */
  readonly mode: IcmpSocketMode;
  readonly timestamps: TimestampInfo;

  private readonly clock: Clock;
  private readonly bindAddress: string | undefined;
  private readonly log: (msg: string) => void;
  private readonly opener: Opener;
  private transport: Transport | undefined;
  /** Ours for raw sockets; a ping socket's is the kernel's (its "port"), new on every reopen. */
  private ident: number;
  private readonly ownsIdent: boolean;
  private readonly pending = new Map<number, Pending>();
  private nextSeq = 0;
  private closed = false;
  private counters = { sent: 0, received: 0, ignored: 0, malformed: 0, txStampMissing: 0 };

  private constructor(options: IcmpProbeOptions, opener: Opener, why: string) {
    this.clock = options.clock;
    this.bindAddress = options.bindAddress;
    this.log = options.log ?? (() => {});
    this.opener = opener;
    this.mode = opener.kind === 'raw-socket' ? 'raw-socket' : opener.mode;
    this.ownsIdent = this.mode !== 'ping';
    this.ident = this.ownsIdent ? allocateIdentifier() : 0;
    this.timestamps =
      opener.kind === 'native'
        ? {
            source: 'kernel',
            detail: `kernel software timestamps on ${opener.mode === 'ping' ? 'an unprivileged ICMP ping socket' : 'a raw ICMP socket'}`,
          }
        : { source: 'userspace', detail: `user-space timestamps on raw-socket: ${why}` };
  }

  /** The ICMP echo identifier this instance sends and accepts. */
  get identifier(): number {
    return this.ident;
  }

  /**
   * Opens the socket. Resolves to IcmpUnavailable (never rejects) when neither an unprivileged
   * ping socket nor CAP_NET_RAW is available, or no addon loads, so the caller can turn ICMP off
   * with a log line.
   */
  static open(options: IcmpProbeOptions): Promise<IcmpProbe | IcmpUnavailable> {
    return Promise.resolve(IcmpProbe.openSync(options));
  }

  private static openSync(options: IcmpProbeOptions): IcmpProbe | IcmpUnavailable {
    if (options.bindAddress !== undefined && !isIPv4(options.bindAddress)) {
      return {
        unavailable: true,
        reason: 'error',
        detail: `bind address ${options.bindAddress} is not IPv4`,
      };
    }
    let module = options.rawSocketModule;
    let why = 'raw-socket module injected';
    if (module === undefined) {
      const load: AddonLoad =
        options.timestamps === 'userspace'
          ? { ok: false, reason: 'user-space timestamps requested' }
          : (options.addon ?? loadTimestamping());
      if (load.ok) return IcmpProbe.openNative(options, load.addon);
      why = load.reason;
      if (!isMainThread) {
        return {
          unavailable: true,
          reason: 'error',
          detail: `ICMP off this thread needs the timestamping addon (${load.reason}); raw-socket only runs on the main thread`,
        };
      }
      try {
        module = createRequire(import.meta.url)('raw-socket') as RawSocketModule;
      } catch (err) {
        return {
          unavailable: true,
          reason: 'error',
          detail: `cannot load raw-socket: ${messageOf(err)}`,
        };
      }
    }
    const opener: Opener = { kind: 'raw-socket', module };
    let transport: Transport;
    try {
      transport = IcmpProbe.createTransport(opener, options);
    } catch (err) {
      if (isPermissionError(err)) {
        return {
          unavailable: true,
          reason: 'permission',
          detail: `ICMP needs CAP_NET_RAW to open a raw socket (${messageOf(err)})`,
        };
      }
      return {
        unavailable: true,
        reason: 'error',
        detail: `cannot open raw ICMP socket: ${messageOf(err)}`,
      };
    }
    const probe = new IcmpProbe(options, opener, why);
    probe.attach(transport);
    return probe;
  }

  /** The addon: an unprivileged ping socket where allowed, else a raw one. */
  private static openNative(
    options: IcmpProbeOptions,
    addon: TimestampingAddon,
  ): IcmpProbe | IcmpUnavailable {
    const want = options.socket ?? 'auto';
    const modes: ('ping' | 'raw')[] = want === 'auto' ? ['ping', 'raw'] : [want];
    const refusals: string[] = [];
    let permissionOnly = true;
    for (const mode of modes) {
      const opener: Opener = { kind: 'native', mode, addon };
      try {
        const transport = IcmpProbe.createTransport(opener, options);
        const probe = new IcmpProbe(options, opener, '');
        probe.attach(transport);
        if (refusals.length > 0) probe.log(`icmp: using a raw socket: ${refusals.join('; ')}`);
        return probe;
      } catch (err) {
        const permission = isPermissionError(err);
        permissionOnly &&= permission;
        refusals.push(
          mode === 'ping'
            ? `unprivileged ICMP refused (${messageOf(err)}; ${pingGroupRangeText()})`
            : `raw ICMP refused (${messageOf(err)}${permission ? '; needs CAP_NET_RAW' : ''})`,
        );
      }
    }
    return {
      unavailable: true,
      reason: permissionOnly ? 'permission' : 'error',
      detail: refusals.join('; '),
    };
  }

  private static createTransport(
    opener: Opener,
    options: Pick<IcmpProbeOptions, 'bindAddress' | 'log'>,
  ): Transport {
    const log = options.log ?? (() => {});
    if (opener.kind === 'native') {
      const kind = opener.mode === 'ping' ? SocketKind.icmpDgram : SocketKind.icmpRaw;
      // The handler is swapped in by attach(); until then nothing has been sent to answer.
      const relay: { fn: NativeEventHandler } = { fn: () => undefined };
      const socket = new opener.addon.Socket(
        kind,
        options.bindAddress ?? '0.0.0.0',
        0,
        Stamps.both,
        (type, a, b, c, d, e, f) => relay.fn(type, a, b, c, d, e, f),
      );
      try {
        socket.setOption(SOL_SOCKET_LEVEL, SO_RCVBUF, SOCKET_RCVBUF_BYTES);
      } catch (err) {
        log(
          `icmp: cannot enlarge the receive buffer, replies may drop under load: ${messageOf(err)}`,
        );
      }
      if (opener.mode === 'raw') filterIcmpTypes(socket, log);
      try {
        // Don't-Fragment, so an mtu-sized probe is lost (or refused locally) on a smaller path
        // instead of being silently fragmented. The socket is bound, so no IP_HDRINCL needed.
        socket.setOption(IPPROTO_IP_LEVEL, IP_MTU_DISCOVER, IP_PMTUDISC_DO);
      } catch (err) {
        log(`icmp: cannot set Don't-Fragment, mtu probes may be fragmented: ${messageOf(err)}`);
      }
      return {
        kind: 'native',
        mode: opener.mode,
        socket,
        realtimeNs: opener.addon.realtimeNs,
        relay,
      };
    }
    const socket = opener.module.createSocket({
      protocol: IPPROTO_ICMP,
      bufferSize: RECV_BUFFER_BYTES,
    });
    try {
      socket.setOption(SOL_SOCKET_LEVEL, SO_RCVBUF, SOCKET_RCVBUF_BYTES);
    } catch (err) {
      log(
        `icmp: cannot enlarge the receive buffer, replies may drop under load: ${messageOf(err)}`,
      );
    }
    filterIcmpTypes(socket, log);
    if (options.bindAddress !== undefined) {
      try {
        socket.setOption(IPPROTO_IP_LEVEL, IP_HDRINCL, 1);
      } catch (err) {
        socket.close();
        throw err;
      }
    } else {
      try {
        socket.setOption(IPPROTO_IP_LEVEL, IP_MTU_DISCOVER, IP_PMTUDISC_DO);
      } catch (err) {
        log(`icmp: cannot set Don't-Fragment, mtu probes may be fragmented: ${messageOf(err)}`);
      }
    }
    return { kind: 'raw-socket', socket };
  }

  private attach(transport: Transport): void {
    this.transport = transport;
    if (transport.kind === 'native') {
      if (transport.mode === 'ping') this.ident = transport.socket.port;
      transport.relay.fn = (type, a, b, c, d, e, f) => {
        try {
          this.onNativeEvent(transport, type, a, b, c, d, e, f);
        } catch (err) {
          // Nothing here should throw for any packet; if it does, the packet is dropped.
          this.counters.malformed++;
          this.log(`icmp: packet handling failed: ${messageOf(err)}`);
        }
      };
      return;
    }
    const socket = transport.socket;
    socket.on('message', (buffer, _source) =>
      this.onPacket(this.clock.monoNs(), buffer, undefined),
    );
    socket.on('error', (err) => this.socketFailed(transport, messageOf(err)));
    socket.on('close', () => {});
  }

  private onNativeEvent(
    transport: Transport & { kind: 'native' },
    type: number,
    a: unknown,
    b: unknown,
    c: unknown,
    d: unknown,
    e: unknown,
    f: unknown,
  ): void {
    if (this.transport !== transport) return;
    if (type === EventType.message) {
      const rx = typeof d === 'bigint' ? d : transport.realtimeNs();
      if (transport.mode === 'raw') {
        this.onPacket(rx, a as Buffer, transport);
        return;
      }
      this.onMatched(rx, parsePingReply(a as Buffer, b as string, this.bindAddress), transport);
      return;
    }
    if (type === EventType.icmpError) {
      const sent = a as Buffer;
      if (sent.length < ICMP_HEADER_BYTES || sent[0] !== ICMP_ECHO_REQUEST) {
        this.counters.ignored++;
        return;
      }
      const icmpType = d as number;
      const icmpCode = e as number;
      const info = f as number;
      const fragNeeded = icmpType === ICMP_DEST_UNREACHABLE && icmpCode === 4 && info > 0;
      this.onMatched(
        transport.realtimeNs(),
        {
          kind: 'error',
          source: c as string,
          destination: this.bindAddress ?? '',
          icmpType,
          icmpCode,
          quotedDestination: b as string,
          id: sent.readUInt16BE(4),
          seq: sent.readUInt16BE(6),
          ...(fragNeeded ? { nextHopMtu: info } : {}),
        },
        transport,
      );
      return;
    }
    if (type === EventType.pollError) this.socketFailed(transport, `${String(a)}: ${String(b)}`);
  }

  /** The socket is unusable: fail what is in flight; the next run() opens a fresh one. */
  private socketFailed(transport: Transport, why: string): void {
    if (this.transport !== transport) return;
    this.transport = undefined;
    if (transport.kind === 'native') {
      try {
        transport.socket.close();
      } catch {
        // already closed
      }
    }
    // raw-socket closes the socket itself after emitting 'error'.
    this.log(`icmp: socket failed and was closed: ${why}`);
    for (const p of [...this.pending.values()]) {
      this.finish(p, { ok: false, reason: 'error', detail: `socket failed: ${why}` });
    }
  }

  stats(): IcmpStats {
    return { ...this.counters };
  }

  run(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    const sentAtMs = this.clock.nowMs();
    const base = { peerId: target.peer.id, kind: this.kind, size: target.size, sentAtMs };
    const fail = (reason: FailureReason, detail: string): Promise<ProbeResult> =>
      Promise.resolve({ ...base, ok: false, reason, detail });
    try {
      if (this.closed) return fail('error', 'probe closed');
      const address = target.peer.address;
      if (!isIPv4(address))
        return fail('error', `ICMP probes need an IPv4 address, got ${address}`);
      const total = Math.floor(target.bytes);
      if (!(total >= ICMP_MIN_PACKET_BYTES && total <= ICMP_MAX_PACKET_BYTES)) {
        return fail(
          'error',
          `packet size ${target.bytes} outside ${ICMP_MIN_PACKET_BYTES}..${ICMP_MAX_PACKET_BYTES}`,
        );
      }
      let transport = this.transport;
      if (transport === undefined) {
        try {
          transport = IcmpProbe.createTransport(this.opener, {
            bindAddress: this.bindAddress,
            log: this.log,
          });
        } catch (err) {
          const code = rawSocketErrno(err);
          return fail(reasonFromErrno(code), `cannot reopen ICMP socket: ${messageOf(err)}`);
        }
        this.attach(transport);
      }
      const seq = this.takeSeq();
      if (seq === undefined) return fail('error', 'too many ICMP probes in flight');
      const packet = this.buildPacket(address, total, seq, transport.kind === 'raw-socket');

      return new Promise<ProbeResult>((resolve) => {
        const p: Pending = {
          seq,
          peerId: target.peer.id,
          address,
          size: target.size,
          sentAtMs,
          sentNs: undefined,
          ticket: undefined,
          timer: undefined,
          resolve,
        };
        this.pending.set(seq, p);
        p.timer = this.clock.setTimeout(() => {
          p.timer = undefined;
          // Let a reply already waiting in the socket be read before calling it lost.
          setImmediate(() =>
            this.finish(p, {
              ok: false,
              reason: 'timeout',
              detail: `no ICMP echo reply within ${timeoutMs} ms`,
            }),
          );
        }, timeoutMs);
        if (transport.kind === 'native') {
          try {
            p.sentNs = transport.realtimeNs();
            p.ticket = transport.socket.send(packet, address, 0);
            this.counters.sent++;
          } catch (err) {
            this.finish(p, { ok: false, ...sendFailure(err) });
          }
          return;
        }
        try {
          transport.socket.send(
            packet,
            0,
            packet.length,
            address,
            () => {
              p.sentNs = this.clock.monoNs();
            },
            (err) => {
              if (err) {
                this.finish(p, { ok: false, ...sendFailure(err) });
              } else {
                this.counters.sent++;
              }
            },
          );
        } catch (err) {
          this.finish(p, { ok: false, ...sendFailure(err) });
        }
      });
    } catch (err) {
      return fail('error', `unexpected: ${messageOf(err)}`);
    }
  }

  forget(peerId: string): void {
    for (const p of [...this.pending.values()]) {
      if (p.peerId === peerId)
        this.finish(p, { ok: false, reason: 'error', detail: 'peer removed' });
    }
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const p of [...this.pending.values()])
        this.finish(p, { ok: false, reason: 'error', detail: 'probe closed' });
      const transport = this.transport;
      this.transport = undefined;
      try {
        transport?.socket.close();
      } catch (err) {
        this.log(`icmp: closing the socket failed: ${messageOf(err)}`);
      }
      if (this.ownsIdent) identifiersInUse.delete(this.ident);
    }
    return Promise.resolve();
  }

  private takeSeq(): number | undefined {
    if (this.pending.size > 0xffff) return undefined;
    for (;;) {
      const seq = this.nextSeq;
      this.nextSeq = (this.nextSeq + 1) & 0xffff;
      if (!this.pending.has(seq)) return seq;
    }
  }

  /**
   * A fresh buffer per send (raw-socket queues it until the socket is writable). The IP header
   * is ours only on raw-socket with a bind address; the addon's sockets are bound instead.
   */
  private buildPacket(address: string, total: number, seq: number, rawSocket: boolean): Buffer {
    const withHeader = rawSocket && this.bindAddress !== undefined;
    const packet = Buffer.allocUnsafe(withHeader ? total : total - IP_HEADER_BYTES);
    if (withHeader) packet.fill(0, 0, IP_HEADER_BYTES);
    const icmp = withHeader ? IP_HEADER_BYTES : 0;
    if (withHeader) {
      packet[0] = 0x45;
      packet.writeUInt16BE(total, 2);
      packet.writeUInt16BE(0x4000, 6); // Don't-Fragment; the kernel fills id and checksum.
      packet[8] = 64;
      packet[9] = IPPROTO_ICMP;
      writeIpv4(packet, 12, this.bindAddress ?? '0.0.0.0');
      writeIpv4(packet, 16, address);
    }
    // A ping socket writes its own identifier over ours (and the checksum with it).
    echoRequestInto(packet, icmp, this.ident, seq);
    return packet;
  }

  /** A whole IP packet from a raw socket (raw-socket's or the addon's). */
  private onPacket(receivedNs: bigint, buffer: Buffer, transport: Transport | undefined): void {
    let parsed: IcmpParse;
    try {
      parsed = parseIcmpPacket(buffer);
    } catch {
      parsed = { kind: 'malformed', why: 'parser failed' };
    }
    this.onMatched(receivedNs, parsed, transport);
  }

  private onMatched(receivedNs: bigint, parsed: IcmpParse, transport: Transport | undefined): void {
    if (parsed.kind === 'malformed') {
      this.counters.malformed++;
      return;
    }
    if (parsed.kind === 'ignore' || parsed.id !== this.ident) {
      this.counters.ignored++;
      return;
    }
    const p = this.pending.get(parsed.seq);
    if (p === undefined) {
      this.counters.ignored++;
      return;
    }
    if (parsed.kind === 'echo-reply') {
      const ours =
        parsed.source === p.address &&
        (this.bindAddress === undefined || parsed.destination === this.bindAddress);
      if (!ours || p.sentNs === undefined) {
        this.counters.ignored++;
        return;
      }
      this.counters.received++;
      let sentNs = p.sentNs;
      if (transport?.kind === 'native' && p.ticket !== undefined) {
        const tx = transport.socket.txTime(p.ticket);
        if (tx !== undefined) sentNs = tx;
        else this.counters.txStampMissing++;
      }
      const rtt = receivedNs - sentNs;
      this.finish(p, { ok: true, rttSeconds: Number(rtt > 0n ? rtt : 0n) / 1e9 });
      return;
    }
    if (parsed.quotedDestination !== p.address) {
      this.counters.ignored++;
      return;
    }
    this.counters.received++;
    this.finish(p, { ok: false, reason: 'unreachable', detail: describeIcmpError(parsed) });
  }

  private finish(
    p: Pending,
    outcome:
      { ok: true; rttSeconds: number } | { ok: false; reason: FailureReason; detail: string },
  ): void {
    if (this.pending.get(p.seq) !== p) return;
    this.pending.delete(p.seq);
    if (p.timer !== undefined) this.clock.clearTimeout(p.timer);
    const base = { peerId: p.peerId, kind: this.kind, size: p.size, sentAtMs: p.sentAtMs };
    p.resolve(
      outcome.ok
        ? { ...base, ok: true, rttSeconds: outcome.rttSeconds }
        : { ...base, ok: false, reason: outcome.reason, detail: outcome.detail },
    );
  }
}

/**
 * An echo reply as a ping socket delivers it: the ICMP message alone (the kernel already
 * checked the checksum and that the identifier is this socket's).
 */
export function parsePingReply(
  message: Uint8Array,
  source: string,
  boundAddress: string | undefined,
): IcmpParse {
  if (message.length < ICMP_HEADER_BYTES)
    return { kind: 'malformed', why: 'shorter than an ICMP header' };
  if (message[0] !== ICMP_ECHO_REPLY) return { kind: 'ignore', why: `ICMP type ${message[0]}` };
  return {
    kind: 'echo-reply',
    source,
    // The socket only receives what is addressed to its bound address.
    destination: boundAddress ?? '',
    id: u16At(message, 4),
    seq: u16At(message, 6),
  };
}

function writeIpv4(buffer: Buffer, offset: number, address: string): void {
  const parts = address.split('.');
  for (let i = 0; i < 4; i++) buffer[offset + i] = Number(parts[i] ?? 0) & 0xff;
}
