// The statistics triage rests on, checked against published values: Wilson intervals from
// Newcombe (1998, "Two-sided confidence intervals for the single proportion", Table I, method 3),
// normal quantiles from any table, a G-test worked by hand, and the handshake model's figures.

import test from 'ava';
import {
  atLeast,
  compare,
  exchangeLoss,
  fisherGreater,
  lnGamma,
  handshakeLoss,
  lrZ,
  normalQuantile,
  perPacketLoss,
  pool,
  synTries,
  wilson,
  zOf,
} from './stats.ts';

const near = (a: number, b: number, eps = 5e-5): boolean => Math.abs(a - b) <= eps;

test('normal quantiles match the table', (t) => {
  t.true(near(normalQuantile(0.975), 1.959964, 1e-6));
  t.true(near(normalQuantile(0.995), 2.575829, 1e-6));
  t.true(near(normalQuantile(0.01), -2.326348, 1e-6));
  t.true(near(normalQuantile(0.5), 0, 1e-9));
  t.true(near(zOf(0.99), 2.575829, 1e-6));
  t.is(normalQuantile(0), -Infinity);
});

test('Wilson 95% intervals match Newcombe (1998)', (t) => {
  for (const [lost, sent, lo, hi] of [
    [81, 263, 0.2553, 0.3662],
    [15, 148, 0.0624, 0.1605],
    [0, 20, 0, 0.1611],
    [1, 29, 0.0061, 0.1718],
  ] as const) {
    const w = wilson({ lost, sent }, 0.95);
    t.true(near(w.lo, lo) && near(w.hi, hi), `${lost}/${sent}: ${w.lo} ${w.hi}`);
  }
});

test('the 99% interval of 12 of 60 is 10–36%; nothing sent is [0, 1]', (t) => {
  const w = wilson({ lost: 12, sent: 60 });
  t.true(near(w.lo, 0.1002, 1e-4) && near(w.hi, 0.3596, 1e-4));
  t.deepEqual(wilson({ lost: 0, sent: 0 }), { ratio: 0, lo: 0, hi: 1 });
  t.is(wilson({ lost: 60, sent: 60 }).hi, 1);
  // Malformed counts are clamped, never NaN.
  t.deepEqual(wilson({ lost: 5, sent: Number.NaN }), { ratio: 0, lo: 0, hi: 1 });
  t.is(wilson({ lost: 99, sent: 10 }).ratio, 1);
});

test('significance: 1 of 20 is not above 5%, 12 of 60 is; 60 of 60 is at least 90%', (t) => {
  t.false(atLeast({ lost: 1, sent: 20 }, 0.05));
  t.false(atLeast({ lost: 5, sent: 60 }, 0.05));
  t.true(atLeast({ lost: 12, sent: 60 }, 0.05));
  t.true(atLeast({ lost: 60, sent: 60 }, 0.9));
  t.false(atLeast({ lost: 144, sent: 180 }, 0.9), '80% random loss is not a cut');
  t.false(atLeast({ lost: 0, sent: 0 }, 0));
});

test('exchange loss: 1 - (1 - p)^k and its inverse', (t) => {
  t.true(near(exchangeLoss(0.1, 2), 0.19, 1e-12));
  t.true(near(perPacketLoss(0.19, 2), 0.1, 1e-12));
  t.is(exchangeLoss(1, 3), 1);
  t.is(exchangeLoss(0, 3), 0);
});

test('handshake: one try at a 1 s timeout fails like a round trip; more tries fail less', (t) => {
  t.is(synTries(1000), 1);
  t.is(synTries(200), 1);
  t.is(synTries(2000), 2);
  t.is(synTries(5000), 3);
  t.true(near(handshakeLoss(0.5), 0.5, 1e-12));
  t.true(near(handshakeLoss(0.5, 2), 0.25, 1e-12));
});

test('G-test: 10 of 20 against 0 of 20 is z = 4.155 (by hand); alike is 0', (t) => {
  t.true(near(lrZ({ lost: 10, sent: 20 }, { lost: 0, sent: 20 }), 4.1546, 1e-4));
  t.true(near(lrZ({ lost: 0, sent: 20 }, { lost: 10, sent: 20 }), -4.1546, 1e-4));
  t.is(lrZ({ lost: 6, sent: 60 }, { lost: 12, sent: 120 }), 0);
  t.is(lrZ({ lost: 6, sent: 0 }, { lost: 12, sent: 120 }), 0);
});

test('compare: significant and material, not one without the other', (t) => {
  const big = compare({ lost: 60, sent: 60 }, { lost: 1, sent: 60 }, 0.5);
  t.true(big.significant && big.material);
  // Thousands of probes make a 2-point difference significant but not material.
  const small = compare({ lost: 700, sent: 10000 }, { lost: 500, sent: 10000 }, 0.5);
  t.true(small.significant);
  t.false(small.material);
  // 30% random loss on both sides: neither.
  const same = compare({ lost: 20, sent: 60 }, { lost: 17, sent: 60 }, 0.05);
  t.false(same.significant);
  t.deepEqual(
    pool([
      { lost: 1, sent: 10 },
      { lost: 2, sent: 20 },
    ]),
    { lost: 3, sent: 30 },
  );
});

test("Fisher's exact test: the lady tasting tea (3 of 4 against 1 of 4) is p = 0.2429", (t) => {
  t.true(near(fisherGreater({ lost: 3, sent: 4 }, { lost: 1, sent: 4 }), 17 / 70, 1e-9));
  t.true(near(fisherGreater({ lost: 4, sent: 4 }, { lost: 0, sent: 4 }), 1 / 70, 1e-9));
  t.true(near(lnGamma(10), Math.log(362880), 1e-9));
  t.true(near(lnGamma(0.5), Math.log(Math.sqrt(Math.PI)), 1e-9));
});

test('compare: tiny groups use the exact test (18 of 20 against 0 of 2 is not significant)', (t) => {
  // The G-test alone would say z = 2.8, past 2.576; the exact one-sided p is 6/231 = 0.026.
  t.true(lrZ({ lost: 18, sent: 20 }, { lost: 0, sent: 2 }) > 2.576);
  t.false(compare({ lost: 18, sent: 20 }, { lost: 0, sent: 2 }, 0).significant);
  t.true(compare({ lost: 20, sent: 20 }, { lost: 0, sent: 20 }, 0.5).material);
});
