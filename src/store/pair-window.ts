// What this agent measured lately, per (peer, probe kind, size): a sliding time window of
// results from which loss ratios, STAMP forward/reverse loss, duplicates, reordering and RTT
// quantiles are computed, plus the time of the last success. The results API and the metrics
// recorder both read from here, so they can never disagree. The window is the generic one
// (window.ts); only the series is the peer family's own, a typed-array ring (see PairSeries).

import type { Clock } from '../core/clock.ts';
import { pairKey } from '../core/pair-key.ts';
import type { FailureReason, ProbeKind, ProbeResult, SizeClass } from '../core/types.ts';
import { summariseRtt, type RttSummary } from './summary.ts';
import { trailingRun, type TrailingRun } from './trailing-run.ts';
import { SlidingWindow, type Series } from './window.ts';

export type { RttSummary } from './summary.ts';
export type { TrailingRun } from './trailing-run.ts';

export interface PairWindow {
  readonly key: string;
  readonly peerId: string;
  readonly kind: ProbeKind;
  readonly size: SizeClass;
  /** Probes that completed inside the window. */
  readonly sent: number;
  readonly lost: number;
  /** lost / sent, or null before the first result. */
  readonly lossRatio: number | null;
  readonly forwardLost: number;
  readonly reverseLost: number;
  readonly duplicates: number;
  readonly reordered: number;
  /** RTT of the successful probes in the window, seconds; null if none succeeded. */
  readonly rtt: RttSummary | null;
  readonly lastSuccessMs: number | null;
  readonly lastResultMs: number;
  readonly lastFailure: FailureReason | null;
  /** The run of like results at the newest end of the window (trailingRun), or null if empty. */
  readonly run: TrailingRun | null;
}

/** Counter columns kept per sample, besides the send time and the RTT. */
const OK = 0;
const FWD = 1;
const REV = 2;
const DUP = 3;
const REO = 4;
const COUNTERS = 5;
const INITIAL_CAPACITY = 64;

/**
 * One (peer, kind, size) window as a ring of samples in typed arrays: a thousand windows of a
 * minute each are ~60,000 samples, and as objects they were the largest thing the main thread's
 * garbage collector had to trace. Here they are three off-heap arrays per window.
 */
class PairSeries implements Series {
  private atMs = new Float64Array(INITIAL_CAPACITY);
  private rtt = new Float64Array(INITIAL_CAPACITY);
  private counters = new Uint32Array(INITIAL_CAPACITY * COUNTERS);
  /** Index of the oldest sample in the ring, and how many there are. */
  private head = 0;
  private count = 0;
  lastSuccessMs: number | null = null;
  lastResultMs = 0;
  lastFailure: FailureReason | null = null;
  constructor(
    readonly peerId: string,
    readonly kind: ProbeKind,
    readonly size: SizeClass,
  ) {}

  push(atMs: number, ok: boolean, rtt: number, st: ProbeResult['stamp']): void {
    if (this.count === this.atMs.length) this.grow();
    const i = (this.head + this.count) % this.atMs.length;
    this.atMs[i] = atMs;
    this.rtt[i] = rtt;
    const c = i * COUNTERS;
    this.counters[c + OK] = ok ? 1 : 0;
    this.counters[c + FWD] = st?.forwardLost ?? 0;
    this.counters[c + REV] = st?.reverseLost ?? 0;
    this.counters[c + DUP] = st?.duplicates ?? 0;
    this.counters[c + REO] = st?.reordered ?? 0;
    this.count++;
  }

  /** Drops samples from the oldest end while they are older than the cutoff. */
  prune(cutoffMs: number): void {
    const cap = this.atMs.length;
    while (this.count > 0 && this.atMs[this.head]! < cutoffMs) {
      this.head = (this.head + 1) % cap;
      this.count--;
    }
  }

  /** Calls `f` with the ring index of every sample, oldest first. */
  forEach(f: (i: number) => void): void {
    const cap = this.atMs.length;
    for (let k = 0; k < this.count; k++) f((this.head + k) % cap);
  }

