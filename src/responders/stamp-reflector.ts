// The STAMP session-reflector (RFC 8762 section 4.3) every agent runs so peers can probe it.
// Stateful mode: each session (sender address + port) gets its own reflector sequence counter,
// which is what lets a sender split loss into forward and reverse. Hardened for an open port
// (docs/stamp.md has the threat model): it never answers with more bytes than it received (no
// amplification); never answers a reflected packet, one from a reflector port or carrying a
// reflector's fields, so one spoofed packet gets at most one reply and never starts a loop
// between two reflectors; limits replies per source address and in total, charged only for
// packets it will answer, and in authenticated mode caps HMAC work separately, so junk never
// spends a peer's budget; in authenticated mode drops stale and replayed test packets (a
// timestamp window, a per-session window of the sender's sequence numbers, and a cache of the
// packets answered within the timestamp window, for replays from another address); bounds
// every table it keeps; and counts every dropped datagram under exactly one reason instead of
// throwing.
//
// Public API:
//   StampReflector.start(opts) -> Promise<StampReflector>   bind and start answering
//   reflector.port / reflector.address                      where it is bound (port 0 resolved)
//   reflector.timestamps -> { source: 'kernel' | 'userspace', detail }
//   reflector.stats() -> ReflectorStats                     counters since start
//   reflector.close() -> Promise<void>
//   reflectPacket(input) -> ReflectOutcome                  the per-packet decision, pure
//   DEFAULT_REFLECTOR_PORTS                                  ports whose packets are never answered
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
  STAMP_WELL_KNOWN_PORT,
  baseLength,
  decodeSenderPacket,
  encodeErrorEstimate,
  encodeReflectorPacket,
  hasReflectorFields,
  ntpAddNs,
  ntpDiffNs,
  ntpFromUnixNs,
  unixMsFromNtp,
  type ErrorEstimate,
  type NtpTimestamp,
  type SenderPacket,
} from '../probes/stamp-codec.ts';
import type { TimestampInfo } from '../native/timestamping.ts';
import {
  openTimestampedUdp,
  type DatagramInfo,
  type TimestampMode,
  type TimestampedUdpSocket,
} from '../probes/timestamped-udp.ts';
import { faultDrops, type ReflectorFault } from './demo-faults.ts';

/**
 * Session-Sender TTL we report when we can't read it. RFC 8762 wants the TTL the test packet
 * arrived with; the addon's socket reads it (IP_RECVTTL) but Node's dgram, the fallback, cannot.
 * Writing 255 would claim the packet crossed no router, which we cannot know, so we write 0: a
 * value no real packet can arrive with, which a reader can recognise as "not measured".
 */
export const UNKNOWN_TTL = 0;

/**
 * Source ports that are other reflectors, never senders: the IANA STAMP port and the ports the
 * shipped manifests give the pod agents (9862) and the host agents (9872). The reflector's own
 * port is always added. Senders use ephemeral ports (32768-60999 on Linux by default). The
 * setting stamp.reflectorPorts (src/config/settings.ts) has the same default.
 */
export const DEFAULT_REFLECTOR_PORTS: readonly number[] = [STAMP_WELL_KNOWN_PORT, 9862, 9872];

/** Default replies per second to one source address: 1/10 of the default total. */
export const DEFAULT_REPLIES_PER_SOURCE = 1000;

/**
 * Default authenticated-mode timestamp window, ms either side of the reflector's clock. Nodes
 * kept by NTP agree to milliseconds; an unsynchronised node drifts by seconds a day. A test
 * packet older than the sender's timeout is of no use to the sender anyway, so the window only
 * has to cover skew; 30 s tolerates a node whose time sync has been broken for days, while a
 * replay must come within 30 s of the capture (and then meets the replay cache).
 */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 30_000;

/**
 * Most answered packets remembered for replays from another address. Past it the oldest are
 * forgotten and every packet no newer than them is refused: the window shrinks under load, it
 * never opens. At the default 30 s window that is over 1,000 answered packets per second.
 */
