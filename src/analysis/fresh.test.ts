// The fresh view of a cell (fresh.ts): known cases (a cut after a clean window, an MTU cell
// answered again, a healed cut, steady loss left alone, malformed runs), and its false rates
// measured exactly: for a window of W results lost independently at rate p, every window state
// (trailing run, the run before it, losses) is enumerated with its probability, and the chance
// that a steady path is judged healed, or a steady link cut on all three kinds, is summed. They
// must stay under FRESH_ALPHA and CUT_ALPHA at every loss rate and window length.

import test from 'ava';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { trailingRun } from '../store/trailing-run.ts';
import {
  CUT_ALPHA,
  FRESH_ALPHA,
  cellView,
  combinedChance,
  cutView,
  failRunChance,
  runChance,
  validRun,
  type Run,
} from './fresh.ts';

const run = (ok: boolean, length: number, previous = 0): Run => ({ ok, length, previous });

test('runChance: the newest n of one outcome among k of sent, every order equally likely', (t) => {
  t.is(runChance(60, 2, 1), 2 / 60);
  t.is(runChance(60, 2, 2), (2 / 60) * (1 / 59));
  t.is(runChance(60, 2, 3), 0);
  t.is(runChance(60, 60, 60), 1);
  t.is(runChance(4, 2, 0), 1);
});

test('a cut after a clean window: two failures on each of three kinds are a hard failure', (t) => {
  const cell = (n: number): { sent: number; lost: number; run: Run } => ({
    sent: 60,
    lost: n,
    run: run(false, n, 60 - n),
  });
  t.deepEqual(cutView([cell(2), cell(2), cell(2)]), [
    { sent: 2, lost: 2, fresh: 'failing' },
    { sent: 2, lost: 2, fresh: 'failing' },
    { sent: 2, lost: 2, fresh: 'failing' },
  ]);
  // One each is not enough (random loss does that), nor failures on one kind only.
  t.is(cutView([cell(1), cell(1), cell(1)]), undefined);
  t.is(cutView([cell(8), cell(0), cell(0)]), undefined);
  t.is(
    cutView([cell(8), { sent: 60, lost: 0, run: run(true, 60) }, cell(8)]),
    undefined,
    'a kind still answered',
  );
  // A single kind (icmp and tcp off) needs more of them: 5 after a clean window.
  t.is(cutView([cell(4)]), undefined);
  t.truthy(cutView([cell(5)]));
  // A kind with no results doesn't stop it, and keeps its (empty) window.
  t.deepEqual(cutView([cell(3), cell(3), { sent: 0, lost: 0, run: null }])?.[2], {
    sent: 0,
    lost: 0,
    fresh: 'window',
  });
  // An agent before the trailing run: no fresh view at all.
  t.is(cutView([cell(10), cell(10), { sent: 60, lost: 10, run: undefined }]), undefined);
});

test('a steadily lossy link is not cut by a few failures in a row', (t) => {
  // 30% loss, the last three of each kind lost: what 30% loss does every so often.
  const lossy = { sent: 60, lost: 18, run: run(false, 3, 2) };
  t.is(cutView([lossy, lossy, lossy]), undefined);
  t.true(failRunChance(60, 18, run(false, 3, 2))! > 0.02);
});

test('an MTU cell answered again: healed after two successes, judged on them only', (t) => {
  // 58 of 60 full-size probes lost, then two answered.
  t.deepEqual(cellView(60, 58, run(true, 2, 58)), { sent: 2, lost: 0, fresh: 'healed' });
  // One success after a window of nothing but losses is what a 98% lossy path does: not yet.
  t.deepEqual(cellView(60, 59, run(true, 1, 59)), { sent: 60, lost: 59, fresh: 'window' });
});

test('a healed cut: successes after a proven run of failures replace the window', (t) => {
  // 40 clean, 15 lost in a row, 5 answered: the window says 25% lost, the path is fine. The
  // first success after a proven cut already moves the cell off the fault's old losses (too few
  // to judge yet: unknown, which is never a finding).
  t.deepEqual(cellView(60, 15, run(true, 5, 15)), { sent: 5, lost: 0, fresh: 'healed' });
  t.deepEqual(cellView(60, 15, run(true, 1, 15)), { sent: 1, lost: 0, fresh: 'healed' });
  // The same 15 losses scattered (previous run 1): no proof, the window stands.
  t.deepEqual(cellView(60, 15, run(true, 5, 1)), { sent: 60, lost: 15, fresh: 'window' });
});

