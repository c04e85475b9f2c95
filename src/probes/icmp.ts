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
//
// The parts: icmp-packet.ts is the packet codec, icmp-transport.ts the little a socket must do
// for the probe, icmp-addon.ts the addon's ping and raw sockets, icmp-raw-socket.ts raw-socket.

import { isIPv4 } from 'node:net';
import { isMainThread } from 'node:worker_threads';
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { FailureReason, ProbeResult, ProbeTarget, SizeClass } from '../core/types.ts';
import {
  loadTimestamping,
  type AddonLoad,
  type TimestampInfo,
  type TimestampingAddon,
} from '../native/timestamping.ts';
import { openAddonTransport, pingGroupRangeText } from './icmp-addon.ts';
import {
  ICMP_MAX_PACKET_BYTES,
  ICMP_MIN_PACKET_BYTES,
  describeIcmpError,
  type IcmpParse,
} from './icmp-packet.ts';
import {
  openRawSocketTransport,
  rawSocketErrno,
  requireRawSocket,
  type RawSocketModule,
} from './icmp-raw-socket.ts';
import {
  messageOf,
  type IcmpSocketMode,
  type IcmpTransport,
  type IcmpTransportOptions,
} from './icmp-transport.ts';
import { TimeoutJudge, reasonFromErrno, socketReopens, type Probe } from './probe.ts';
import type { TimestampMode } from './timestamped-udp.ts';

export {
  ICMP_MAX_PACKET_BYTES,
  ICMP_MIN_PACKET_BYTES,
  echoRequestInto,
  internetChecksum,
  parseIcmpPacket,
  parsePingReply,
  type IcmpParse,
} from './icmp-packet.ts';
export { rawSocketErrno, type RawSocket, type RawSocketModule } from './icmp-raw-socket.ts';
export type { IcmpSocketMode } from './icmp-transport.ts';

/** Maps a failed send onto the closed reason set, with a detail worth logging. */
export function sendFailure(err: unknown): { reason: FailureReason; detail: string } {
  const code = rawSocketErrno(err);
  if (code === 'EMSGSIZE')
    return { reason: 'error', detail: 'send failed: larger than the known path MTU' };
  return { reason: reasonFromErrno(code), detail: `send failed: ${code ?? messageOf(err)}` };
}

export interface IcmpUnavailable {
  readonly unavailable: true;
  readonly reason: 'permission' | 'error';
  readonly detail: string;
}

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
  /** A reply whose own times say it took longer than this is late, however soon it was read. */
  readonly timeoutNs: bigint;
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

/** What open() settled on; reopening after a socket failure makes the same choice. */
type Opener =
  | { readonly kind: 'raw-socket'; readonly module: RawSocketModule }
  | { readonly kind: 'native'; readonly mode: 'ping' | 'raw'; readonly addon: TimestampingAddon };

