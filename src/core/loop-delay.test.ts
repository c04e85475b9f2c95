// Loop delay without the sampling tick: the arithmetic on a histogram of known values, and a real
// monitor that reads near zero when idle and shows a block of the loop.

import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  LOOP_DELAY_RESOLUTION_MS,
  loopDelayQuantiles,
  loopDelaySeconds,
  loopDelayMonitor,
  timerLateness,
} from './loop-delay.ts';

/** A histogram whose percentile p is `values[p]` nanoseconds. */
function fake(values: Record<number, number>, count = 10) {
  return { count, percentile: (p: number) => values[p] ?? NaN };
}

test('the tick is taken out; never below zero; nothing before the first sample', (t) => {
  const tickNs = LOOP_DELAY_RESOLUTION_MS * 1e6;
  const h = fake({ 50: tickNs + 1e6, 90: tickNs - 1e6, 99: tickNs + 300e6 });
  const q = loopDelayQuantiles(h);
  t.true(Math.abs(q.p50 - 0.001) < 1e-9, String(q.p50));
  t.is(q.p90, 0);
  t.true(Math.abs(q.p99 - 0.3) < 1e-9, String(q.p99));
  t.is(loopDelaySeconds(fake({ 99: tickNs * 3 }, 0), 99), 0);
  t.true(Math.abs(loopDelaySeconds(fake({ 99: 30e6 }), 99, 10) - 0.02) < 1e-9);
});

test('a real monitor: a 300 ms block of the loop shows as at least 250 ms at p99', async (t) => {
  const h = loopDelayMonitor();
  h.enable();
  t.teardown(() => h.disable());
  await sleep(3 * LOOP_DELAY_RESOLUTION_MS);
  const until = Date.now() + 300;
  while (Date.now() < until);
  await sleep(2 * LOOP_DELAY_RESOLUTION_MS);
  const q = loopDelayQuantiles(h);
  t.true(q.p99 >= 0.25, `p99 ${q.p99}`);
  // The raw histogram would have said at least the tick even for the quiet samples.
  t.true(q.p50 < h.percentile(50) / 1e9);
});

test('timerLateness: recorded lateness reads back as quantiles in seconds, no tick to remove', (t) => {
  const l = timerLateness();
  t.is(loopDelayQuantiles(l.histogram, 0).p99, 0, 'nothing recorded: 0');
  for (let i = 0; i < 98; i++) l.record(0); // on time (recorded as 1 ns)
  l.record(2);
  l.record(300);
  const q = loopDelayQuantiles(l.histogram, 0);
  t.true(q.p50 < 1e-6, `p50 ${q.p50}`);
  t.true(Math.abs(q.p99 - 0.002) < 0.0002, `p99 ${q.p99}`);
  t.true(Math.abs(loopDelaySeconds(l.histogram, 100, 0) - 0.3) < 0.01);
  l.histogram.reset();
  t.is(loopDelayQuantiles(l.histogram, 0).p99, 0, 'reset: nothing again');
});
