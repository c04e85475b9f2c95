// SlotHistogram renders exactly what prom-client's Histogram renders for the same observations
// (so Prometheus, the dashboards and the rules can't tell them apart), and a removed slot's
// series are gone.

import test from 'ava';
import { Histogram, Registry } from 'prom-client';
import { SlotHistogram } from './slot-histogram.ts';

const BUCKETS = [0.0001, 0.001, 0.01];
const LABELS = ['source_node', 'target_node'] as const;

test('renders the same exposition as prom-client for the same observations', async (t) => {
  const ours = new Registry();
  const theirs = new Registry();
  const slots = new SlotHistogram('x_seconds', 'help text', LABELS, BUCKETS);
  ours.registerMetric(slots.asRegistryMetric());
  const prom = new Histogram({
    name: 'x_seconds',
    help: 'help text',
    labelNames: LABELS,
    buckets: BUCKETS,
    registers: [theirs],
  });
  // On a bound (inclusive), between bounds, above the last (only +Inf), and a second child.
  const values = [0.00005, 0.0001, 0.0005, 0.001, 0.002, 0.5];
  for (const [target, vs] of [
    ['b', values],
    ['c', [0.003]],
  ] as const) {
    const labels = { source_node: 'a', target_node: target };
    const s = slots.slot(target, labels);
    for (const v of vs) {
      s.observe(v);
      prom.observe(labels, v);
    }
  }
  const text = await ours.metrics();
  t.is(text, await theirs.metrics());
  t.regex(text, /x_seconds_bucket\{le="0.0001",source_node="a",target_node="b"\} 2\n/);
  t.regex(text, /x_seconds_bucket\{le="\+Inf",source_node="a",target_node="b"\} 6\n/);

  slots.remove('b');
  const after = await ours.metrics();
  t.notRegex(after, /target_node="b"/);
  t.regex(after, /x_seconds_count\{source_node="a",target_node="c"\} 1\n/);
});

test('refuses buckets that do not increase', (t) => {
  t.throws(() => new SlotHistogram('y', 'h', LABELS, [0.1, 0.1]), { message: /increase/ });
});