  /** How many samples the ring holds. */
  get samples(): number {
    return this.count;
  }
  /** Whether the k-th sample from the newest end (0: the newest) succeeded; k < samples. */
  okFromNewest(k: number): boolean {
    return this.isOk((this.head + this.count - 1 - k) % this.atMs.length);
  }

  isOk(i: number): boolean {
    return this.counters[i * COUNTERS + OK] === 1;
  }
  rttAt(i: number): number {
    return this.rtt[i]!;
  }
  counter(i: number, which: typeof FWD | typeof REV | typeof DUP | typeof REO): number {
    return this.counters[i * COUNTERS + which]!;
  }

  private grow(): void {
    const cap = this.atMs.length;
    const atMs = new Float64Array(cap * 2);
    const rtt = new Float64Array(cap * 2);
    const counters = new Uint32Array(cap * 2 * COUNTERS);
    for (let k = 0; k < this.count; k++) {
      const from = (this.head + k) % cap;
      atMs[k] = this.atMs[from]!;
      rtt[k] = this.rtt[from]!;
      counters.set(this.counters.subarray(from * COUNTERS, (from + 1) * COUNTERS), k * COUNTERS);
    }
    this.atMs = atMs;
    this.rtt = rtt;
    this.counters = counters;
    this.head = 0;
  }
}

export class PairWindowStore {
  private readonly window: SlidingWindow<PairSeries>;

  constructor(clock: Clock, windowMs: number) {
    this.window = new SlidingWindow(clock, windowMs);
  }

  /** On the hot path (every probe result): no allocation but the key and a new pair's series. */
  record(r: ProbeResult): void {
    const key = pairKey(r.peerId, r.kind, r.size);
    const s =
      this.window.peek(key) ?? this.window.add(key, new PairSeries(r.peerId, r.kind, r.size));
    s.push(r.sentAtMs, r.ok, r.ok ? r.rttSeconds : 0, r.stamp);
    s.lastResultMs = Math.max(s.lastResultMs, r.sentAtMs);
    if (r.ok) s.lastSuccessMs = Math.max(s.lastSuccessMs ?? 0, r.sentAtMs);
    else s.lastFailure = r.reason;
    this.window.prune(s);
  }

  /** Forgets every series of a peer; returns the keys that were removed. */
  removePeer(peerId: string): string[] {
    return this.window.forget((s) => s.peerId === peerId);
  }

  /** Forgets every series of the departed peers (ids, from the agent's diffPeers). */
  forget(departed: readonly string[]): void {
    if (departed.length === 0) return;
    const gone = new Set(departed);
    this.window.forget((s) => gone.has(s.peerId));
  }

  peers(): string[] {
    return [...new Set([...this.window.values()].map((s) => s.peerId))];
  }

  get(key: string): PairWindow | undefined {
    const s = this.window.get(key);
    return s === undefined ? undefined : summarise(key, s);
  }

  all(): PairWindow[] {
    return this.window.entries().map(([k, s]) => summarise(k, s));
  }
}

function summarise(key: string, s: PairSeries): PairWindow {
  let sent = 0;
  let lost = 0;
  let fwd = 0;
  let rev = 0;
  let dup = 0;
  let reo = 0;
  const rtts: number[] = [];
  s.forEach((i) => {
    sent++;
    if (s.isOk(i)) rtts.push(s.rttAt(i));
    else lost++;
    fwd += s.counter(i, FWD);
    rev += s.counter(i, REV);
    dup += s.counter(i, DUP);
    reo += s.counter(i, REO);
  });
  return {
    key,
    peerId: s.peerId,
    kind: s.kind,
    size: s.size,
    sent,
    lost,
    lossRatio: sent === 0 ? null : lost / sent,
    forwardLost: fwd,
    reverseLost: rev,
    duplicates: dup,
    reordered: reo,
    rtt: summariseRtt(rtts),
    lastSuccessMs: s.lastSuccessMs,
    lastResultMs: s.lastResultMs,
    lastFailure: s.lastFailure,
    run: trailingRun(s.samples, (k) => s.okFromNewest(k)),
  };
}
