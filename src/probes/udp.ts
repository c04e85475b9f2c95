// The 'udp' probe: a STAMP (RFC 8762) session-sender. One UDP socket serves every peer; each
// peer is a STAMP session with its own sequence numbers. Besides the RTT (with the reflector's
// own dwell T3 - T2 taken out), a stateful reflector's sequence numbers let each answer tell how
// many probes since the previous answer were lost on the way there and how many on the way back.
//
// Public API:
//   UdpStampProbe.open({ clock, bindAddress, authKey?, errorEstimate? }) -> Promise<UdpStampProbe>
//   probe.run(target, timeoutMs) -> Promise<ProbeResult>   never rejects
//   probe.forget(peerId)                                    drop a departed peer's session
//   probe.stats() -> UdpStampStats                          socket-level counters
//   probe.port                                              the local (ephemeral) port
//   probe.timestamps -> { source: 'kernel' | 'userspace', detail }
//   probe.close() -> Promise<void>                          pending probes fail with 'error'
//
// Loss attribution: for an answer to sender seq s_j carrying reflector seq r_j, after the
// previous in-order answer (s_k, r_k): forwardLost = (s_j - s_k) - (r_j - r_k) and
// reverseLost = (r_j - r_k) - 1. If r went backwards or moved more than s did, the reflector
// lost its session (restart, eviction) and the baseline is reset with nothing reported. Counts
// from answers that arrive after their probe timed out are kept and reported with the next
// result, as are duplicates and reordered answers. A reordered answer had been counted as
// reverse loss by the answer that overtook it; it is taken back out of later reverse counts.
// (Reordering on the forward path, which the reflector numbers out of order, still shows as one
// forward loss balanced by that credit: totals stay right, the split can be off by one.)
//
// Timestamps (docs/timestamps.md): with the timestamping addon, T1 is the kernel's transmit time
// of the request and T4 the kernel's receive time of the answer, so neither this thread's nor
// the reflector's scheduling delay lands in the RTT = (T4 - T1) - (T3 - T2). The T1 written
// into the packet is the wall clock just before the send (the kernel's comes too late to
// write); the reflector copies it back and only this side's kernel times enter the RTT. If a
// transmit time is ever missing (error queue overflow) the pre-send reading stands in and
// stats().txStampMissing counts it. Without the addon both ends are user-space readings.
//
// Replies are matched to a peer by source address:port, so peer.address must be the IPv4
// literal the reflector answers from (the socket is udp4), and two peers must not share one.
//
// Don't-Fragment: we leave IP_MTU_DISCOVER alone (Node's dgram cannot set it; the addon could). Linux UDP sockets default to
// IP_PMTUDISC_WANT, which sets DF on packets that fit the route's known path MTU (and fragments
// only larger ones locally), so an MTU-sized probe through a black hole is lost rather than
// fragmented on the way, which is exactly the symptom the 'mtu' size class is there to show.

import type { Clock, TimerHandle } from '../core/clock.ts';
import type {
  FailureReason,
  Peer,
  ProbeFailure,
  ProbeResult,
  ProbeTarget,
  StampDetail,
} from '../core/types.ts';
import { TimeoutJudge, errnoOf, reasonFromErrno, type Probe } from './probe.ts';
import {
  DEFAULT_ERROR_ESTIMATE,
  baseLength,
  decodeReflectorPacket,
  encodeErrorEstimate,
  encodeSenderPacket,
  ntpDiffNs,
  ntpFromUnixNs,
  type ErrorEstimate,
  type NtpTimestamp,
} from './stamp-codec.ts';
import type { AddonLoad, TimestampInfo } from '../native/timestamping.ts';
import { AnsweredWindow } from './answered-window.ts';
import {
  openTimestampedUdp,
  type DatagramInfo,
  type TimestampMode,
  type TimestampedUdpSocket,
} from './timestamped-udp.ts';

/** IPv4 header (no options) + UDP header: what separates target.bytes from the UDP payload. */
export const IPV4_UDP_OVERHEAD = 28;
/**
 * How far back an unanswered sequence number may be and still count as a late answer; duplicates
 * are recognised over the same window (answered-window.ts: 512 bytes per peer).
 */