/** Opens the socket `opener` names. Throws when it can't be opened. */
function openTransport(
  opener: Opener,
  options: IcmpTransportOptions & { readonly clock: Clock },
): IcmpTransport {
  return opener.kind === 'native'
    ? openAddonTransport(opener.mode, opener.addon, options)
    : openRawSocketTransport(opener.module, options);
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
  private transport: IcmpTransport | undefined;
  /** Ours for raw sockets; a ping socket's is the kernel's (its "port"), new on every reopen. */
  private ident: number;
  private readonly ownsIdent: boolean;
  private readonly pending = new Map<number, Pending>();
  private nextSeq = 0;
  private closed = false;
  private counters = { sent: 0, received: 0, ignored: 0, malformed: 0, txStampMissing: 0 };
  private readonly judge = new TimeoutJudge();

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
        module = requireRawSocket();
      } catch (err) {
        return {
          unavailable: true,
          reason: 'error',
          detail: `cannot load raw-socket: ${messageOf(err)}`,
        };
      }
    }
    const opener: Opener = { kind: 'raw-socket', module };
    let transport: IcmpTransport;
    try {
      transport = openTransport(opener, IcmpProbe.transportOptions(options));
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
        const transport = openTransport(opener, IcmpProbe.transportOptions(options));
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

  private static transportOptions(
    options: IcmpProbeOptions,
  ): IcmpTransportOptions & { readonly clock: Clock } {
    return {
      bindAddress: options.bindAddress,
      log: options.log ?? (() => {}),
      clock: options.clock,
    };
  }

  private attach(transport: IcmpTransport): void {
    this.transport = transport;
    if (transport.kernelIdentifier !== undefined) this.ident = transport.kernelIdentifier;
    transport.attach({
      packet: (receivedNs, parsed) => this.onMatched(receivedNs, parsed, transport),
      handlerFailed: (err) => {
        this.counters.malformed++;
        this.log(`icmp: packet handling failed: ${messageOf(err)}`);
      },
      failed: (why) => this.socketFailed(transport, why),
    });
  }

  /** The socket is unusable (and closed): fail what is in flight; the next run() opens a fresh one. */
  private socketFailed(transport: IcmpTransport, why: string): void {
    if (this.transport !== transport) return;
    this.transport = undefined;
    socketReopens.note('icmp', why);
    this.log(`icmp: socket failed and was closed (the next probe reopens it): ${why}`);
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
          transport = openTransport(this.opener, {
            bindAddress: this.bindAddress,
            log: this.log,
            clock: this.clock,
          });
        } catch (err) {
          const code = rawSocketErrno(err);
          return fail(reasonFromErrno(code), `cannot reopen ICMP socket: ${messageOf(err)}`);
        }
        this.attach(transport);
      }
      const seq = this.takeSeq();
      if (seq === undefined) return fail('error', 'too many ICMP probes in flight');
      const packet = transport.packet(address, total, this.ident, seq);

      return new Promise<ProbeResult>((resolve) => {
        const p: Pending = {
          seq,
          peerId: target.peer.id,
          address,
          size: target.size,
          sentAtMs,
          timeoutNs: BigInt(Math.round(timeoutMs * 1e6)),
          sentNs: undefined,
          ticket: undefined,
          timer: undefined,
          resolve,
        };
        this.pending.set(seq, p);
        p.timer = this.clock.setTimeout(() => {
          p.timer = undefined;
          // A reply already waiting in the socket is read before the probe is called lost.
          this.judge.defer(() =>
            this.finish(p, {
              ok: false,
              reason: 'timeout',
              detail: `no ICMP echo reply within ${timeoutMs} ms`,
            }),
          );
        }, timeoutMs);
        this.send(p, transport, packet, false);
      });
    } catch (err) {
      return fail('error', `unexpected: ${messageOf(err)}`);
    }
  }

  /**
   * Sends `p`'s echo request, and once more if that fails. On a ping socket (IP_RECVERR) an ICMP
   * error about an earlier echo, to whatever address, is also left as the socket's pending
   * error, and the next sendmsg fails with it (and clears it) whatever its own destination: a
   * host-unreachable from a down node would fail the next probe to a healthy one. That error is
   * reported on the error queue too, naming the echo it is about, and reaches its own probe
   * there. So a failed send is tried again: a pending error is gone by then, while an error of
   * this destination's own (no route, larger than the path MTU) comes back, and only then is it
   * this probe's.
   */
  private send(p: Pending, transport: IcmpTransport, packet: Buffer, retried: boolean): void {
    const failed = (err: unknown): void => {
      if (retried || this.pending.get(p.seq) !== p || this.transport !== transport)
        this.finish(p, { ok: false, ...sendFailure(err) });
      else this.send(p, transport, packet, true);
    };
    try {
      transport.send(packet, p.address, {
        stamped: (sentNs) => {
          p.sentNs = sentNs;
        },
        sent: (ticket) => {
          p.ticket = ticket;
          this.counters.sent++;
        },
        failed,
      });
    } catch (err) {
      failed(err);
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
        transport?.close();
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

  private onMatched(receivedNs: bigint, parsed: IcmpParse, transport: IcmpTransport): void {
    this.judge.noteRead();
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
      if (p.ticket !== undefined) {
        const tx = transport.txTime(p.ticket);
        if (tx !== undefined) sentNs = tx;
        else this.counters.txStampMissing++;
      }
      const rtt = receivedNs - sentNs;
      if (rtt > p.timeoutNs) {
        // Read in time only because the timer ran late (a held event loop): by its own times
        // the reply came after the timeout.
        this.finish(p, {
          ok: false,
          reason: 'timeout',
          detail: `ICMP echo reply after ${(Number(rtt) / 1e6).toFixed(1)} ms, past the ${Number(p.timeoutNs) / 1e6} ms timeout`,
        });
        return;
      }
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
