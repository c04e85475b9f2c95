// The generic sliding window on a fake clock: samples leave at the window's edge, keys go with
// retain and forget, and a series' length counts only what is inside.

import test from 'ava';
import { FakeClock } from '../../test/support/fake-clock.ts';
import { SampleSeries, SlidingWindow } from './window.ts';

class Series extends SampleSeries<{ atMs: number; v: number }> {
  constructor(readonly owner: string) {
    super();
  }
}

test('record prunes what left the window; get prunes before reading', async (t) => {
  const clock = new FakeClock(1_000_000);
  const w = new SlidingWindow<Series>(clock, 10_000);
  const s = w.add('k', new Series('a'));
  for (let i = 0; i < 5; i++) {
    s.push({ atMs: clock.nowMs(), v: i });
    w.prune(s);
    await clock.advance(4_000);
  }
  // Samples at 0, 4, 8, 12, 16 s; now 20 s: 12 and 16 are inside the last 10 s.
  const seen: number[] = [];
  w.get('k')!.forEach((x) => seen.push(x.v));
  t.deepEqual(seen, [3, 4]);
  t.is(w.get('k')!.length, 2);
});

test('retain keeps only the listed keys; forget drops the picked series and names them', (t) => {
  const clock = new FakeClock(0);
  const w = new SlidingWindow<Series>(clock, 10_000);
  w.add('a1', new Series('a'));
  w.add('a2', new Series('a'));
  w.add('b1', new Series('b'));
  t.deepEqual(
    w.forget((s) => s.owner === 'a'),
    ['a1', 'a2'],
  );
  w.add('c1', new Series('c'));
  w.retain(new Set(['c1']));
  t.deepEqual(
    w.entries().map(([k]) => k),
    ['c1'],
  );
  t.is(w.peek('b1'), undefined);
});

test('a long-lived series compacts without losing samples', (t) => {
  const s = new SampleSeries<{ atMs: number }>();
  for (let i = 0; i < 1000; i++) {
    s.push({ atMs: i });
    s.prune(i - 99);
  }
  t.is(s.length, 100);
  const first: number[] = [];
  s.forEach((x) => {
    if (first.length === 0) first.push(x.atMs);
  });
  t.deepEqual(first, [900]);
});