const LATE_WINDOW = 4096;

export interface UdpStampProbeOptions {
  readonly clock: Clock;
  /** Local address to bind (port is always ephemeral). */
  readonly bindAddress: string;
  /** Present means authenticated mode; the reflector must hold the same key. */
  readonly authKey?: Buffer | undefined;
  readonly errorEstimate?: ErrorEstimate;
  /** 'userspace' ignores the timestamping addon even where it loads. Default 'auto'. */
  readonly timestamps?: TimestampMode;
  /** For tests: what loadTimestamping() would have returned. */
  readonly addon?: AddonLoad;
}

export interface UdpStampStats {
  readonly sent: number;
  /** Every datagram that arrived on the socket, good or bad. */
  readonly received: number;
  /** Too short for the mode. */
  readonly malformedReplies: number;
  readonly authFailed: number;
  /** From an address:port that is no current peer, or for a sequence number never sent. */
  readonly unmatched: number;
  /** Answers whose request had no kernel transmit time (the pre-send time was used). */
  readonly txStampMissing: number;
}

/** UDP payload length for a target: the base packet for 'small', else bytes minus IP+UDP headers. */
export function payloadLength(
  target: Pick<ProbeTarget, 'size' | 'bytes'>,
  authKey?: Buffer,
): number {
  const base = baseLength(authKey);
  if (target.size === 'small') return base;
  return Math.max(base, Math.trunc(target.bytes) - IPV4_UDP_OVERHEAD);
}

interface Pending {
  readonly seq: number;
  readonly target: ProbeTarget;
  readonly sentAtMs: number;
  /** An answer whose own times say it took longer than this is late, however soon it was read. */
  readonly timeoutNs: bigint;
  readonly t1: NtpTimestamp;
  /** The socket's clock just before the send; T1 when no kernel transmit time comes. */
  t1Pre: bigint;
  /** What the socket files this send's transmit time under. */
  ticket: number;
  timer: TimerHandle | undefined;
  done: boolean;
  readonly resolve: (r: ProbeResult) => void;
}

interface PeerSession {
  readonly peerId: string;
  sourceKey: string;
  nextSeq: number;
  readonly pending: Map<number, Pending>;
  /** Last in-order answer (sender seq, reflector seq): the start of the next loss gap. */
  baseline: { s: number; r: number } | undefined;
  /** Answers for sequence numbers at or before this were never inside a counted gap. */
  origin: number | undefined;
  /** Which sequence numbers of the last LATE_WINDOW sent were answered (duplicates). */
  readonly answered: AnsweredWindow;
  // Accumulated since the last reported result. reverseLost may go negative internally: that is
  // a credit from reordered answers that an earlier result already reported as reverse loss.
  forwardLost: number;
  reverseLost: number;
  duplicates: number;
  reordered: number;
}

