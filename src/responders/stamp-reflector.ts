// The STAMP session-reflector (RFC 8762 section 4.3) every agent runs so peers can probe it.
// Stateful mode: each session (sender address + port) gets its own reflector sequence counter,
// which is what lets a sender split loss into forward and reverse. Hardened for an open port:
// it never answers with more bytes than it received (no amplification), never answers another
// reflector's port (no ping-pong), caps replies per second, bounds its session table, and
// counts every dropped datagram under exactly one reason instead of throwing.
//
// Public API:
//   StampReflector.start(opts) -> Promise<StampReflector>   bind and start answering
//   reflector.port / reflector.address                      where it is bound (port 0 resolved)
//   reflector.timestamps -> { source: 'kernel' | 'userspace', detail }
//   reflector.stats() -> ReflectorStats                     counters since start
//   reflector.close() -> Promise<void>
//   reflectPacket(input) -> ReflectOutcome                  the per-packet decision, pure
//
// T2 and T3 (docs/timestamps.md): with the timestamping addon, T2 is the kernel's receive time
// of the test packet, so however long this thread took to get to it is inside T3 - T2, which
// the sender subtracts. T3 is read just before the reply is encoded and sent, on the same
// clock (RFC 8762 section 4.3 asks for the time the reply is sent; the kernel's transmit time
// only exists once the packet is gone, too late to write into it, and authenticated mode
// signs the field). T3 = T2 + (now - arrival), so T3 - T2 is exactly the measured dwell. With
// the addon the sender's TTL is read from the packet (IP_RECVTTL) as the RFC asks.

import type { Clock } from '../core/clock.ts';
import type { ReflectorCounts } from '../core/engine-health.ts';
import {
  DEFAULT_ERROR_ESTIMATE,
  baseLength,
  decodeSenderPacket,
  encodeErrorEstimate,
  encodeReflectorPacket,
  ntpAddNs,
  ntpFromUnixNs,
  type ErrorEstimate,
  type NtpTimestamp,
} from '../probes/stamp-codec.ts';
import type { TimestampInfo } from '../native/timestamping.ts';
import {
  openTimestampedUdp,
  type DatagramInfo,
  type TimestampMode,
  type TimestampedUdpSocket,
} from '../probes/timestamped-udp.ts';

/**
 * Session-Sender TTL we report when we can't read it. RFC 8762 wants the TTL the test packet
 * arrived with; the addon's socket reads it (IP_RECVTTL) but Node's dgram, the fallback, cannot.
 * Writing 255 would claim the packet crossed no router, which we cannot know, so we write 0: a
 * value no real packet can arrive with, which a reader can recognise as "not measured".
 */
export const UNKNOWN_TTL = 0;

export type DropReason = 'malformed' | 'auth_failed' | 'loop' | 'rate_limited';

export interface ReflectInput {
  /** The datagram exactly as received. */
  readonly packet: Buffer;
  readonly fromPort: number;
  /** The reflector's own bound port: a packet from it is another reflector's reply. */
  readonly ownPort: number;
  /** Sequence number this session's next reply carries. */
  readonly reflectorSeq: number;
  /** T2, taken when the datagram arrived. */
  readonly receiveTimestamp: NtpTimestamp;
  /** T3, read only once the packet has been accepted, just before the reply is built. */
  readonly transmitTimestamp: () => NtpTimestamp;
  /** Present means authenticated mode. */
  readonly authKey?: Buffer | undefined;
  /** Raw 16-bit Error Estimate of the reflector's own clock. */
  readonly errorEstimate: number;
  readonly senderTtl?: number;
  /**
   * Rate limiter hook, asked after the free checks (loop, length) and before the HMAC, so a
   * flood cannot buy HMAC work beyond the limit. Omitted means always admit.
   */
  readonly admit?: () => boolean;
}

export type ReflectOutcome =
  | { readonly ok: true; readonly reply: Buffer; readonly senderSeq: number }
  | { readonly ok: false; readonly drop: DropReason };

/**
 * Decides what to do with one datagram. The reply is a newly allocated Buffer exactly as long
 * as the input (padding zero), so nothing is ever amplified and no Buffer is shared between
 * dgram sends in flight.
 */
