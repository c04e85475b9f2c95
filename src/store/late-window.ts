// The prober's own punctuality over the sliding window: how many runs started, how many more
// than probes.lateMs after their due time, and a coarse lateness p99. A starved agent (CPU
// throttling, a busy node) measures itself rather than the network; triage and the alert rules
// read this to hold its latency numbers back. Per-second buckets keep it O(window seconds) at
// any probe rate: the window's series (window.ts) holds one sample per second.

import type { Clock } from '../core/clock.ts';
import { LATENESS_BUCKETS } from '../core/lateness.ts';
import { SampleSeries } from './window.ts';

interface Bucket {
  /** The start of its second, ms: the sample's time in the window. */
  readonly atMs: number;
  readonly second: number;
  runs: number;
  late: number;
  /** Counts per LATENESS_BUCKETS upper bound, plus one overflow slot. */
  readonly hist: number[];
}

export interface Punctuality {
  readonly runs: number;
  readonly late: number;
  /** late / runs, or null before the first run in the window. */
  readonly lateRatio: number | null;
  /** Upper bound of the histogram bucket holding the 99th percentile, seconds; null if no runs. */
  readonly latenessP99Seconds: number | null;
}

export class LateWindow {
  private readonly buckets = new SampleSeries<Bucket>();

  constructor(
    private readonly clock: Clock,
    private readonly windowMs: number,
    private readonly lateMs: number,
  ) {}

  record(latenessMs: number): void {
    const second = Math.floor(this.clock.nowMs() / 1000);
    let b = this.buckets.last();
    if (b === undefined || b.second !== second) {
      b = {
        atMs: second * 1000,
        second,
        runs: 0,
        late: 0,
        hist: new Array<number>(LATENESS_BUCKETS.length + 1).fill(0),
      };
      this.buckets.push(b);
      this.prune();
    }
    b.runs++;
    if (latenessMs > this.lateMs) b.late++;
    const s = latenessMs / 1000;
    let i = LATENESS_BUCKETS.findIndex((ub) => s <= ub);
    if (i < 0) i = LATENESS_BUCKETS.length;
    b.hist[i]!++;
  }

  summary(): Punctuality {
    this.prune();
    let runs = 0;
    let late = 0;
    const hist = new Array<number>(LATENESS_BUCKETS.length + 1).fill(0);
    this.buckets.forEach((b) => {
      runs += b.runs;
      late += b.late;
      b.hist.forEach((n, i) => (hist[i]! += n));
    });
    let p99: number | null = null;
    if (runs > 0) {
      const rank = Math.ceil(runs * 0.99);
      let seen = 0;
      for (let i = 0; i < hist.length; i++) {
        seen += hist[i]!;
        if (seen >= rank) {
          // Past the last bound: report the last bound, the most that can be said.
          p99 = LATENESS_BUCKETS[Math.min(i, LATENESS_BUCKETS.length - 1)]!;
          break;
        }
      }
    }
    return { runs, late, lateRatio: runs === 0 ? null : late / runs, latenessP99Seconds: p99 };
  }

  private prune(): void {
    const oldest = Math.floor((this.clock.nowMs() - this.windowMs) / 1000);
    this.buckets.prune(oldest * 1000);
  }
}