/** Signed distance a - b between two u32 sequence numbers, correct across wraparound. */
function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export class UdpStampProbe implements Probe {
  readonly kind = 'udp' as const;
  private readonly sessions = new Map<string, PeerSession>();
  private readonly bySource = new Map<string, PeerSession>();
  private readonly errorEstimate: number;
  private closed = false;
  private readonly counters = {
    sent: 0,
    received: 0,
    malformedReplies: 0,
    authFailed: 0,
    unmatched: 0,
    txStampMissing: 0,
  };
  private readonly judge = new TimeoutJudge();
  readonly timestamps: TimestampInfo;

  private constructor(
    private readonly socket: TimestampedUdpSocket,
    private readonly clock: Clock,
    private readonly authKey: Buffer | undefined,
    errorEstimate: ErrorEstimate,
  ) {
    this.errorEstimate = encodeErrorEstimate(errorEstimate);
    this.timestamps = socket.timestamps;
  }

  /** The local (ephemeral) port; a new one after the socket failed and was reopened. */
  get port(): number {
    return this.socket.port;
  }

  static async open(opts: UdpStampProbeOptions): Promise<UdpStampProbe> {
    let probe: UdpStampProbe | undefined = undefined;
    const socket = await openTimestampedUdp({
      clock: opts.clock,
      address: opts.bindAddress,
      port: 0,
      transmitStamps: true,
      timestamps: opts.timestamps,
      addon: opts.addon,
      // Nothing can arrive before the first send, which needs the probe.
      onMessage: (msg, info) => probe?.onMessage(msg, info),
      onFailed: (why) => probe?.socketFailed(why),
    });
    probe = new UdpStampProbe(
      socket,
      opts.clock,
      opts.authKey,
      opts.errorEstimate ?? DEFAULT_ERROR_ESTIMATE,
    );
    return probe;
  }

  run(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    return new Promise<ProbeResult>((resolve) => {
      try {
        this.start(target, timeoutMs, resolve);
      } catch (err) {
        resolve(failure(target, this.clock.nowMs(), 'error', errorText(err)));
      }
    });
  }

  private start(target: ProbeTarget, timeoutMs: number, resolve: (r: ProbeResult) => void): void {
    if (this.closed) {
      resolve(failure(target, this.clock.nowMs(), 'error', 'probe closed'));
      return;
    }
    const session = this.sessionFor(target.peer);
    const seq = session.nextSeq;
    session.nextSeq = (seq + 1) >>> 0;
    session.answered.sent(seq);
    const sentAtMs = this.clock.nowMs();
    const t1 = ntpFromUnixNs(this.socket.unixNs(this.socket.now()));
    // A fresh Buffer per send: dgram keeps a reference until the kernel has taken the bytes.
    const packet = encodeSenderPacket(
      { seq, timestamp: t1, errorEstimate: this.errorEstimate },
      { length: payloadLength(target, this.authKey), authKey: this.authKey },
    );
    const pending: Pending = {
      seq,
      target,
      sentAtMs,
      timeoutNs: BigInt(Math.round(timeoutMs * 1e6)),
      t1,
      t1Pre: 0n,
      ticket: 0,
      timer: undefined,
      done: false,
      resolve,
    };
    session.pending.set(seq, pending);
    pending.timer = this.clock.setTimeout(() => {
      pending.timer = undefined;
      // An answer may already sit unread in the socket (a busy thread, a timer that fired
      // late): the judge lets the socket be read dry first, so a late wake-up isn't loss.
      this.judge.defer(() => this.finish(session, pending, failure(target, sentAtMs, 'timeout')));
    }, timeoutMs);
    this.counters.sent++;
    pending.t1Pre = this.socket.now();
    try {
      pending.ticket = this.socket.send(
        packet,
        target.peer.stampPort,
        target.peer.address,
        (err) => {
          this.finish(
            session,
            pending,
            failure(target, sentAtMs, reasonFromErrno(errnoOf(err)), err.message),
          );
        },
      );
    } catch (err) {
      // Bad port or address, a route refused at once, or a socket already closed.
      this.finish(
        session,
        pending,
        failure(target, sentAtMs, reasonFromErrno(errnoOf(err)), errorText(err)),
      );
    }
  }

  private sessionFor(peer: Peer): PeerSession {
    const sourceKey = `${peer.address}:${peer.stampPort}`;
    let session = this.sessions.get(peer.id);
    if (session === undefined) {
      session = {
        peerId: peer.id,
        sourceKey,
        nextSeq: 0,
        pending: new Map(),
        baseline: undefined,
        origin: undefined,
        answered: new AnsweredWindow(LATE_WINDOW),
        forwardLost: 0,
        reverseLost: 0,
        duplicates: 0,
        reordered: 0,
      };
      this.sessions.set(peer.id, session);
    } else if (session.sourceKey !== sourceKey) {
      // The peer moved (new Pod IP or port): a different reflector, so no shared baseline.
      if (this.bySource.get(session.sourceKey) === session) this.bySource.delete(session.sourceKey);
      session.sourceKey = sourceKey;
      session.baseline = undefined;
      session.origin = undefined;
    }
    this.bySource.set(sourceKey, session);
    return session;
  }

  private finish(session: PeerSession, pending: Pending, result: ProbeResult): void {
    if (pending.done) return;
    pending.done = true;
    if (pending.timer !== undefined) this.clock.clearTimeout(pending.timer);
    if (session.pending.get(pending.seq) === pending) session.pending.delete(pending.seq);
    pending.resolve(result);
  }

  /**
   * The socket failed and is being replaced (a new port): answers to what is in flight would go
   * to the old one, so those probes end now as errors of this prober, not as loss on the path.
   */
  private socketFailed(why: string): void {
    for (const session of this.sessions.values()) {
      for (const pending of [...session.pending.values()]) {
        this.finish(
          session,
          pending,
          failure(
            pending.target,
            pending.sentAtMs,
            'error',
            `socket failed and is reopened: ${why}`,
          ),
        );
      }
    }
  }

  private onMessage(msg: Buffer, info: DatagramInfo): void {
    // T4 is the arrival time the socket recorded (the kernel's, or read first thing on arrival).
    const t4 = info.rxTime;
    this.counters.received++;
    this.judge.noteRead();
    const session = this.bySource.get(`${info.address}:${info.port}`);
    if (session === undefined) {
      this.counters.unmatched++;
      return;
    }
    const decoded = decodeReflectorPacket(msg, this.authKey);
    if (!decoded.ok) {
      if (decoded.reason === 'auth') this.counters.authFailed++;
      else this.counters.malformedReplies++;
      return;
    }
    const reply = decoded.packet;
    const s = reply.senderSeq;
    if (session.answered.answered(s)) {
      session.duplicates++;
      return;
    }
    const pending = session.pending.get(s);
    if (pending === undefined) {
      if (!session.answered.holds(s)) {
        this.counters.unmatched++;
        return;
      }
      // A late answer to a probe that already timed out: no RTT, but its sequence numbers
      // still belong in the loss accounting.
      this.account(session, s, reply.seq);
      return;
    }
    if (reply.senderTimestamp !== pending.t1) {
      // Reflectors copy T1 back verbatim; a mismatch is a stale or forged answer.
      this.counters.unmatched++;
      return;
    }
    this.account(session, s, reply.seq);
    let t1 = this.socket.txTime(pending.ticket);
    if (t1 === undefined) {
      if (this.socket.source === 'kernel') this.counters.txStampMissing++;
      t1 = pending.t1Pre;
    }
    const rawNs = t4 - t1;
    if (rawNs > pending.timeoutNs) {
      // Read in time only because the timer ran late (a held event loop): by its own times the
      // answer came after the timeout. Its sequence numbers are accounted for above.
      this.finish(
        session,
        pending,
        failure(
          pending.target,
          pending.sentAtMs,
          'timeout',
          `answer after ${(Number(rawNs) / 1e6).toFixed(1)} ms, past the ${Number(pending.timeoutNs) / 1e6} ms timeout`,
        ),
      );
      return;
    }
    let dwellNs = ntpDiffNs(reply.timestamp, reply.receiveTimestamp);
    if (dwellNs < 0n) dwellNs = 0n;
    if (dwellNs > rawNs) dwellNs = rawNs > 0n ? rawNs : 0n;
    const rttNs = rawNs - dwellNs;
    this.finish(session, pending, {
      peerId: pending.target.peer.id,
      kind: 'udp',
      size: pending.target.size,
      sentAtMs: pending.sentAtMs,
      ok: true,
      rttSeconds: Number(rttNs > 0n ? rttNs : 0n) / 1e9,
      stamp: this.drain(session, Number(dwellNs) / 1e9),
    });
  }

  /** Books one first-time answer (s, r) into the session's loss/reorder accounting. */
  private account(session: PeerSession, s: number, r: number): void {
    session.answered.markAnswered(s);
    const base = session.baseline;
    if (base === undefined) {
      session.baseline = { s, r };
      session.origin = s;
      return;
    }
    const ds = seqDiff(s, base.s);
    if (ds < 0) {
      session.reordered++;
      // It sat inside a gap already closed by the answer that overtook it, where it was counted
      // as lost on the way back; it wasn't lost, so take it back out.
      if (session.origin !== undefined && seqDiff(s, session.origin) > 0) session.reverseLost--;
      return;
    }
    const dr = (r - base.r) >>> 0;
    session.baseline = { s, r };
    if (dr === 0 || dr > ds) {
      // The reflector's counter restarted (reflector restart, session evicted or expired).
      session.origin = s;
      return;
    }
    session.forwardLost += ds - dr;
    session.reverseLost += dr - 1;
  }

  private drain(session: PeerSession, dwellSeconds: number): StampDetail {
    const detail: StampDetail = {
      forwardLost: session.forwardLost,
      reverseLost: Math.max(0, session.reverseLost),
      duplicates: session.duplicates,
      reordered: session.reordered,
      reflectorDwellSeconds: dwellSeconds,
    };
    session.forwardLost = 0;
    session.reverseLost = Math.min(0, session.reverseLost);
    session.duplicates = 0;
    session.reordered = 0;
    return detail;
  }

  forget(peerId: string): void {
    const session = this.sessions.get(peerId);
    if (session === undefined) return;
    this.sessions.delete(peerId);
    if (this.bySource.get(session.sourceKey) === session) this.bySource.delete(session.sourceKey);
    // Probes still in flight keep their timers and resolve as timeouts; their answers, now from
    // an unknown source, are counted as unmatched.
  }

  stats(): UdpStampStats {
    return { ...this.counters };
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const session of this.sessions.values()) {
      for (const pending of [...session.pending.values()]) {
        this.finish(
          session,
          pending,
          failure(pending.target, pending.sentAtMs, 'error', 'probe closed'),
        );
      }
    }
    return this.socket.close();
  }
}

