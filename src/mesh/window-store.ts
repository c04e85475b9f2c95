// What this agent measured lately, per (peer, probe kind, size): a sliding time window of
// results from which loss ratios, STAMP forward/reverse loss, duplicates, reordering and RTT
// quantiles are computed, plus the time of the last success. The results API and the metrics
// recorder both read from here, so they can never disagree.

import type { Clock } from '../core/clock.ts';
import type { FailureReason, ProbeKind, ProbeResult, SizeClass } from '../core/types.ts';

interface Sample {
  readonly atMs: number;
  readonly ok: boolean;
  readonly rtt: number;
  readonly forwardLost: number;
  readonly reverseLost: number;
  readonly duplicates: number;
  readonly reordered: number;
}

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

class Series {
  readonly samples: Sample[] = [];
  head = 0;
  lastSuccessMs: number | null = null;
  lastResultMs = 0;
  lastFailure: FailureReason | null = null;
  constructor(
    readonly peerId: string,
    readonly kind: ProbeKind,
    readonly size: SizeClass,
  ) {}

  prune(cutoffMs: number): void {
    while (this.head < this.samples.length && this.samples[this.head]!.atMs < cutoffMs) this.head++;
    // Compact occasionally instead of shifting on every prune: O(1) amortised.
    if (this.head > 64 && this.head * 2 > this.samples.length) {
      this.samples.splice(0, this.head);
      this.head = 0;
    }
  }
}

export function windowKey(peerId: string, kind: ProbeKind, size: SizeClass): string {
  return `${peerId}|${kind}|${size}`;
}

export class WindowStore {
  private readonly series = new Map<string, Series>();

  constructor(
    private readonly clock: Clock,
    private readonly windowMs: number,
  ) {}

  record(r: ProbeResult): void {
    const key = windowKey(r.peerId, r.kind, r.size);
    let s = this.series.get(key);
    if (s === undefined) {
      s = new Series(r.peerId, r.kind, r.size);
      this.series.set(key, s);
    }
    const st = r.stamp;
    s.samples.push({
      atMs: r.sentAtMs,
      ok: r.ok,
      rtt: r.ok ? r.rttSeconds : 0,
      forwardLost: st?.forwardLost ?? 0,
      reverseLost: st?.reverseLost ?? 0,
      duplicates: st?.duplicates ?? 0,
      reordered: st?.reordered ?? 0,
    });
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
    for (let i = s.head; i < s.samples.length; i++) {
      const x = s.samples[i]!;
      sent++;
      if (x.ok) rtts.push(x.rtt);
      else lost++;
      fwd += x.forwardLost;
      rev += x.reverseLost;
      dup += x.duplicates;
      reo += x.reordered;
    }
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
