// The trailing run of a window: how many results at its newest end are alike (all successes or
// all failures), and how long the opposite run before that one is. Triage reads it to judge a
// path on fresh samples (src/analysis/fresh.ts): a run of failures after a clean window is a cut
// named in seconds, and a run of successes after a failing one is a path healed, without
// waiting for the window to forget the fault. Shared by the peer, DNS and port windows.

/** The newest run of like results in a window, and the opposite run just before it. */
export interface TrailingRun {
  /** Whether the newest results succeeded. */
  readonly ok: boolean;
  /** How many results in a row, counted back from the newest, have that outcome (≥ 1). */
  readonly length: number;
  /** The length of the run of the opposite outcome right before it (0 when none is left). */
  readonly previous: number;
}

/**
 * The trailing run of `size` results, `okAt(k)` telling whether the k-th from the newest end
 * succeeded. Walks back at most the window (size), so it costs what the window holds; null for
 * an empty window.
 */
export function trailingRun(size: number, okAt: (k: number) => boolean): TrailingRun | null {
  if (size <= 0) return null;
  const ok = okAt(0);
  let length = 1;
  while (length < size && okAt(length) === ok) length++;
  let previous = 0;
  while (length + previous < size && okAt(length + previous) !== ok) previous++;
  return { ok, length, previous };
}
