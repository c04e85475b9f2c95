// Window math on a fake clock: loss ratio, STAMP direction counts, quantiles, expiry, removal.

import test from 'ava';
import { FakeClock } from '../core/clock.ts';
import type { ProbeResult } from '../core/types.ts';
import { WindowStore, quantile, windowKey } from './window-store.ts';

function ok(
  clock: FakeClock,
  peerId: string,
  rttSeconds: number,
  stamp?: ProbeResult['stamp'],
): ProbeResult {
  return {
    ok: true,
    peerId,
    kind: 'udp',
    size: 'small',
    sentAtMs: clock.nowMs(),
    rttSeconds,
    ...(stamp ? { stamp } : {}),
  };
}
function lost(clock: FakeClock, peerId: string): ProbeResult {
  return {
    ok: false,
    peerId,
    kind: 'udp',
    size: 'small',
    sentAtMs: clock.nowMs(),
    reason: 'timeout',
  };
}
const K = windowKey('b/pod', 'udp', 'small');

test('nearest-rank quantiles return measured values', (t) => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  t.is(quantile(xs, 0.5), 50);
  t.is(quantile(xs, 0.99), 99);
  t.is(quantile(xs, 1), 100);
  t.is(quantile([7], 0.5), 7);
  t.true(Number.isNaN(quantile([], 0.5)));
});

test('loss ratio and RTT summary over the window', async (t) => {
  const clock = new FakeClock();
  const store = new WindowStore(clock, 60_000);
  for (let i = 0; i < 10; i++) {
    store.record(i % 5 === 0 ? lost(clock, 'b/pod') : ok(clock, 'b/pod', (i + 1) / 1000));
    await clock.advance(1000);
  }
  const w = store.get(K)!;
  t.is(w.sent, 10);
  t.is(w.lost, 2);
  t.is(w.lossRatio, 0.2);
  t.is(w.rtt!.min, 0.002);
  t.is(w.rtt!.max, 0.01);
  t.is(w.rtt!.p50, 0.005);
  t.is(w.lastFailure, 'timeout');
});

test('samples older than the window fall out', async (t) => {
  const clock = new FakeClock();
  const store = new WindowStore(clock, 10_000);
  for (let i = 0; i < 5; i++) {
    store.record(lost(clock, 'b/pod'));
    await clock.advance(1000);
  }
  for (let i = 0; i < 20; i++) {
    store.record(ok(clock, 'b/pod', 0.001));
    await clock.advance(1000);
  }
  const w = store.get(K)!;
  t.is(w.lost, 0);
  t.is(w.sent, 10);
  t.is(w.lossRatio, 0);
  t.not(w.lastSuccessMs, null);
});

test('STAMP forward/reverse loss, duplicates and reordering add up in the window', (t) => {
  const clock = new FakeClock();
  const store = new WindowStore(clock, 60_000);
  store.record(lost(clock, 'b/pod'));
  store.record(lost(clock, 'b/pod'));
  store.record(
    ok(clock, 'b/pod', 0.001, {
      forwardLost: 1,
      reverseLost: 1,
      duplicates: 0,
      reordered: 0,
      reflectorDwellSeconds: 0,
    }),
  );
  store.record(
    ok(clock, 'b/pod', 0.001, {
      forwardLost: 0,
      reverseLost: 0,
      duplicates: 2,
      reordered: 1,
      reflectorDwellSeconds: 0,
    }),
  );
  const w = store.get(K)!;
  t.is(w.forwardLost, 1);
  t.is(w.reverseLost, 1);
  t.is(w.duplicates, 2);
  t.is(w.reordered, 1);
  t.is(w.lost, 2);
});

test('removing a peer forgets all its series and only its series', (t) => {
  const clock = new FakeClock();
  const store = new WindowStore(clock, 60_000);
  store.record(ok(clock, 'b/pod', 0.001));
  store.record({ ...ok(clock, 'b/pod', 0.001), kind: 'tcp' });
  store.record(ok(clock, 'c/pod', 0.001));
  t.deepEqual(store.removePeer('b/pod').sort(), ['b/pod|tcp|small', 'b/pod|udp|small']);
  t.deepEqual(store.peers(), ['c/pod']);
  t.is(store.get(K), undefined);
});

test('a window with no success has null RTT and full loss', (t) => {
  const clock = new FakeClock();
  const store = new WindowStore(clock, 60_000);
  store.record(lost(clock, 'b/pod'));
  const w = store.get(K)!;
  t.is(w.rtt, null);
  t.is(w.lossRatio, 1);
  t.is(w.lastSuccessMs, null);
});
