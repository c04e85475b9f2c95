// What this agent's connects to each port target saw lately: a sliding time window of
// outcomes, from which the open ratio, outcome counts and connect-time quantiles come. The
// results API and the metrics recorder both read from here.

import type { Clock } from '../core/clock.ts';
import type { PortJobResult } from '../probes/port-job.ts';
import type { TcpOutcome } from '../core/outcomes.ts';
import { summariseRtt, type RttSummary } from './summary.ts';
import { trailingRun, type TrailingRun } from './trailing-run.ts';
import { SampleSeries, SlidingWindow } from './window.ts';

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
  /** The trailing run of accepted (ok) or not accepted connects, or null before the first. */
  readonly run: TrailingRun | null;
}

class PortSeries extends SampleSeries<Sample> {
  lastOutcome: TcpOutcome | null = null;
  lastDetail: string | null = null;
}

export class PortWindowStore {
  private readonly window: SlidingWindow<PortSeries>;

  constructor(clock: Clock, windowMs: number) {
    this.window = new SlidingWindow(clock, windowMs);
  }

  record(r: PortJobResult): void {
    const s = this.window.peek(r.key) ?? this.window.add(r.key, new PortSeries());
    s.push({ atMs: r.sentAtMs, outcome: r.outcome, seconds: r.seconds });
    s.lastOutcome = r.outcome;
    s.lastDetail = r.detail ?? null;
    this.window.prune(s);
  }

  /** Forgets the series of targets not in `keep`. */
  retain(keep: ReadonlySet<string>): void {
    this.window.retain(keep);
  }

  get(key: string): PortWindow | undefined {
    const s = this.window.get(key);
    if (s === undefined) return undefined;
    let open = 0;
    const outcomes: Partial<Record<TcpOutcome, number>> = {};
    const times: number[] = [];
    s.forEach((x) => {
      outcomes[x.outcome] = (outcomes[x.outcome] ?? 0) + 1;
      if (x.outcome === 'open') {
        open++;
        times.push(x.seconds);
      }
    });
    const sent = s.length;
    return {
      key,
      sent,
      open,
      openRatio: sent === 0 ? null : open / sent,
      outcomes,
      connect: summariseRtt(times),
      lastOutcome: s.lastOutcome,
      lastDetail: s.lastDetail,
      run: trailingRun(sent, (k) => s.fromNewest(k).outcome === 'open'),
    };
  }
}