function failure(
  target: ProbeTarget,
  sentAtMs: number,
  reason: FailureReason,
  detail?: string,
): ProbeFailure {
  const base = {
    peerId: target.peer.id,
    kind: 'udp' as const,
    size: target.size,
    sentAtMs,
    ok: false as const,
    reason,
  };
  return detail === undefined ? base : { ...base, detail };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The udp probe as the engine runs it: one STAMP session-sender (its own socket, so its own
 * session at every reflector) per size class. Small and MTU-sized probes to one peer must not
 * share a session: the reflector numbers every packet of a session, so interleaved sizes
 * would attribute the MTU probes' forward losses to whichever small probe answers next.
 */
export class SizedUdpProbe implements Probe {
  readonly kind = 'udp' as const;

  readonly timestamps: TimestampInfo;

  private constructor(private readonly bySize: ReadonlyMap<ProbeTarget['size'], UdpStampProbe>) {
    // Both sockets are opened alike; if they ever differ, report the weaker one.
    const all = [...bySize.values()].map((p) => p.timestamps);
    this.timestamps = all.find((t) => t.source === 'userspace') ?? all[0]!;
  }

  static async open(opts: UdpStampProbeOptions): Promise<SizedUdpProbe> {
    const small = await UdpStampProbe.open(opts);
    try {
      const mtu = await UdpStampProbe.open(opts);
      return new SizedUdpProbe(
        new Map([
          ['small', small],
          ['mtu', mtu],
        ]),
      );
    } catch (e) {
      await small.close();
      throw e;
    }
  }

  run(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    return this.bySize.get(target.size)!.run(target, timeoutMs);
  }

  forget(peerId: string): void {
    for (const p of this.bySize.values()) p.forget(peerId);
  }

  stats(): UdpStampStats {
    const out = {
      sent: 0,
      received: 0,
      malformedReplies: 0,
      authFailed: 0,
      unmatched: 0,
      txStampMissing: 0,
    };
    for (const p of this.bySize.values()) {
      const s = p.stats();
      out.sent += s.sent;
      out.received += s.received;
      out.malformedReplies += s.malformedReplies;
      out.authFailed += s.authFailed;
      out.unmatched += s.unmatched;
      out.txStampMissing += s.txStampMissing;
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.all([...this.bySize.values()].map((p) => p.close()));
  }
}
