// What this agent's DNS lookups saw lately, per (server, query, transport): a sliding time window
// of lookups from which outcome counts, the answered ratio and latency quantiles are computed,
// plus the last outcome and which search-list candidate answered. The results API and the
// metrics recorder both read from here.

import type { Clock } from '../core/clock.ts';
import { serverResponded, type DnsOutcome } from '../core/outcomes.ts';
import type { DnsJobResult } from '../probes/dns-job.ts';
import { summariseRtt, type RttSummary } from './summary.ts';
import { trailingRun, type TrailingRun } from './trailing-run.ts';
import { SampleSeries, SlidingWindow } from './window.ts';

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
  /** The trailing run of answered (or unanswered) lookups, or null before the first. */
  readonly run: TrailingRun | null;
}

class DnsSeries extends SampleSeries<Sample> {
  lastOutcome: DnsOutcome | null = null;
  lastDetail: string | null = null;
  answeredBy: string | null = null;
  lastTried = 0;
  lastSuccessMs: number | null = null;
}

export class DnsWindowStore {
  private readonly window: SlidingWindow<DnsSeries>;

  constructor(clock: Clock, windowMs: number) {
    this.window = new SlidingWindow(clock, windowMs);
  }

  record(r: DnsJobResult): void {
    const s = this.window.peek(r.key) ?? this.window.add(r.key, new DnsSeries());
    s.push({ atMs: r.sentAtMs, outcome: r.outcome, answered: r.answered, seconds: r.seconds });
    s.lastOutcome = r.outcome;
    s.lastDetail = r.detail ?? null;
    s.lastTried = r.tried;
    if (r.answeredBy !== undefined) s.answeredBy = r.answeredBy;
    if (r.answered) s.lastSuccessMs = Math.max(s.lastSuccessMs ?? 0, r.sentAtMs);
    this.window.prune(s);
  }

  /** Forgets the series of jobs not in `keep`. */
  retain(keep: ReadonlySet<string>): void {
    this.window.retain(keep);
  }

  get(key: string): DnsWindow | undefined {
    const s = this.window.get(key);
    return s === undefined ? undefined : summarise(key, s);
  }

  all(): DnsWindow[] {
    return this.window.entries().map(([k, s]) => summarise(k, s));
  }
}

function summarise(key: string, s: DnsSeries): DnsWindow {
  let sent = 0;
  let failed = 0;
  const outcomes: Partial<Record<DnsOutcome, number>> = {};
  const times: number[] = [];
  s.forEach((x) => {
    sent++;
    if (!x.answered) failed++;
    outcomes[x.outcome] = (outcomes[x.outcome] ?? 0) + 1;
    // Only a response's time means something; a timeout's is its deadline.
    if (serverResponded(x.outcome)) times.push(x.seconds);
  });
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
    run: trailingRun(s.length, (k) => s.fromNewest(k).answered),
  };
}
