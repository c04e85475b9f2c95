// Window math on a fake clock: loss ratio, STAMP direction counts, quantiles, expiry, removal.

import test from 'ava';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { FakeClock } from '../../test/support/fake-clock.ts';
import type { ProbeResult } from '../core/types.ts';
import { pairKey } from '../core/pair-key.ts';
import { PairWindowStore } from './pair-window.ts';
import { quantile } from './summary.ts';

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
const K = pairKey('b/pod', 'udp', 'small');

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
  const store = new PairWindowStore(clock, 60_000);
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
  const store = new PairWindowStore(clock, 10_000);
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
  const store = new PairWindowStore(clock, 60_000);
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
  const store = new PairWindowStore(clock, 60_000);
  store.record(ok(clock, 'b/pod', 0.001));
  store.record({ ...ok(clock, 'b/pod', 0.001), kind: 'tcp' });
  store.record(ok(clock, 'c/pod', 0.001));
  t.deepEqual(store.removePeer('b/pod').sort(), ['b/pod|tcp|small', 'b/pod|udp|small']);
  t.deepEqual(store.peers(), ['c/pod']);
  t.is(store.get(K), undefined);
});

test('a window with no success has null RTT and full loss', (t) => {
  const clock = new FakeClock();
  const store = new PairWindowStore(clock, 60_000);
  store.record(lost(clock, 'b/pod'));
  const w = store.get(K)!;
  t.is(w.rtt, null);
  t.is(w.lossRatio, 1);
  t.is(w.lastSuccessMs, null);
});

test('the ring of samples: any sequence, wrapping and growing, sums as a plain list would', async (t) => {
  // Samples live in typed-array rings that start at 64 and double; this checks every summary
  // against a list kept the obvious way, across wrap-arounds, growth and expiry.
  const step = fc.record({
    gapMs: fc.integer({ min: 0, max: 400 }),
    ok: fc.boolean(),
    rttUs: fc.integer({ min: 1, max: 5000 }),
    fwd: fc.nat(3),
    rev: fc.nat(3),
    dup: fc.nat(2),
    reo: fc.nat(2),
  });
  await t.notThrowsAsync(
    fc.assert(
      // Phases of sparse and dense sending, so the ring also has to grow after it has wrapped.
      fc.asyncProperty(
        fc.array(fc.array(step, { minLength: 1, maxLength: 150, size: 'max' }), {
          minLength: 1,
          maxLength: 6,
          size: 'max',
        }),
        fc.boolean(),
        async (phases, denseFirst) => {
          const steps = phases.flatMap((p, k) =>
            p.map((s) => ((k % 2 === 0) === denseFirst ? { ...s, gapMs: s.gapMs % 25 } : s)),
          );
          const clock = new FakeClock();
          const windowMs = 5_000;
          const store = new PairWindowStore(clock, windowMs);
          const all: {
            atMs: number;
            ok: boolean;
            rtt: number;
            fwd: number;
            rev: number;
            dup: number;
            reo: number;
          }[] = [];
          for (const s of steps) {
            await clock.advance(s.gapMs);
            const stamp = {
              forwardLost: s.fwd,
              reverseLost: s.rev,
              duplicates: s.dup,
              reordered: s.reo,
              reflectorDwellSeconds: 0,
            };
            const rtt = s.rttUs / 1e6;
            store.record(
              s.ok ? ok(clock, 'b/pod', rtt, stamp) : { ...lost(clock, 'b/pod'), stamp },
            );
            all.push({
              atMs: clock.nowMs(),
              ok: s.ok,
              rtt,
              fwd: s.fwd,
              rev: s.rev,
              dup: s.dup,
              reo: s.reo,
            });
            // Checked after every step: a bad ring would heal itself as it expires.
            const inWindow = all.filter((x) => x.atMs >= clock.nowMs() - windowMs);
            const w = store.get(K)!;
            const sum = (f: (x: (typeof all)[number]) => number): number =>
              inWindow.reduce((a, x) => a + f(x), 0);
            const rtts = inWindow.filter((x) => x.ok).map((x) => x.rtt);
            assert.deepStrictEqual(
              {
                sent: w.sent,
                lost: w.lost,
                fwd: w.forwardLost,
                rev: w.reverseLost,
                dup: w.duplicates,
                reo: w.reordered,
                min: w.rtt?.min,
                max: w.rtt?.max,
              },
              {
                sent: inWindow.length,
                lost: inWindow.filter((x) => !x.ok).length,
                fwd: sum((x) => x.fwd),
                rev: sum((x) => x.rev),
                dup: sum((x) => x.dup),
                reo: sum((x) => x.reo),
                min: rtts.length === 0 ? undefined : Math.min(...rtts),
                max: rtts.length === 0 ? undefined : Math.max(...rtts),
              },
            );
          }
        },
      ),
      { numRuns: 60 },
    ),
  );
});

test('the trailing run: the newest like results and the opposite run before them', async (t) => {
  const clock = new FakeClock();
  const store = new PairWindowStore(clock, 30_000);
  const feed = async (pattern: string): Promise<void> => {
    for (const ch of pattern) {
      store.record(ch === '1' ? ok(clock, 'b/pod', 0.001) : lost(clock, 'b/pod'));
      await clock.advance(1000);
    }
  };
  t.is(store.get(K), undefined);
  await feed('1');
  t.deepEqual(store.get(K)!.run, { ok: true, length: 1, previous: 0 });
  await feed('11100');
  t.deepEqual(store.get(K)!.run, { ok: false, length: 2, previous: 4 });
  await feed('1');
  t.deepEqual(store.get(K)!.run, { ok: true, length: 1, previous: 2 });
  // 40 failures in a 30 s window, past the ring's first capacity: bounded by the window.
  await feed('0'.repeat(40));
  t.deepEqual(store.get(K)!.run, { ok: false, length: 30, previous: 0 });
});

test('the trailing run matches a direct count for any sequence (property)', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.boolean(), { minLength: 1, maxLength: 150 }), async (xs) => {
      const clock = new FakeClock();
      const store = new PairWindowStore(clock, 100_000);
      for (const x of xs) {
        store.record(x ? ok(clock, 'b/pod', 0.001) : lost(clock, 'b/pod'));
        await clock.advance(1000);
      }
      const inWindow = xs.slice(-100);
      const rev = [...inWindow].reverse();
      const last = rev[0]!;
      let length = 0;
      while (length < rev.length && rev[length] === last) length++;
      let previous = 0;
      while (length + previous < rev.length && rev[length + previous] !== last) previous++;
      assert.deepEqual(store.get(K)!.run, { ok: last, length, previous });
    }),
    { numRuns: 200 },
  );
  t.pass();
});