test('steady loss keeps its window; a clean window is its window', (t) => {
  t.deepEqual(cellView(60, 3, run(true, 20, 1)), { sent: 60, lost: 3, fresh: 'window' });
  t.deepEqual(cellView(60, 0, run(true, 60)), { sent: 60, lost: 0, fresh: 'window' });
  t.deepEqual(cellView(60, 30, run(false, 2, 1)), { sent: 60, lost: 30, fresh: 'window' });
});

test('malformed or inconsistent runs are ignored (the window is used)', (t) => {
  for (const bad of [
    null,
    undefined,
    'run',
    { ok: 'yes', length: 1, previous: 0 },
    { ok: true, length: 0, previous: 0 },
    { ok: true, length: 1.5, previous: 0 },
    { ok: true, length: 61, previous: 0 },
    { ok: false, length: 5, previous: 0 }, // more failures than lost
    { ok: true, length: 50, previous: 20 }, // longer than the window
  ])
    t.deepEqual(cellView(60, 3, bad), { sent: 60, lost: 3, fresh: 'window' }, JSON.stringify(bad));
  t.is(validRun(60, 3, { ok: true, length: 57, previous: 3 })?.length, 57);
});

test('combinedChance: one chance is itself; more need more evidence than their product', (t) => {
  t.is(combinedChance([0.01]), 0.01);
  t.is(combinedChance([]), 1);
  t.true(combinedChance([1e-3, 1e-3, 1e-3]) > 1e-9);
  t.true(combinedChance([1e-3, 1e-3, 1e-3]) < 1e-5);
  t.is(combinedChance([0, 0.5]), 0);
});

// ---------- false rates, exactly ----------

const LOG_FACT: number[] = [0];
const logFact = (n: number): number => {
  for (let i = LOG_FACT.length; i <= n; i++) LOG_FACT.push(LOG_FACT[i - 1]! + Math.log(i));
  return LOG_FACT[n]!;
};
const logChoose = (n: number, k: number): number => logFact(n) - logFact(k) - logFact(n - k);

interface State {
  readonly run: Run;
  readonly lost: number;
  readonly pr: number;
  /** One sequence (oldest first, true = answered) with this state, for the self-check. */
  readonly example: () => boolean[];
}

/** Every state of a window of W results lost independently at rate p, with its probability. */
function* windowStates(W: number, p: number): Generator<State> {
  const q = 1 - p;
  for (const ok of [true, false]) {
    const a = ok ? q : p;
    const b = ok ? p : q;
    const same = (n: number): boolean[] => Array<boolean>(n).fill(ok);
    const other = (n: number): boolean[] => Array<boolean>(n).fill(!ok);
    yield { run: run(ok, W), lost: ok ? 0 : W, pr: a ** W, example: () => same(W) };
    for (let n = 1; n < W; n++)
      for (let m = 1; n + m <= W; m++) {
        const base = a ** n * b ** m;
        if (n + m === W) {
          yield {
            run: run(ok, n, m),
            lost: ok ? m : n,
            pr: base,
            example: () => [...other(m), ...same(n)],
          };
          continue;
        }
        // The result before the previous run has the trailing run's outcome; the R before it
        // are free, j of them lost.
        const R = W - n - m - 1;
        for (let j = 0; j <= R; j++)
          yield {
            run: run(ok, n, m),
            lost: (ok ? m : n + 1) + j,
            pr: base * a * Math.exp(logChoose(R, j) + j * Math.log(p) + (R - j) * Math.log(q)),
            example: () => [
              ...Array<boolean>(j).fill(false),
              ...Array<boolean>(R - j).fill(true),
              ok,
              ...other(m),
              ...same(n),
            ],
          };
      }
  }
}

interface Rates {
  readonly total: number;
  readonly meanLost: number;
  readonly healed: number;
  readonly cut1: number;
  readonly cut3: number;
}

