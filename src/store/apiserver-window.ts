// What this agent's checks of each way to the API server (the Service VIP, each endpoint) saw
// lately: a sliding time window of outcomes, from which the reached ratio, outcome counts and
// connect- and handshake-time quantiles come. The results row and the metrics both read here.

import type { Clock } from '../core/clock.ts';
import type { ApiServerOutcome } from '../core/outcomes.ts';
import type { ApiServerJobResult } from '../probes/apiserver-job.ts';
import { summariseRtt, type RttSummary } from './summary.ts';
import { trailingRun, type TrailingRun } from './trailing-run.ts';
import { SampleSeries, SlidingWindow } from './window.ts';

interface Sample {
  readonly atMs: number;
  readonly outcome: ApiServerOutcome;
  readonly connectSeconds: number | null;
  readonly tlsSeconds: number | null;
}

export interface ApiServerWindow {
  readonly key: string;
  /** Checks completed in the window. */
  readonly sent: number;
  /** Of those, not ok (the API server was not reached through TCP and TLS). */
  readonly failed: number;
  /** (sent - failed) / sent, or null before the first check. */
  readonly okRatio: number | null;
  readonly outcomes: Partial<Record<ApiServerOutcome, number>>;
  /** TCP connect times of the completed connects, seconds; null if none. */
  readonly connect: RttSummary | null;
  /** TLS handshake times of the completed handshakes, seconds; null if none. */
  readonly tls: RttSummary | null;
  readonly lastOutcome: ApiServerOutcome | null;
  readonly lastDetail: string | null;
  /** The last /readyz status seen (kept across checks that did not get one), or null. */
  readonly readyz: number | null;
  /** The trailing run of ok or failed checks, or null before the first. */
  readonly run: TrailingRun | null;
}

class ApiServerSeries extends SampleSeries<Sample> {
  lastOutcome: ApiServerOutcome | null = null;
  lastDetail: string | null = null;
  readyz: number | null = null;
}

export class ApiServerWindowStore {
  private readonly window: SlidingWindow<ApiServerSeries>;

  constructor(clock: Clock, windowMs: number) {
    this.window = new SlidingWindow(clock, windowMs);
  }

  record(r: ApiServerJobResult): void {
    const s = this.window.peek(r.key) ?? this.window.add(r.key, new ApiServerSeries());
    s.push({
      atMs: r.sentAtMs,
      outcome: r.outcome,
      connectSeconds: r.connectSeconds,
      tlsSeconds: r.tlsSeconds,
    });
    s.lastOutcome = r.outcome;
    s.lastDetail = r.detail ?? null;
    if (r.readyz !== null) s.readyz = r.readyz;
    this.window.prune(s);
  }

  /** Forgets the series of targets not in `keep` (an endpoint that left). */
  retain(keep: ReadonlySet<string>): void {
    this.window.retain(keep);
  }

  get(key: string): ApiServerWindow | undefined {
    const s = this.window.get(key);
    if (s === undefined) return undefined;
    let failed = 0;
    const outcomes: Partial<Record<ApiServerOutcome, number>> = {};
    const connect: number[] = [];
    const handshake: number[] = [];
    s.forEach((x) => {
      outcomes[x.outcome] = (outcomes[x.outcome] ?? 0) + 1;
      if (x.outcome !== 'ok') failed++;
      if (x.connectSeconds !== null) connect.push(x.connectSeconds);
      if (x.tlsSeconds !== null) handshake.push(x.tlsSeconds);
    });
    const sent = s.length;
    return {
      key,
      sent,
      failed,
      okRatio: sent === 0 ? null : (sent - failed) / sent,
      outcomes,
      connect: summariseRtt(connect),
      tls: summariseRtt(handshake),
      lastOutcome: s.lastOutcome,
      lastDetail: s.lastDetail,
      readyz: s.readyz,
      run: trailingRun(sent, (k) => s.fromNewest(k).outcome === 'ok'),
    };
  }
}
