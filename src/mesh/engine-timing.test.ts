// The engine's timer slot and result flush follow the probe interval: coarse at the default 1 s
// (fewer wake-ups), finer on a fast schedule, so detection takes the same number of intervals.

import test from 'ava';
import { DEFAULT_TIMER_SLOT_MS, resultFlushFor, timerSlotFor } from './engine.ts';

const cases: [name: string, intervalMs: number, slot: number, flush: number][] = [
  ['default 1 s interval', 1000, DEFAULT_TIMER_SLOT_MS, 200],
  ['slower than the default: capped', 10_000, DEFAULT_TIMER_SLOT_MS, 200],
  ['250 ms (the lab)', 250, 12, 50],
  ['100 ms', 100, 5, 20],
  ['near miss of the cap: 999 ms', 999, 49, 199],
  ['very fast: floors', 20, 5, 20],
];

for (const [name, intervalMs, slot, flush] of cases) {
  test(`timing for ${name}`, (t) => {
    t.is(timerSlotFor(intervalMs), slot);
    t.is(resultFlushFor(intervalMs), flush);
  });
}
