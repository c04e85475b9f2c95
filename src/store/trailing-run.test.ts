// The trailing run of the DNS and port windows (the peer window's has its own tests in
// pair-window.test.ts): the newest like results, the opposite run before them, pruned with the
// window.

import test from 'ava';
import { FakeClock } from '../../test/support/fake-clock.ts';
import { DnsWindowStore } from './dns-window.ts';
import { PortWindowStore } from './port-window.ts';
import { trailingRun } from './trailing-run.ts';

test('trailingRun of a plain list', (t) => {
  const xs = [true, false, false, true, true, true];
  const at = (k: number): boolean => xs[xs.length - 1 - k]!;
  t.deepEqual(trailingRun(xs.length, at), { ok: true, length: 3, previous: 2 });
  t.deepEqual(trailingRun(2, at), { ok: true, length: 2, previous: 0 });
  t.is(trailingRun(0, at), null);
});

test('port window: the run of accepted or not accepted connects', async (t) => {
  const clock = new FakeClock();
  const store = new PortWindowStore(clock, 10_000);
  for (const outcome of ['open', 'timeout', 'refused', 'open', 'open'] as const) {
    store.record({ key: 'web', outcome, seconds: 0.001, sentAtMs: clock.nowMs() });
    await clock.advance(1000);
  }
  t.deepEqual(store.get('web')!.run, { ok: true, length: 2, previous: 2 });
  // 7.5 s on, only the two newest (both open) are left in the 10 s window.
  await clock.advance(7500);
  t.deepEqual(store.get('web')!.run, { ok: true, length: 2, previous: 0 });
});

test('DNS window: the run of answered or failed lookups', async (t) => {
  const clock = new FakeClock();
  const store = new DnsWindowStore(clock, 60_000);
  const lookup = (answered: boolean): void =>
    store.record({
      key: 'k',
      outcome: answered ? 'noerror' : 'timeout',
      answered,
      seconds: 0.001,
      sentAtMs: clock.nowMs(),
      tried: 1,
      answeredBy: undefined,
      truncatedRetried: false,
    });
  for (const a of [true, true, false, false, false]) {
    lookup(a);
    await clock.advance(1000);
  }
  t.deepEqual(store.get('k')!.run, { ok: false, length: 3, previous: 2 });
});
