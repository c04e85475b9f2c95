// What this agent's connects to each port target saw lately: a sliding time window of
// outcomes, from which the open ratio, outcome counts and connect-time quantiles come. The
// results API and the metrics recorder both read from here.

import type { Clock } from '../core/clock.ts';
import type { TcpOutcome } from '../probes/tcp.ts';
import type { PortJobResult } from './port-plan.ts';
import { summariseRtt, type RttSummary } from './window-store.ts';

interface Sample {
  readonly atMs: number;
  readonly outcome: TcpOutcome;
  readonly seconds: number;
}

export interface PortWindow {
  readonly key: string;
  /** Connects completed in the window. */
  readonly sent: number;
  /** Of those, accepted. */
  readonly open: number;
  /** open / sent, or null before the first connect. */
  readonly openRatio: number | null;
  readonly outcomes: Partial<Record<TcpOutcome, number>>;
  /** Connect time of the accepted connects, seconds; null if none. */
  readonly connect: RttSummary | null;
  readonly lastOutcome: TcpOutcome | null;
  readonly lastDetail: string | null;
}

class Series {
  readonly samples: Sample[] = [];
  head = 0;
  lastOutcome: TcpOutcome | null = null;
  lastDetail: string | null = null;

  prune(cutoffMs: number): void {
    while (this.head < this.samples.length && this.samples[this.head]!.atMs < cutoffMs) this.head++;
    if (this.head > 64 && this.head * 2 > this.samples.length) {
      this.samples.splice(0, this.head);
      this.head = 0;
    }
  }
}

export class PortWindowStore {
  private readonly series = new Map<string, Series>();

  constructor(
    private readonly clock: Clock,
    private readonly windowMs: number,
  ) {}

  record(r: PortJobResult): void {
    let s = this.series.get(r.key);
    if (s === undefined) {
      s = new Series();
      this.series.set(r.key, s);
    }
    s.samples.push({ atMs: r.sentAtMs, outcome: r.outcome, seconds: r.seconds });
    s.lastOutcome = r.outcome;
    s.lastDetail = r.detail ?? null;
    s.prune(this.clock.nowMs() - this.windowMs);
  }

  /** Forgets the series of targets not in `keep`. */
  retain(keep: ReadonlySet<string>): void {
    for (const key of this.series.keys()) if (!keep.has(key)) this.series.delete(key);
  }

  get(key: string): PortWindow | undefined {
    const s = this.series.get(key);
    if (s === undefined) return undefined;
    s.prune(this.clock.nowMs() - this.windowMs);
    let open = 0;
    const outcomes: Partial<Record<TcpOutcome, number>> = {};
    const times: number[] = [];
    for (let i = s.head; i < s.samples.length; i++) {
      const x = s.samples[i]!;
      outcomes[x.outcome] = (outcomes[x.outcome] ?? 0) + 1;
      if (x.outcome === 'open') {
        open++;
        times.push(x.seconds);
      }
    }
    const sent = s.samples.length - s.head;
    return {
      key,
      sent,
      open,
      openRatio: sent === 0 ? null : open / sent,
      outcomes,
      connect: summariseRtt(times),
      lastOutcome: s.lastOutcome,
      lastDetail: s.lastDetail,
    };
  }
}
