// A link's round-trip time now, read the same way by the latency kinds and by the controller's
// history (src/controller/latency-history.ts): the median, over the link's small-probe cells
// (udp, icmp, tcp), of each cell's window p50, and the same of its p99. The median over the
// protocols keeps one protocol's quirk (udp answered by a busy agent's user-space responder,
// ICMP rate limiting) from moving the link's figure. Also the robust statistics of a history
// (median, MAD) and the shift test every latency kind applies.

import type { TriageOptions } from '../options.ts';
import type { Cell, RttBaseline } from '../types.ts';

/** MAD × this estimates the standard deviation of normally distributed samples. */
export const MAD_SCALE = 1.4826;

export const RTT_QUANTILES = ['p50', 'p99'] as const;
export type RttQuantile = (typeof RTT_QUANTILES)[number];

export interface LinkRtt {
  readonly p50: number;
  readonly p99: number;
  /** Cells pooled. */
  readonly cells: number;
}

function pos(x: unknown): number | undefined {
  return typeof x === 'number' && Number.isFinite(x) && x > 0 ? x : undefined;
}

/** The median of some numbers (NaN when there are none). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The median absolute deviation from `med`. */
export function mad(xs: readonly number[], med: number): number {
  return median(xs.map((x) => Math.abs(x - med)));
}

/**
 * The pooled RTT of a link's small cells that have at least `minAnswered` answered probes in
 * their window (fewer make a p99 of nothing); undefined when none has.
 */
export function linkRtt(cells: Iterable<Cell>, minAnswered: number): LinkRtt | undefined {
  const p50s: number[] = [];
  const p99s: number[] = [];
  for (const c of cells) {
    if (c === null || typeof c !== 'object' || c.size !== 'small') continue;
    const sent = pos(c.sent) ?? 0;
    const answered = sent - Math.min(sent, pos(c.lost) ?? 0);
    if (answered < minAnswered) continue;
    const p50 = pos(c.rttSeconds?.p50);
    const p99 = pos(c.rttSeconds?.p99);
    if (p50 === undefined || p99 === undefined) continue;
    p50s.push(p50);
    p99s.push(p99);
  }
  if (p50s.length === 0) return undefined;
  return { p50: median(p50s), p99: median(p99s), cells: p50s.length };
}

/** One quantile of a link shifted against its baseline. */
export interface Shift {
  readonly quantile: RttQuantile;
  readonly now: number;
  readonly base: RttBaseline;
  /** now / baseline median (Infinity for a zero median). */
  readonly factor: number;
}

/**
 * Whether `now` is a shift from the baseline: enough history, and above the median by more than
 * latencyMadK robust standard deviations, by at least latencyFactor times, and by at least
 * latencyFloorSeconds. Only slower counts: a path getting faster is not a fault.
 */
export function shiftOf(
  quantile: RttQuantile,
  now: number,
  base: RttBaseline | undefined,
  opts: TriageOptions,
): Shift | undefined {
  if (base === null || typeof base !== 'object' || !(base.samples >= opts.latencyMinSamples))
    return undefined;
  const med = base.median;
  const spread = base.mad;
  if (!Number.isFinite(med) || med < 0 || !Number.isFinite(spread) || spread < 0) return undefined;
  if (!(now > med + opts.latencyMadK * MAD_SCALE * spread)) return undefined;
  if (!(now >= opts.latencyFactor * med)) return undefined;
  if (!(now - med >= opts.latencyFloorSeconds)) return undefined;
  return { quantile, now, base, factor: med > 0 ? now / med : Infinity };
}

/** A duration in seconds as milliseconds with three significant digits ("0.213 ms", "12.4 ms"). */
export function ms(s: number): string {
  const v = s * 1000;
  return `${v >= 100 ? Math.round(v) : v.toPrecision(3)} ms`;
}

export function times(f: number): string {
  return Number.isFinite(f) ? `${f >= 10 ? Math.round(f) : f.toFixed(1)}×` : 'from 0';
}