const REPLAY_CACHE_MAX = 65_536;

/** Sender sequence numbers remembered per session (RFC 4303's anti-replay window, 64 wide). */
const SEQ_WINDOW = 64;
const SEQ_WINDOW_MASK = (1n << BigInt(SEQ_WINDOW)) - 1n;

export type DropReason =
  'malformed' | 'auth_failed' | 'loop' | 'rate_limited' | 'verify_limited' | 'stale' | 'replayed';

export interface ReflectInput {
  /** The datagram exactly as received. */
  readonly packet: Buffer;
  readonly fromPort: number;
  /** The reflector's own bound port: a packet from it is another reflector's reply. */
  readonly ownPort: number;
  /** Other ports that only reflectors send from. Omitted: only ownPort. */
  readonly reflectorPorts?: ReadonlySet<number>;
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
   * Authenticated mode: a test packet whose timestamp (T1) is further than this from T2 is
   * stale. Omitted: no timestamp check.
   */
  readonly maxClockSkewNs?: bigint;
  /**
   * Authenticated mode: HMAC work budget, asked after the free checks (loop, length), before
   * the HMAC. Omitted means always admit.
   */
  readonly admitVerify?: () => boolean;
  /** Authenticated mode: whether this verified, fresh packet was answered before. */
  readonly replayed?: (p: SenderPacket) => boolean;
  /**
   * Reply budget, asked last, only for a packet that would be answered (verified and fresh in
   * authenticated mode), so junk never spends it. Omitted means always admit.
   */
  readonly admit?: () => boolean;
}

export type ReflectOutcome =
  | {
      readonly ok: true;
      readonly reply: Buffer;
      readonly senderSeq: number;
      readonly senderTimestamp: NtpTimestamp;
    }
  | { readonly ok: false; readonly drop: DropReason };

/**
 * Decides what to do with one datagram. The reply is a newly allocated Buffer exactly as long
 * as the input (padding zero), so nothing is ever amplified and no Buffer is shared between
 * dgram sends in flight. Checks run cheapest first: ports, length and reflector fields cost
 * nothing; the HMAC only within its budget; the reply budget only for a packet to answer.
 */
