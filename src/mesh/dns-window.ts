// What this agent's DNS lookups saw lately, per (server, query, transport): a sliding time window
// of lookups from which outcome counts, the answered ratio and latency quantiles are computed,
// plus the last outcome and which search-list candidate answered. The results API and the
// metrics recorder both read from here.

import type { Clock } from '../core/clock.ts';
import type { DnsOutcome } from '../probes/dns.ts';
import { serverResponded, type DnsJobResult } from './dns-plan.ts';
import { summariseRtt, type RttSummary } from './window-store.ts';

interface Sample {
  readonly atMs: number;
  readonly outcome: DnsOutcome;
  readonly answered: boolean;
  readonly seconds: number;
}

export interface DnsWindow {
  readonly key: string;
  /** Lookups completed in the window. */
  readonly sent: number;
  /** Lookups the server did not answer correctly (anything but noerror, nodata, nxdomain). */
  readonly failed: number;
  /** (sent - failed) / sent, or null before the first lookup. */
  readonly answeredRatio: number | null;
  readonly outcomes: Partial<Record<DnsOutcome, number>>;
  /** Time of the lookups the server responded to (any rcode), seconds; null if none. */
  readonly latency: RttSummary | null;
  readonly lastOutcome: DnsOutcome | null;
  readonly lastDetail: string | null;
  /** The candidate of the last lookup that got records (short name: which expansion answered). */
  readonly answeredBy: string | null;
  /** Queries the last lookup sent (above 1 when the search list was walked). */
  readonly lastTried: number;
  readonly lastSuccessMs: number | null;
}

class Series {
  readonly samples: Sample[] = [];
  head = 0;
  lastOutcome: DnsOutcome | null = null;
  lastDetail: string | null = null;
  answeredBy: string | null = null;
  lastTried = 0;
  lastSuccessMs: number | null = null;

  prune(cutoffMs: number): void {
    while (this.head < this.samples.length && this.samples[this.head]!.atMs < cutoffMs) this.head++;
    if (this.head > 64 && this.head * 2 > this.samples.length) {
      this.samples.splice(0, this.head);
      this.head = 0;
    }
  }
}

export class DnsWindowStore {
  private readonly series = new Map<string, Series>();

  constructor(
    private readonly clock: Clock,
    private readonly windowMs: number,
  ) {}

  record(r: DnsJobResult): void {
    let s = this.series.get(r.key);
    if (s === undefined) {
      s = new Series();
      this.series.set(r.key, s);
    }
    s.samples.push({
      atMs: r.sentAtMs,
      outcome: r.outcome,
      answered: r.answered,
      seconds: r.seconds,
    });
    s.lastOutcome = r.outcome;
    s.lastDetail = r.detail ?? null;
    s.lastTried = r.tried;
    if (r.answeredBy !== undefined) s.answeredBy = r.answeredBy;
    if (r.answered) s.lastSuccessMs = Math.max(s.lastSuccessMs ?? 0, r.sentAtMs);
    s.prune(this.clock.nowMs() - this.windowMs);
  }

  /** Forgets the series of jobs not in `keep`. */
  retain(keep: ReadonlySet<string>): void {
    for (const key of this.series.keys()) if (!keep.has(key)) this.series.delete(key);
  }

  get(key: string): DnsWindow | undefined {
    const s = this.series.get(key);
    return s === undefined ? undefined : this.summarise(key, s);
  }

  all(): DnsWindow[] {
    return [...this.series].map(([k, s]) => this.summarise(k, s));
  }

  private summarise(key: string, s: Series): DnsWindow {
    s.prune(this.clock.nowMs() - this.windowMs);
    let sent = 0;
    let failed = 0;
    const outcomes: Partial<Record<DnsOutcome, number>> = {};
    const times: number[] = [];
    for (let i = s.head; i < s.samples.length; i++) {
      const x = s.samples[i]!;
      sent++;
      if (!x.answered) failed++;
      outcomes[x.outcome] = (outcomes[x.outcome] ?? 0) + 1;
      // Only a response's time means something; a timeout's is its deadline.
      if (serverResponded(x.outcome)) times.push(x.seconds);
    }
    return {
      key,
      sent,
      failed,
      answeredRatio: sent === 0 ? null : (sent - failed) / sent,
      outcomes,
      latency: summariseRtt(times),
      lastOutcome: s.lastOutcome,
      lastDetail: s.lastDetail,
      answeredBy: s.answeredBy,
      lastTried: s.lastTried,
      lastSuccessMs: s.lastSuccessMs,
    };
  }
}
