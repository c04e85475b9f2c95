// LateWindow on a fake clock: ratio of late runs, the coarse p99, and ageing out.

import test from 'ava';
import { FakeClock } from '../../test/support/fake-clock.ts';
import { LateWindow } from './late-window.ts';

test('counts runs later than lateMs and ages them out after the window', async (t) => {
  const clock = new FakeClock(1_000_000);
  const w = new LateWindow(clock, 10_000, 50);
  t.deepEqual(w.summary(), { runs: 0, late: 0, lateRatio: null, latenessP99Seconds: null });
  for (let i = 0; i < 90; i++) w.record(1);
  for (let i = 0; i < 10; i++) w.record(120);
  const s = w.summary();
  t.is(s.runs, 100);
  t.is(s.late, 10);
  t.is(s.lateRatio, 0.1);
  // The 99th of 100 runs is one of the 120 ms ones: its bucket's upper bound is 0.25 s.
  t.is(s.latenessP99Seconds, 0.25);
  await clock.advance(5_000);
  for (let i = 0; i < 100; i++) w.record(0.05);
  t.is(w.summary().runs, 200);
  await clock.advance(6_000);
  const later = w.summary();
  t.is(later.runs, 100, 'the first second aged out, the second batch stays');
  t.is(later.late, 0);
  t.is(later.latenessP99Seconds, 0.0001);
});

test('exactly lateMs is on time; beyond the largest bucket reports the largest bound', (t) => {
  const clock = new FakeClock(0);
  const w = new LateWindow(clock, 60_000, 50);
  w.record(50);
  t.is(w.summary().late, 0);
  w.record(50.5);
  t.is(w.summary().late, 1);
  for (let i = 0; i < 200; i++) w.record(10_000);
  t.is(w.summary().latenessP99Seconds, 2.5);
});
