// What this agent measured lately, per (peer, probe kind, size): a sliding time window of
// results from which loss ratios, STAMP forward/reverse loss, duplicates, reordering and RTT
// quantiles are computed, plus the time of the last success. The results API and the metrics
// recorder both read from here, so they can never disagree.

import type { Clock } from '../core/clock.ts';
import { pairKey } from '../core/pair-key.ts';
import type { FailureReason, ProbeKind, ProbeResult, SizeClass } from '../core/types.ts';

export interface RttSummary {
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

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
class Series {
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

export class WindowStore {
  private readonly series = new Map<string, Series>();

  constructor(
    private readonly clock: Clock,
    private readonly windowMs: number,
  ) {}

  record(r: ProbeResult): void {
    const key = pairKey(r.peerId, r.kind, r.size);
    let s = this.series.get(key);
    if (s === undefined) {
      s = new Series(r.peerId, r.kind, r.size);
      this.series.set(key, s);
    }
    s.push(r.sentAtMs, r.ok, r.ok ? r.rttSeconds : 0, r.stamp);
    s.lastResultMs = Math.max(s.lastResultMs, r.sentAtMs);
    if (r.ok) s.lastSuccessMs = Math.max(s.lastSuccessMs ?? 0, r.sentAtMs);
    else s.lastFailure = r.reason;
    s.prune(this.clock.nowMs() - this.windowMs);
  }

  /** Forgets every series of a peer; returns the keys that were removed. */
  removePeer(peerId: string): string[] {
    const gone: string[] = [];
    for (const [key, s] of this.series) {
      if (s.peerId === peerId) {
        this.series.delete(key);
        gone.push(key);
      }
    }
    return gone;
  }

  peers(): string[] {
    return [...new Set([...this.series.values()].map((s) => s.peerId))];
  }

  get(key: string): PairWindow | undefined {
    const s = this.series.get(key);
    return s === undefined ? undefined : this.summarise(key, s);
  }

  all(): PairWindow[] {
    return [...this.series].map(([k, s]) => this.summarise(k, s));
  }

  private summarise(key: string, s: Series): PairWindow {
    s.prune(this.clock.nowMs() - this.windowMs);
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
    };
  }
}

/** Nearest-rank quantiles: every reported value is one that was actually measured. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export function summariseRtt(values: number[]): RttSummary | null {
  if (values.length === 0) return null;
  const sorted = values.slice().sort((a, b) => a - b);
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    min: sorted[0]!,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    max: sorted[sorted.length - 1]!,
    mean: sum / sorted.length,
  };
}
