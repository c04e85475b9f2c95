// Which samples of a cell are fresh: a change-point view of one window. A window of 60 probes
// describes the last minute, so judged as a whole it names a cut only once half of it is lost
// and forgets a healed fault only once the fault has left it. The agents also send the run of
// like results at the newest end (and the opposite run before it); when that run proves the
// path's state changed, the cell is judged on the run alone:
//
//  - healed: n successes in a row at the end of a window with losses, where a window in one
//    steady state would put them there with a chance below FRESH_ALPHA, or right after a proven
//    hard failure (the state before is known to have been failing).
//  - failing (a hard failure): n failures in a row at the end, on every probe kind of a link at
//    once, where a steady window would put them there with a combined chance below CUT_ALPHA,
//    so random loss on one kind never fakes a cut. Named whatever the window length and
//    minProbes.
//
// "Chance in a steady window" is exact and needs no estimate of the loss rate: with k of the
// window's results of one outcome and every order equally likely (what a steady loss rate
// gives), the newest n are all of it with chance Π_{i<n} (k − i) / (sent − i). So a steadily
// lossy path flips to healed or failing no more often than the alphas say, at any loss rate
// (measured in fresh.test.ts). Pure functions of the counts; links.ts applies them.

/** The trailing run as the agents send it (src/api/agent-row.ts trailingRunSchema). */
export interface Run {
  readonly ok: boolean;
  readonly length: number;
  readonly previous: number;
}

/** How a cell is judged: on its window, or on its trailing run only. */
export type Freshness = 'window' | 'healed' | 'failing';

/** The counts a cell is judged on, and which view they are. */
export interface FreshCounts {
  readonly sent: number;
  readonly lost: number;
  readonly fresh: Freshness;
}

/** A success run with a smaller chance than this under the state before it is a heal. */
export const FRESH_ALPHA = 1e-3;
/**
 * A failure run whose chance (combined over a link's kinds) is below this is a hard failure.
 * Stricter than FRESH_ALPHA: every link is tested every round, and a false cut is a critical
 * finding.
 */
export const CUT_ALPHA = 1e-6;

/**
 * The chance that the newest n of `sent` results are all of one outcome when `k` of them have
 * it and the window is in one steady state (every arrangement of its results equally likely):
 * C(sent − k, ·)… = Π_{i<n} (k − i) / (sent − i). Exact whatever the loss rate, so a steady
 * path passes the test no more often than the alpha says.
 */
export function runChance(sent: number, k: number, n: number): number {
  let p = 1;
  for (let i = 0; i < n && p > 0; i++) p *= Math.max(0, k - i) / (sent - i);
  return p;
}

/** A run that agrees with its window's counts, else undefined (malformed rows never throw). */
export function validRun(sent: number, lost: number, run: unknown): Run | undefined {
  if (run === null || typeof run !== 'object') return undefined;
  const r = run as Partial<Run>;
  if (typeof r.ok !== 'boolean') return undefined;
  const n = r.length;
  const m = r.previous ?? 0;
  if (!Number.isInteger(n) || !Number.isInteger(m) || n! < 1 || m < 0) return undefined;
  const good = sent - lost;
  // The run's outcomes must fit in the window's counts.
  const fits = r.ok ? n! <= good && m <= lost : n! <= lost && m <= good;
  return fits && n! + m <= sent ? { ok: r.ok, length: n!, previous: m } : undefined;
}

/** The chance of the trailing failure run in a steady window; null when it is successes. */
export function failRunChance(sent: number, lost: number, run: Run): number | null {
  return run.ok ? null : runChance(sent, lost, run.length);
}

/** The chance of the trailing success run in a steady window; null when it is failures. */
export function okRunChance(sent: number, lost: number, run: Run): number | null {
  return run.ok ? runChance(sent, sent - lost, run.length) : null;
}

/**
 * Whether the failure run right before a trailing success run was a proven hard failure when
 * it ended (the window without the successes, CUT_ALPHA on its own).
 */
export function provenFailureBefore(sent: number, lost: number, run: Run): boolean {
  if (!run.ok || run.previous === 0) return false;
  return runChance(sent - run.length, lost, run.previous) < CUT_ALPHA;
}

/**
 * One cell's view on its own: judged on its trailing successes when they prove a heal, or when
 * they follow a proven hard failure (the window is stale: until enough successes are in to be
 * judged, the cell is unknown rather than judged on the fault's old losses); else its window.
 * A hard failure needs the link's other kinds too (cutView).
 */
export function cellView(sent: number, lost: number, run: unknown): FreshCounts {
  const windowView: FreshCounts = { sent, lost, fresh: 'window' };
  const r = validRun(sent, lost, run);
  if (r === undefined || !r.ok) return windowView;
  if (lost === 0) return windowView;
  return okRunChance(sent, lost, r)! < FRESH_ALPHA || provenFailureBefore(sent, lost, r)
    ? { sent: r.length, lost: 0, fresh: 'healed' }
    : windowView;
}

/**
 * The probability that independent chances (p-values) multiply to `product` or less: for k
 * uniforms, product × Σ_{j<k} (−ln product)^j / j!. Without it, three kinds would each need
 * only a third of the evidence, and a lossy link would fake a cut a hundred times too often.
 */
export function combinedChance(chances: readonly number[]): number {
  if (chances.length === 0) return 1;
  const product = chances.reduce((a, b) => a * b, 1);
  if (product <= 0) return 0;
  const l = -Math.log(product);
  let term = 1;
  let sum = 1;
  for (let j = 1; j < chances.length; j++) {
    term *= l / j;
    sum += term;
  }
  return Math.min(1, product * sum);
}

/** One cell of a cut group: its window counts and trailing run. */
export interface CutInput {
  readonly sent: number;
  readonly lost: number;
  readonly run: unknown;
}

/**
 * Whether a group of cells (one link's probe kinds of one size) is a hard failure: every cell
 * with results ends in failures, and together those runs are too unlikely under the loss seen
 * before them. Then each is judged on its run only: `length` of `length` lost.
 */
export function cutView(cells: readonly CutInput[]): FreshCounts[] | undefined {
  const withData = cells.filter((c) => c.sent > 0);
  if (withData.length === 0) return undefined;
  const chances: number[] = [];
  const views: FreshCounts[] = [];
  for (const c of withData) {
    const r = validRun(c.sent, c.lost, c.run);
    if (r === undefined || r.ok) return undefined;
    chances.push(failRunChance(c.sent, c.lost, r)!);
    views.push({ sent: r.length, lost: r.length, fresh: 'failing' });
  }
  if (combinedChance(chances) >= CUT_ALPHA) return undefined;
  return cells.map((c) =>
    c.sent > 0 ? views[withData.indexOf(c)]! : { sent: c.sent, lost: c.lost, fresh: 'window' },
  );
}
