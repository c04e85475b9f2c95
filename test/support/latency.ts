// Test helper for the latency kinds: a baseline for every link of a fixture snapshot (as the
// controller's history would hand triage after a quiet hour), and slowing some cells down the
// way a congested queue does. Used with test/support/fixtures.ts.

import { linkRtt } from '../../src/analysis/latency/rtt.ts';
import { linkKeyOf } from '../../src/analysis/model.ts';
import type { Baselines, Cell, LinkBaseline, Snapshot } from '../../src/analysis/types.ts';
import type { SnapshotBuilder } from './fixtures.ts';

export interface BaselineOptions {
  /** History samples behind each baseline. Default 60 (an hour of minutes). */
  readonly samples?: number;
  /** MAD as a share of the median. Default 0.05. */
  readonly madShare?: number;
}

/** A baseline per link from the builder's cells as they are now (call before breaking them). */
export function baselinesOf(b: SnapshotBuilder, o: BaselineOptions = {}): Baselines {
  const byLink = new Map<string, Cell[]>();
  for (const c of b.cells) {
    const k = linkKeyOf(c.sourceNode, c.sourceNetwork, c.targetNode, c.targetNetwork);
    byLink.set(k, [...(byLink.get(k) ?? []), c]);
  }
  const samples = o.samples ?? 60;
  const share = o.madShare ?? 0.05;
  const links = new Map<string, LinkBaseline>();
  for (const [k, cells] of byLink) {
    const r = linkRtt(cells, 1);
    if (r === undefined) continue;
    links.set(k, {
      p50: { median: r.p50, mad: r.p50 * share, samples },
      p99: { median: r.p99, mad: r.p99 * share, samples },
    });
  }
  return { minutes: 60, links };
}

/** Multiplies the RTT quantiles of matching cells: p50 and below by `typical`, p90 up by `tail`. */
export function slow(
  b: SnapshotBuilder,
  pred: (c: Cell) => boolean,
  typical: number,
  tail = typical,
): SnapshotBuilder {
  for (const c of b.cells) {
    if (!pred(c) || c.rttSeconds === null) continue;
    const r = c.rttSeconds;
    c.rttSeconds = {
      min: r.min * typical,
      p50: r.p50 * typical,
      mean: r.mean * typical,
      p90: r.p90 * tail,
      p99: r.p99 * tail,
      max: r.max * tail,
    };
  }
  return b;
}

/** Adds `seconds` to the RTT quantiles of matching cells (a fixed extra delay). */
export function delay(
  b: SnapshotBuilder,
  pred: (c: Cell) => boolean,
  seconds: number,
): SnapshotBuilder {
  for (const c of b.cells) {
    if (!pred(c) || c.rttSeconds === null) continue;
    const r = c.rttSeconds;
    c.rttSeconds = {
      min: r.min + seconds,
      p50: r.p50 + seconds,
      p90: r.p90 + seconds,
      p99: r.p99 + seconds,
      max: r.max + seconds,
      mean: r.mean + seconds,
    };
  }
  return b;
}

/** The snapshot with baselines. */
export const withBaselines = (s: Snapshot, baselines: Baselines): Snapshot => ({ ...s, baselines });

export const touches =
  (node: string) =>
  (c: Cell): boolean =>
    c.sourceNode !== c.targetNode && (c.sourceNode === node || c.targetNode === node);

export const betweenNodes =
  (a: string, b: string) =>
  (c: Cell): boolean =>
    (c.sourceNode === a && c.targetNode === b) || (c.sourceNode === b && c.targetNode === a);
