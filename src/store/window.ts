// The one sliding window every family's store is built on: per key, a series of samples in time
// order; recording appends and drops what has left the window, reading drops it first too, and
// keys go when their job does (retain) or their peer does (forget). What a sample is and how a
// series is summarised is each family's own (pair-window.ts, dns-window.ts, port-window.ts).

import type { Clock } from '../core/clock.ts';

/** What the window needs of a series: to drop the samples older than a cutoff. */
export interface Series {
  prune(cutoffMs: number): void;
}

/**
 * Samples in time order in a plain array read from `head`: pruning moves the head, and the
 * array is compacted only once more than half of it (and over 64 samples) is dead.
 */
export class SampleSeries<S extends { readonly atMs: number }> implements Series {
  private readonly samples: S[] = [];
  private head = 0;

  push(sample: S): void {
    this.samples.push(sample);
  }

  prune(cutoffMs: number): void {
    while (this.head < this.samples.length && this.samples[this.head]!.atMs < cutoffMs) this.head++;
    if (this.head > 64 && this.head * 2 > this.samples.length) {
      this.samples.splice(0, this.head);
      this.head = 0;
    }
  }

  /** The newest sample, if any. */
  last(): S | undefined {
    return this.head < this.samples.length ? this.samples[this.samples.length - 1] : undefined;
  }

  /** Samples in the window (as of the last prune). */
  get length(): number {
    return this.samples.length - this.head;
  }

  /** The k-th sample from the newest end (0: the newest); k < length. */
  fromNewest(k: number): S {
    return this.samples[this.samples.length - 1 - k]!;
  }

  /** Calls `f` with every sample, oldest first. */
  forEach(f: (sample: S) => void): void {
    for (let i = this.head; i < this.samples.length; i++) f(this.samples[i]!);
  }
}

/** Keyed series over one sliding window of `windowMs`. */
export class SlidingWindow<S extends Series> {
  private readonly series = new Map<string, S>();

  constructor(
    private readonly clock: Clock,
    private readonly windowMs: number,
  ) {}

  /** The series of `key` as it is (not pruned): the record path, which prunes after its push. */
  peek(key: string): S | undefined {
    return this.series.get(key);
  }

  add(key: string, series: S): S {
    this.series.set(key, series);
    return series;
  }

  /** Drops what has left the window from `series`. */
  prune(series: S): void {
    series.prune(this.clock.nowMs() - this.windowMs);
  }

  /** The series of `key`, pruned to the window. */
  get(key: string): S | undefined {
    const s = this.series.get(key);
    if (s !== undefined) this.prune(s);
    return s;
  }

  /** Every series, pruned, in the order their keys first appeared. */
  entries(): [string, S][] {
    const out: [string, S][] = [];
    for (const [key, s] of this.series) {
      this.prune(s);
      out.push([key, s]);
    }
    return out;
  }

  /** Forgets the series of keys not in `keep` (jobs that are gone). */
  retain(keep: ReadonlySet<string>): void {
    for (const key of this.series.keys()) if (!keep.has(key)) this.series.delete(key);
  }

  /** Forgets the series `drop` picks (a departed peer's); returns their keys. */
  forget(drop: (series: S) => boolean): string[] {
    const gone: string[] = [];
    for (const [key, s] of this.series) {
      if (drop(s)) {
        this.series.delete(key);
        gone.push(key);
      }
    }
    return gone;
  }

  /** Every series as it is (not pruned). */
  values(): IterableIterator<S> {
    return this.series.values();
  }
}