/** The exact chance that a steady cell is seen healed, and a steady link cut (1 or 3 kinds). */
function falseRates(W: number, p: number): Rates {
  let total = 0;
  let meanLost = 0;
  let healed = 0;
  // The failure-run chance of one kind: value → probability (the rest: no trailing failures).
  const fails = new Map<number, number>();
  for (const s of windowStates(W, p)) {
    total += s.pr;
    meanLost += s.pr * s.lost;
    if (s.run.ok) {
      if (cellView(W, s.lost, s.run).fresh === 'healed') healed += s.pr;
    } else {
      const c = failRunChance(W, s.lost, s.run)!;
      fails.set(c, (fails.get(c) ?? 0) + s.pr);
    }
  }
  const values = [...fails].sort((x, y) => x[0] - y[0]);
  let cut1 = 0;
  for (const [c, pr] of values) if (combinedChance([c]) < CUT_ALPHA) cut1 += pr;
  // Three independent kinds: cut when the combined chance is below CUT_ALPHA, which (for three)
  // is a bound on the product: find it, then sum pairs × the third's mass under it.
  let lo = 0;
  let hi = CUT_ALPHA;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (combinedChance([mid, 1, 1]) < CUT_ALPHA) lo = mid;
    else hi = mid;
  }
  const cum: number[] = [];
  values.forEach(([, pr], i) => cum.push((cum[i - 1] ?? 0) + pr));
  const massBelow = (x: number): number => {
    let l = 0;
    let h = values.length;
    while (l < h) {
      const mid = (l + h) >> 1;
      if (values[mid]![0] < x) l = mid + 1;
      else h = mid;
    }
    return l === 0 ? 0 : cum[l - 1]!;
  };
  let cut3 = 0;
  for (const [c1, p1] of values)
    for (const [c2, p2] of values) {
      if (c1 * c2 === 0) {
        cut3 += p1 * p2 * (cum[cum.length - 1] ?? 0);
        continue;
      }
      cut3 += p1 * p2 * massBelow(lo / (c1 * c2));
    }
  return { total, meanLost, healed, cut1, cut3 };
}

test('the enumeration of window states is right: each example has its run and losses', (t) => {
  for (const [W, p] of [
    [12, 0.3],
    [7, 0.9],
  ] as const) {
    let n = 0;
    for (const s of windowStates(W, p)) {
      const xs = s.example();
      assert.equal(xs.length, W);
      assert.equal(xs.filter((x) => !x).length, s.lost);
      assert.deepEqual(
        trailingRun(W, (k) => xs[W - 1 - k]!),
        s.run,
      );
      n++;
    }
    const r = falseRates(W, p);
    t.true(Math.abs(r.total - 1) < 1e-9, `W=${W} p=${p}: probabilities sum to ${r.total}`);
    t.true(Math.abs(r.meanLost - W * p) < 1e-9, `W=${W} p=${p}: mean loss ${r.meanLost}`);
    t.true(n > 0);
  }
});

test('steady loss, measured: healed no more often than FRESH_ALPHA, cut than CUT_ALPHA', (t) => {
  const lines: string[] = [];
  let worst = { healed: 0, cut1: 0, cut3: 0 };
  for (const p of [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99]) {
    const r = falseRates(60, p);
    lines.push(
      `p=${p}: healed ${r.healed.toExponential(2)}, cut (1 kind) ${r.cut1.toExponential(2)}, cut (3 kinds) ${r.cut3.toExponential(2)}`,
    );
    worst = {
      healed: Math.max(worst.healed, r.healed),
      cut1: Math.max(worst.cut1, r.cut1),
      cut3: Math.max(worst.cut3, r.cut3),
    };
  }
  t.log(`60-result window, chance per evaluation:\n${lines.join('\n')}`);
  t.true(worst.healed <= FRESH_ALPHA, `healed ${worst.healed}`);
  t.true(worst.cut1 <= CUT_ALPHA, `cut, one kind ${worst.cut1}`);
  t.true(worst.cut3 <= CUT_ALPHA, `cut, three kinds ${worst.cut3}`);
});

test('property: at any loss rate and window length, the false rates stay under the alphas', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 4, max: 40 }),
      fc.double({ min: 0.005, max: 0.995, noNaN: true }),
      (W, p) => {
        const r = falseRates(W, p);
        assert.ok(r.healed <= FRESH_ALPHA, `W=${W} p=${p}: healed ${r.healed}`);
        assert.ok(r.cut1 <= CUT_ALPHA, `W=${W} p=${p}: cut1 ${r.cut1}`);
        assert.ok(r.cut3 <= CUT_ALPHA, `W=${W} p=${p}: cut3 ${r.cut3}`);
      },
    ),
    { numRuns: 40 },
  );
  t.pass();
});