export function reflectPacket(input: ReflectInput): ReflectOutcome {
  try {
    if (input.fromPort === input.ownPort) return { ok: false, drop: 'loop' };
    if (input.packet.length < baseLength(input.authKey)) return { ok: false, drop: 'malformed' };
    if (input.admit !== undefined && !input.admit()) return { ok: false, drop: 'rate_limited' };
    const decoded = decodeSenderPacket(input.packet, input.authKey);
    if (!decoded.ok)
      return { ok: false, drop: decoded.reason === 'auth' ? 'auth_failed' : 'malformed' };
    const p = decoded.packet;
    const reply = encodeReflectorPacket(
      {
        seq: input.reflectorSeq,
        timestamp: input.transmitTimestamp(),
        errorEstimate: input.errorEstimate,
        receiveTimestamp: input.receiveTimestamp,
        senderSeq: p.seq,
        senderTimestamp: p.timestamp,
        senderErrorEstimate: p.errorEstimate,
        senderTtl: input.senderTtl ?? UNKNOWN_TTL,
      },
      { length: input.packet.length, authKey: input.authKey },
    );
    return { ok: true, reply, senderSeq: p.seq };
  } catch {
    // Nothing above should throw for any input; if it ever does, the datagram is dropped as
    // malformed rather than taking the reflector down.
    return { ok: false, drop: 'malformed' };
  }
}

export interface StampReflectorOptions {
  readonly clock: Clock;
  readonly address: string;
  /** 0 picks a free port; read it back from `port`. */
  readonly port: number;
  readonly authKey?: Buffer | undefined;
  /** Most sessions kept; the least recently used is evicted beyond it. Default 4096. */
  readonly maxSessions?: number;
  /** A session unheard from this long is forgotten (its counter restarts at 0). Default 300000. */
  readonly sessionIdleMs?: number;
  /** Global reply budget (token bucket, burst of one second's worth). Default 10000. */
  readonly maxRepliesPerSecond?: number;
  readonly errorEstimate?: ErrorEstimate;
  /** 'userspace' ignores the timestamping addon even where it loads. Default 'auto'. */
  readonly timestamps?: TimestampMode;
}

/** ReflectorCounts (what the engine reports, sessions = currently held) and the rest. */
export interface ReflectorStats extends ReflectorCounts {
  readonly received: number;
  /** Sessions pushed out by the size bound (idle expiry is counted in `expired`). */
  readonly evicted: number;
  readonly expired: number;
  /** Replies the kernel refused to send (counted in `reflected` too: the decision was to send). */
  readonly sendErrors: number;
}

interface Session {
  nextSeq: number;
  lastSeenMs: number;
}

/** Token bucket on the injected clock's monotonic time. */
class TokenBucket {
  private tokens: number;
  private lastNs: bigint;

  constructor(
    private readonly clock: Clock,
    private readonly ratePerSecond: number,
  ) {
    this.tokens = ratePerSecond;
    this.lastNs = clock.monoNs();
  }

