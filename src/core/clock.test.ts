// FakeClock ordering and SlottedClock's promise: timers share slots, fire early by less than
// one slot and never late (or, rounding 'late', late by less than one slot and never early),
// and can be cleared.

import test from 'ava';
import { SlottedClock, SystemClock } from './clock.ts';
import { FakeClock } from '../../test/support/fake-clock.ts';

test('FakeClock fires timers in time order', async (t) => {
  const c = new FakeClock(0);
  const fired: string[] = [];
  c.setTimeout(() => fired.push('b'), 20);
  c.setTimeout(() => fired.push('a'), 10);
  const h = c.setTimeout(() => fired.push('x'), 15);
  c.clearTimeout(h);
  await c.advance(30);
  t.deepEqual(fired, ['a', 'b']);
});

test('SlottedClock groups timers into slots and fires each within one slot early, never late', async (t) => {
  const base = new FakeClock(1000);
  const c = new SlottedClock(base, 10);
  const fired: [number, number][] = [];
  for (const ms of [1, 3, 9, 11, 19, 25]) {
    const due = base.nowMs() + ms;
    c.setTimeout(() => fired.push([due, base.nowMs()]), ms);
  }
  t.is(base.pending(), 3, 'six timers, three underlying ones');
  await base.advance(40);
  t.is(fired.length, 6);
  for (const [due, at] of fired) t.true(at <= due && due - at < 10, `due ${due}, fired ${at}`);
});

test('SlottedClock clears a timer, and the slot when it empties', async (t) => {
  const base = new FakeClock(0);
  const c = new SlottedClock(base, 10);
  let n = 0;
  const a = c.setTimeout(() => n++, 12);
  const b = c.setTimeout(() => n++, 15);
  c.clearTimeout(a);
  t.is(base.pending(), 1);
  c.clearTimeout(b);
  t.is(base.pending(), 0);
  await base.advance(50);
  t.is(n, 0);
});

test('SlottedClock passes time readings through untouched', (t) => {
  const base = new FakeClock(1234.5678);
  const c = new SlottedClock(base, 10);
  t.is(c.nowMs(), 1234.5678);
  t.is(c.monoNs(), base.monoNs());
});

test("SlottedClock 'late' fires each timer within one slot late, never early", async (t) => {
  const base = new FakeClock(1000);
  const c = new SlottedClock(base, 10, 'late');
  const fired: [number, number][] = [];
  for (const ms of [0, 1, 3, 9, 10, 11, 19, 25]) {
    const due = base.nowMs() + ms;
    c.setTimeout(() => fired.push([due, base.nowMs()]), ms);
  }
  t.is(base.pending(), 4, 'eight timers, four underlying ones (1000, 1010, 1020, 1030)');
  await base.advance(40);
  t.is(fired.length, 8);
  for (const [due, at] of fired) t.true(at >= due && at - due < 10, `due ${due}, fired ${at}`);
});

test('withRound: early and late timers of one slot share one underlying timer', async (t) => {
  const base = new FakeClock(1000);
  const early = new SlottedClock(base, 10, 'early');
  const late = early.withRound('late');
  const fired: string[] = [];
  early.setTimeout(() => fired.push('start'), 15); // slot 1010
  late.setTimeout(() => fired.push('timeout'), 5); // slot 1010
  t.is(base.pending(), 1, 'one wake-up for the slot, whichever rounding asked for it');
  const lone = new SlottedClock(base, 10, 'late');
  lone.setTimeout(() => fired.push('separate'), 5);
  t.is(base.pending(), 2, 'a clock with a table of its own sets its own timer');
  await base.advance(20);
  t.deepEqual(fired.sort(), ['separate', 'start', 'timeout']);
});

test('onFire is told how late each slot fired: the event loop delay, from timers already set', async (t) => {
  const lateness: number[] = [];
  const c = new SlottedClock(new SystemClock(), 10, 'early', (ms) => lateness.push(ms));
  await new Promise<void>((resolve) => {
    c.setTimeout(resolve, 20);
    const until = Date.now() + 150; // block the loop past the slot
    while (Date.now() < until);
  });
  t.is(lateness.length, 1);
  t.true(lateness[0]! >= 120, `fired ${lateness[0]} ms late`);
  // A quiet loop: the next slot fires close to its time.
  await new Promise<void>((resolve) => c.setTimeout(resolve, 20));
  t.is(lateness.length, 2);
  t.true(lateness[1]! < lateness[0]!, `fired ${lateness[1]} ms late with nothing blocking`);
});
