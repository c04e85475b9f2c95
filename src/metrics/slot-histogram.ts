// A classic Prometheus histogram (cumulative `_bucket{le}`, `_sum`, `_count`) whose children are
// plain slots, for a metric observed on the probe hot path with many label sets: the per-pair
// RTT histogram (catalogue `pairRttHistogram`). prom-client's Histogram validates and hashes the
// labels on every observe, even through a `labels()` child, and keeps each bucket in an object
// keyed by its bound: ~0.8 µs an observation against ~30 ns for a slot here (measured, `npm run
// bench -- --only=series`), and one object per bucket per child where a slot holds one
// Float64Array. It registers in a prom-client Registry like any metric (get() gives the same
// shape prom-client's histogram gives), so /metrics renders it with the rest.

import type { Metric } from 'prom-client';

/** One label set's counts: the hot path holds it and calls observe(). */
export class HistogramSlot<L extends string> {
  /** Per bucket, observations above the previous bound and at most this one; the last is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<L, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    // A linear scan: a dozen bounds, and most RTTs fall in the first few.
    const b = this.bounds;
    let k = 0;
    while (k < b.length && v > b[k]!) k++;
    this.counts[k]!++;
    this.sum += v;
    this.count++;
  }
}

/** One sample as prom-client's Registry formats it: `labels` first, then `sharedLabels`. */
interface SampleValue {
  readonly value: number;
  readonly labels: Record<string, string | number>;
  readonly sharedLabels?: Readonly<Record<string, string>>;
  readonly metricName: string;
}

export class SlotHistogram<L extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly slots = new Map<string, HistogramSlot<L>>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
    readonly buckets: readonly number[],
  ) {
    for (let i = 1; i < buckets.length; i++)
      if (!(buckets[i]! > buckets[i - 1]!)) throw new Error(`${name}: buckets must increase`);
  }

  /** The slot for `key`, created with `labels` on first use (the caller keys by label set). */
  slot(key: string, labels: Readonly<Record<L, string>>): HistogramSlot<L> {
    let s = this.slots.get(key);
    if (s === undefined) {
      s = new HistogramSlot(labels, this.buckets);
      this.slots.set(key, s);
    }
    return s;
  }

  /** Drops a label set's series (a departed peer). */
  remove(key: string): void {
    this.slots.delete(key);
  }

  reset(): void {
    this.slots.clear();
  }

  /** The same shape prom-client's Histogram.get() returns, read by Registry.metrics(). */
  get(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    aggregator: 'sum';
    values: SampleValue[];
  }> {
    const values: SampleValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.slots.values()) {
      // The slot's labels go as sharedLabels, as prom-client's Histogram does: one object per
      // slot, formatted once per render by the Registry (it caches them), `le` first.
      const shared = s.labels;
      let acc = 0;
      for (let k = 0; k < this.buckets.length; k++) {
        acc += s.counts[k]!;
        const le = this.buckets[k]!;
        values.push({ labels: { le }, sharedLabels: shared, value: acc, metricName: bucket });
      }
      values.push({
        labels: { le: '+Inf' },
        sharedLabels: shared,
        value: s.count,
        metricName: bucket,
      });
      values.push({
        labels: {},
        sharedLabels: shared,
        value: s.sum,
        metricName: `${this.name}_sum`,
      });
      values.push({
        labels: {},
        sharedLabels: shared,
        value: s.count,
        metricName: `${this.name}_count`,
      });
    }
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    });
  }

  /**
   * This metric as prom-client's Registry.registerMetric() types it. The registry only reads
   * name, get() and reset() (and type for the exposition), which this class has; its type lists
   * prom-client's own classes only.
   */
  asRegistryMetric(): Metric {
    return this as unknown as Metric;
  }
}