export function reflectPacket(input: ReflectInput): ReflectOutcome {
  try {
    const key = input.authKey;
    if (input.fromPort === input.ownPort || input.reflectorPorts?.has(input.fromPort) === true)
      return { ok: false, drop: 'loop' };
    if (input.packet.length < baseLength(key)) return { ok: false, drop: 'malformed' };
    // A reply (another reflector's, or our own sent back) is never a test packet.
    if (hasReflectorFields(input.packet, key)) return { ok: false, drop: 'loop' };
    if (key !== undefined && input.admitVerify !== undefined && !input.admitVerify())
      return { ok: false, drop: 'verify_limited' };
    const decoded = decodeSenderPacket(input.packet, key);
    if (!decoded.ok)
      return { ok: false, drop: decoded.reason === 'auth' ? 'auth_failed' : 'malformed' };
    const p = decoded.packet;
    if (key !== undefined) {
      // Unauthenticated timestamps prove nothing (anyone can write any), so only here.
      const skew = input.maxClockSkewNs;
      if (skew !== undefined) {
        const d = ntpDiffNs(input.receiveTimestamp, p.timestamp);
        if (d > skew || -d > skew) return { ok: false, drop: 'stale' };
      }
      if (input.replayed?.(p) === true) return { ok: false, drop: 'replayed' };
    }
    if (input.admit !== undefined && !input.admit()) return { ok: false, drop: 'rate_limited' };
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
      { length: input.packet.length, authKey: key },
    );
    return { ok: true, reply, senderSeq: p.seq, senderTimestamp: p.timestamp };
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
  /**
   * Most sessions kept; the least recently used is evicted beyond it. Default 4096. The
   * per-source budget tables are bounded by it too.
   */
  readonly maxSessions?: number;
  /** A session unheard from this long is forgotten (its counter restarts at 0). Default 300000. */
  readonly sessionIdleMs?: number;
  /** Total reply budget (token bucket, burst of one second's worth). Default 10000. */
  readonly maxRepliesPerSecond?: number;
  /**
   * Reply budget of one source address, charged before the total (and, in authenticated mode,
   * the HMAC budget of one source). Default 1000.
   */
  readonly maxRepliesPerSecondPerSource?: number;
  /** Source ports never answered (besides the reflector's own). Default DEFAULT_REFLECTOR_PORTS. */
  readonly reflectorPorts?: readonly number[];
  /** Authenticated mode: the timestamp window, ms either side. Default 30000. */
  readonly maxClockSkewMs?: number;
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

/** Authenticated mode: which of the sender's sequence numbers a session has seen. */
interface SeqWindow {
  /** Highest sequence number answered. */
  top: number;
  /** Bit i set: top - i was answered. */
  bits: bigint;
  /** Newest sender timestamp answered. */
  lastT1: NtpTimestamp;
}

interface Session {
  nextSeq: number;
  lastSeenMs: number;
  window: SeqWindow | undefined;
}

/** Signed distance a - b between two u32 sequence numbers, correct across wraparound. */
function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/**
 * Whether a verified test packet repeats one the session answered: its sequence number was
 * answered, or is too far behind to tell. One exception: a packet newer (by its timestamp)
 * than anything the session answered is a sender that restarted with the same port, not a
 * replay, which always carries a timestamp already answered.
 */
function seqWindowReplays(w: SeqWindow | undefined, seq: number, t1: NtpTimestamp): boolean {
  if (w === undefined) return false;
  const d = seqDiff(seq, w.top);
  if (d > 0) return false;
  if (-d < SEQ_WINDOW && ((w.bits >> BigInt(-d)) & 1n) === 0n) return false;
  return ntpDiffNs(t1, w.lastT1) <= 0n;
}

/** The window once (seq, t1) is answered; seqWindowReplays said it was no replay. */
function seqWindowAccept(w: SeqWindow | undefined, seq: number, t1: NtpTimestamp): SeqWindow {
  if (w === undefined) return { top: seq, bits: 1n, lastT1: t1 };
  const d = seqDiff(seq, w.top);
  const newer = ntpDiffNs(t1, w.lastT1) > 0n;
  const seen = d <= 0 && (-d >= SEQ_WINDOW || ((w.bits >> BigInt(-d)) & 1n) === 1n);
  // A restarted sender: start the window over at its sequence number.
  if (seen) return { top: seq, bits: 1n, lastT1: t1 };
  if (d > 0)
    return {
      top: seq,
      bits: d >= SEQ_WINDOW ? 1n : ((w.bits << BigInt(d)) | 1n) & SEQ_WINDOW_MASK,
      lastT1: newer ? t1 : w.lastT1,
    };
  return { top: w.top, bits: w.bits | (1n << BigInt(-d)), lastT1: newer ? t1 : w.lastT1 };
}

/** Token bucket on monotonic nanoseconds passed in (burst of one second's worth). */
class TokenBucket {
  private tokens: number;
  private lastNs: bigint;

  constructor(
    private readonly ratePerSecond: number,
    nowNs: bigint,
  ) {
    this.tokens = ratePerSecond;
    this.lastNs = nowNs;
  }

  take(nowNs: bigint): boolean {
    const elapsedS = Number(nowNs - this.lastNs) / 1e9;
    this.lastNs = nowNs;
    if (elapsedS > 0)
      this.tokens = Math.min(this.ratePerSecond, this.tokens + elapsedS * this.ratePerSecond);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * A bounded hash table (a Map in last-use order) that evicts its least recently used entry.
 * Eviction only ever hands a source a fresh, full budget, never takes one away: a flood from
 * many addresses can't use it to starve a peer, only the totals bound what those addresses get.
 */
class LruTable<V> {
  private readonly map = new Map<string, V>();

  constructor(private readonly max: number) {}

  peek(key: string): V | undefined {
    return this.map.get(key);
  }

  /** The entry, created if missing, moved to the most recently used end. */
  use(key: string, create: () => V): V {
    const v = this.map.get(key) ?? create();
    this.map.delete(key);
    this.map.set(key, v);
    while (this.map.size > this.max) {
      const oldest = this.map.keys().next();
      if (oldest.done === true) break;
      this.map.delete(oldest.value);
    }
    return v;
  }
}

/** One source address's budgets: replies, and (authenticated mode) HMAC checks. */
interface SourceBudget {
  readonly reply: TokenBucket;
  readonly verify: TokenBucket;
}

export class StampReflector {
  private readonly sessions = new Map<string, Session>();
  /** A demo fault (demo-faults.ts); null everywhere but in `podmesh demo`. */
  private fault: ReflectorFault | null = null;
  /** Total replies. */
  private readonly bucket: TokenBucket;
  /**
   * Sources that have been answered (authenticated mode: that passed the HMAC), by address.
   * Only an answerable packet creates an entry, so junk can't push a peer out of this table.
   */
  private readonly sources: LruTable<SourceBudget>;
  /** Authenticated mode: HMAC checks for addresses not in `sources`, per address and in total. */
  private readonly strangers: LruTable<TokenBucket>;
  private readonly strangerVerify: TokenBucket;
  private readonly perSource: number;
  private readonly reflectorPorts: ReadonlySet<number>;
  private readonly maxSkewNs: bigint;
  private readonly maxSkewMs: number;
  /** Authenticated mode: HMACs of answered packets -> when they leave the window (unix ms). */
  private readonly answered = new Map<string, number>();
  /** Packets with a timestamp at or before this (unix ms) can no longer be told from replays. */
  private replayFloorMs = -Infinity;
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
    verifyLimited: 0,
    stale: 0,
    replayed: 0,
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
    const now = opts.clock.monoNs();
    const total = Math.max(1, opts.maxRepliesPerSecond ?? 10_000);
    this.bucket = new TokenBucket(total, now);
    this.perSource = Math.max(1, opts.maxRepliesPerSecondPerSource ?? DEFAULT_REPLIES_PER_SOURCE);
    this.sources = new LruTable(this.maxSessions);
    this.strangers = new LruTable(this.maxSessions);
    // HMAC work for unknown senders: as many checks a second as the reflector sends replies.
    this.strangerVerify = new TokenBucket(total, now);
    this.reflectorPorts = new Set([...(opts.reflectorPorts ?? DEFAULT_REFLECTOR_PORTS), this.port]);
    this.maxSkewMs = Math.max(0, opts.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS);
    this.maxSkewNs = BigInt(Math.round(this.maxSkewMs * 1e6));
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

  /** The demo's fault injection (demo-faults.ts): null heals. */
  setFault(fault: ReflectorFault | null): void {
    this.fault = fault;
  }

  private onMessage(msg: Buffer, rinfo: DatagramInfo): void {
    // T2 is the arrival the socket recorded: the reflector's own processing, and any wait for
    // this thread, land in T3 - T2.
    const arrival = rinfo.rxTime;
    const nowMs = this.opts.clock.nowMs();
    const nowNs = this.opts.clock.monoNs();
    const arrivalUnixNs = this.socket.unixNs(arrival);
    const t2 = ntpFromUnixNs(arrivalUnixNs);
    // The demo's fault (demo-faults.ts) acts as a loss on the wire: before any counter or
    // session state, so the drop reasons still account for every packet the reflector saw, and
    // the sender counts it as forward-direction loss.
    if (this.fault !== null && faultDrops(this.fault, msg.length, Math.random())) return;
    this.counters.received++;
    this.expireIdle(nowMs);
    const key = `${rinfo.address}:${rinfo.port}`;
    // Look up without creating: only accepted packets create sessions, so junk from spoofed
    // sources cannot push real sessions out of the table.
    const existing = this.sessions.get(key);
    const authKey = this.opts.authKey;
    const arrivalMs = Number(arrivalUnixNs / 1000n) / 1000;
    if (authKey !== undefined) this.expireAnswered(arrivalMs);
    let tag: string | undefined;
    const outcome = reflectPacket({
      packet: msg,
      fromPort: rinfo.port,
      ownPort: this.port,
      reflectorPorts: this.reflectorPorts,
      reflectorSeq: existing?.nextSeq ?? 0,
      receiveTimestamp: t2,
      // T3 = T2 + the interval on the socket's clock, so the dwell the sender subtracts is exact.
      transmitTimestamp: () => ntpAddNs(t2, this.socket.now() - arrival),
      authKey,
      errorEstimate: this.errorEstimate,
      maxClockSkewNs: this.maxSkewNs,
      admitVerify: () => this.admitVerify(rinfo.address, nowNs),
      replayed: (p) => {
        tag = msg.toString('base64', 96, 112);
        return this.isReplay(existing, p, tag);
      },
      admit: () => {
        const source = this.sources.use(rinfo.address, () => ({
          reply: new TokenBucket(this.perSource, nowNs),
          verify: new TokenBucket(this.perSource, nowNs),
        }));
        return source.reply.take(nowNs) && this.bucket.take(nowNs);
      },
      senderTtl: rinfo.ttl,
    });
    if (!outcome.ok) {
      this.countDrop(outcome.drop);
      return;
    }
    const session = this.touch(key, existing, nowMs);
    if (authKey !== undefined) {
      session.window = seqWindowAccept(session.window, outcome.senderSeq, outcome.senderTimestamp);
      if (tag !== undefined) this.remember(tag, outcome.senderTimestamp);
    }
    this.counters.reflected++;
    try {
      this.socket.send(outcome.reply, rinfo.port, rinfo.address, () => {
        this.counters.sendErrors++;
      });
    } catch {
      this.counters.sendErrors++;
    }
  }

  /**
   * HMAC work: a source that has been answered before spends its own budget; any other spends
   * its own and the strangers' shared one, so a flood of forged packets from new addresses
   * can't spend the checks of the peers already known.
   */
  private admitVerify(address: string, nowNs: bigint): boolean {
    const known = this.sources.peek(address);
    if (known !== undefined) return known.verify.take(nowNs);
    const own = this.strangers.use(address, () => new TokenBucket(this.perSource, nowNs));
    return own.take(nowNs) && this.strangerVerify.take(nowNs);
  }

  private isReplay(session: Session | undefined, p: SenderPacket, tag: string): boolean {
    if (unixMsFromNtp(p.timestamp) <= this.replayFloorMs) return true;
    if (this.answered.has(tag)) return true;
    return seqWindowReplays(session?.window, p.seq, p.timestamp);
  }

  /** Remembers an answered packet until its timestamp leaves the window. */
  private remember(tag: string, t1: NtpTimestamp): void {
    this.answered.set(tag, unixMsFromNtp(t1) + this.maxSkewMs);
    while (this.answered.size > REPLAY_CACHE_MAX) {
      const oldest = this.answered.entries().next();
      if (oldest.done === true) break;
      this.answered.delete(oldest.value[0]);
      this.replayFloorMs = Math.max(this.replayFloorMs, oldest.value[1] - this.maxSkewMs);
    }
  }

  /** Entries are in answer order, close to timestamp order: drop the expired ones in front. */
  private expireAnswered(nowMs: number): void {
    for (const [tag, until] of this.answered) {
      if (until >= nowMs) break;
      this.answered.delete(tag);
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
      case 'verify_limited':
        this.counters.verifyLimited++;
        break;
      case 'stale':
        this.counters.stale++;
        break;
      case 'replayed':
        this.counters.replayed++;
        break;
    }
  }

  /** Advances the session's counter and moves it to the most-recently-used end of the Map. */
  private touch(key: string, existing: Session | undefined, nowMs: number): Session {
    const session = existing ?? { nextSeq: 0, lastSeenMs: nowMs, window: undefined };
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
    return session;
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