  take(): boolean {
    const now = this.clock.monoNs();
    const elapsedS = Number(now - this.lastNs) / 1e9;
    this.lastNs = now;
    if (elapsedS > 0)
      this.tokens = Math.min(this.ratePerSecond, this.tokens + elapsedS * this.ratePerSecond);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export class StampReflector {
  private readonly sessions = new Map<string, Session>();
  private readonly bucket: TokenBucket;
  private readonly maxSessions: number;
  private readonly idleMs: number;
  private readonly errorEstimate: number;
  private closed = false;
  private readonly counters = {
    received: 0,
    reflected: 0,
    malformed: 0,
    authFailed: 0,
    loop: 0,
    rateLimited: 0,
    evicted: 0,
    expired: 0,
    sendErrors: 0,
  };

  readonly port: number;
  readonly timestamps: TimestampInfo;

  private constructor(
    private readonly socket: TimestampedUdpSocket,
    private readonly opts: StampReflectorOptions,
    readonly address: string,
  ) {
    this.port = socket.port;
    this.timestamps = socket.timestamps;
    this.maxSessions = Math.max(1, opts.maxSessions ?? 4096);
    this.idleMs = opts.sessionIdleMs ?? 300_000;
    this.bucket = new TokenBucket(opts.clock, Math.max(1, opts.maxRepliesPerSecond ?? 10_000));
    this.errorEstimate = encodeErrorEstimate(opts.errorEstimate ?? DEFAULT_ERROR_ESTIMATE);
  }

  static async start(opts: StampReflectorOptions): Promise<StampReflector> {
    let reflector: StampReflector | undefined = undefined;
    const socket = await openTimestampedUdp({
      clock: opts.clock,
      address: opts.address,
      port: opts.port,
      // T3 is written before the send, so the reply's own transmit time would go unused.
      transmitStamps: false,
      timestamps: opts.timestamps,
      onMessage: (msg, info) => reflector?.onMessage(msg, info),
    });
    reflector = new StampReflector(socket, opts, opts.address);
    return reflector;
  }

  private onMessage(msg: Buffer, rinfo: DatagramInfo): void {
    // T2 is the arrival the socket recorded: the reflector's own processing, and any wait for
    // this thread, land in T3 - T2.
    const arrival = rinfo.rxTime;
    const nowMs = this.opts.clock.nowMs();
    const t2 = ntpFromUnixNs(this.socket.unixNs(arrival));
    this.counters.received++;
    this.expireIdle(nowMs);
    const key = `${rinfo.address}:${rinfo.port}`;
    // Look up without creating: only accepted packets create sessions, so junk from spoofed
    // sources cannot push real sessions out of the table.
    const existing = this.sessions.get(key);
    const outcome = reflectPacket({
      packet: msg,
      fromPort: rinfo.port,
      ownPort: this.port,
      reflectorSeq: existing?.nextSeq ?? 0,
      receiveTimestamp: t2,
      // T3 = T2 + the interval on the socket's clock, so the dwell the sender subtracts is exact.
      transmitTimestamp: () => ntpAddNs(t2, this.socket.now() - arrival),
      authKey: this.opts.authKey,
      errorEstimate: this.errorEstimate,
      admit: () => this.bucket.take(),
      senderTtl: rinfo.ttl,
    });
    if (!outcome.ok) {
      this.countDrop(outcome.drop);
      return;
    }
    this.touch(key, existing, nowMs);
    this.counters.reflected++;
    try {
      this.socket.send(outcome.reply, rinfo.port, rinfo.address, () => {
        this.counters.sendErrors++;
      });
    } catch {
      this.counters.sendErrors++;
    }
  }

  private countDrop(drop: DropReason): void {
    switch (drop) {
      case 'malformed':
        this.counters.malformed++;
        break;
      case 'auth_failed':
        this.counters.authFailed++;
        break;
      case 'loop':
        this.counters.loop++;
        break;
      case 'rate_limited':
        this.counters.rateLimited++;
        break;
    }
  }

  /** Advances the session's counter and moves it to the most-recently-used end of the Map. */
  private touch(key: string, existing: Session | undefined, nowMs: number): void {
    const session = existing ?? { nextSeq: 0, lastSeenMs: nowMs };
    session.nextSeq = (session.nextSeq + 1) >>> 0;
    session.lastSeenMs = nowMs;
    this.sessions.delete(key);
    this.sessions.set(key, session);
    while (this.sessions.size > this.maxSessions) {
      const oldest = this.sessions.keys().next();
      if (oldest.done === true) break;
      this.sessions.delete(oldest.value);
      this.counters.evicted++;
    }
  }

  /** The Map is in last-use order, so idle sessions are all at its front. */
  private expireIdle(nowMs: number): void {
    for (const [key, s] of this.sessions) {
      if (nowMs - s.lastSeenMs < this.idleMs) break;
      this.sessions.delete(key);
      this.counters.expired++;
    }
  }

  stats(): ReflectorStats {
    if (!this.closed) this.expireIdle(this.opts.clock.nowMs());
    return { ...this.counters, sessions: this.sessions.size };
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return this.socket.close();
  }
}
