// Each link's round-trip time over its own recent history, for triage's latency kinds. Triage
// is a pure function of one snapshot, so the history lives here, in the controller: every round
// records each link's pooled small-probe RTT p50 and p99 (the same reading triage makes,
// src/analysis/latency/rtt.ts), and hands triage the median and MAD of the last `minutes`.
//
// Bounded memory. The window is cut into BUCKETS (60) buckets (one minute each by default); a
// link keeps one value per bucket and quantile (the median of the rounds in that bucket) in a
// ring, so a link costs a fixed amount whatever the round interval: about 2 KB (two Float32
// rings and an Int32 ring of 60, up to 16 rounds' values of the open bucket, the map entry;
// measured 20 MB for 10,000 links). At most `maxLinks` links are tracked (default 10,000);
// links beyond the cap are not (and counted), and a link not seen for a whole window is
// forgotten, so churn frees its room. CPU at 10,000 links (a busy 2-core machine): ~40 ms a
// round to record, 120-200 ms once a bucket to recompute the baselines, cached in between.
//
// The baseline is the median of a link's completed buckets and their MAD, never the open
// bucket: the round being judged is not part of its own baseline. It includes a fault's own
// buckets once they complete, so a shift that lasts longer than half the window becomes the
// new normal (docs/triage.md says so): the kinds report changes, not levels.

import { linkRtt, mad, median } from '../analysis/latency/rtt.ts';
import { linkKeyOf } from '../analysis/model.ts';
import { DEFAULT_TRIAGE_OPTIONS } from '../analysis/options.ts';
import type { Baselines, LinkBaseline, RttBaseline } from '../analysis/types.ts';
import type { Cell, Matrix } from '../api/matrix.ts';

/** Buckets per window: one a minute over the default hour. */
export const BUCKETS = 60;
/** Rounds kept per open bucket; more (a round interval under a second) are thinned. */
const MAX_ROUNDS_PER_BUCKET = 16;

export interface LatencyHistoryOptions {
  /** How far back the baseline reaches (triage.latencyBaselineMinutes). */
  readonly minutes: number;
  /** Links tracked at most (triage.latencyMaxLinks). */
  readonly maxLinks: number;
  /** Answered probes a cell needs to count (default: triage's minProbes). */
  readonly minAnswered?: number;
}

/** What the controller needs of a history: the baselines before a round, then its record. */
export interface RttHistory {
  baselines(nowMs: number): Baselines;
  record(matrix: Matrix, nowMs: number): void;
}

interface Track {
  readonly p50: Float32Array;
  readonly p99: Float32Array;
  /** Bucket number each slot holds (relative to the history's epoch); -1 when empty. */
  readonly bucket: Int32Array;
  /** The open bucket and its rounds' values. */
  open: number;
  openP50: number[];
  openP99: number[];
  /** Last completed-bucket count the memo was computed for, and the memo. */
  memoAt: number;
  memo: LinkBaseline | undefined;
}

function newTrack(): Track {
  return {
    p50: new Float32Array(BUCKETS),
    p99: new Float32Array(BUCKETS),
    bucket: new Int32Array(BUCKETS).fill(-1),
    open: -1,
    openP50: [],
    openP99: [],
    memoAt: -1,
    memo: undefined,
  };
}

/** Closes the open bucket into its ring slot. */
function close(t: Track): void {
  if (t.open < 0 || t.openP50.length === 0) return;
  const slot = t.open % BUCKETS;
  t.p50[slot] = median(t.openP50);
  t.p99[slot] = median(t.openP99);
  t.bucket[slot] = t.open;
  t.openP50 = [];
  t.openP99 = [];
  t.memoAt = -1;
}

function stats(xs: readonly number[]): RttBaseline {
  const med = median(xs);
  return { median: med, mad: mad(xs, med), samples: xs.length };
}

export class LatencyHistory implements RttHistory {
  private readonly tracks = new Map<string, Track>();
  private readonly bucketMs: number;
  private readonly minAnswered: number;
  private epoch: number | undefined;
  /** Links not tracked because the cap was reached (since start). */
  refused = 0;

  constructor(private readonly opts: LatencyHistoryOptions) {
    if (!(opts.minutes > 0) || !(opts.maxLinks >= 0))
      throw new Error(
        `latency history: minutes > 0 and maxLinks >= 0, got ${JSON.stringify(opts)}`,
      );
    this.bucketMs = (opts.minutes * 60_000) / BUCKETS;
    this.minAnswered = opts.minAnswered ?? DEFAULT_TRIAGE_OPTIONS.minProbes;
  }

  /** Links tracked now. */
  size(): number {
    return this.tracks.size;
  }

  private bucketOf(nowMs: number): number {
    const abs = Math.floor(nowMs / this.bucketMs);
    this.epoch ??= abs;
    return Math.max(0, abs - this.epoch);
  }

  /** Records one round's matrix; forgets links not seen for a whole window. */
  record(matrix: Matrix, nowMs: number): void {
    const b = this.bucketOf(nowMs);
    const byLink = new Map<string, Cell[]>();
    const cells: readonly Cell[] = Array.isArray(matrix?.cells) ? matrix.cells : [];
    for (const c of cells) {
      if (c === null || typeof c !== 'object' || c.size !== 'small') continue;
      const key = linkKeyOf(c.sourceNode, c.sourceNetwork, c.targetNode, c.targetNetwork);
      const list = byLink.get(key);
      if (list === undefined) byLink.set(key, [c]);
      else list.push(c);
    }
    for (const [key, cells] of byLink) {
      const rtt = linkRtt(cells, this.minAnswered);
      if (rtt === undefined) continue;
      let t = this.tracks.get(key);
      if (t === undefined) {
        if (this.tracks.size >= this.opts.maxLinks) {
          this.refused++;
          continue;
        }
        t = newTrack();
        this.tracks.set(key, t);
      }
      if (t.open !== b) {
        close(t);
        t.open = b;
      }
      if (t.openP50.length < MAX_ROUNDS_PER_BUCKET) {
        t.openP50.push(rtt.p50);
        t.openP99.push(rtt.p99);
      }
    }
    for (const [key, t] of this.tracks) if (t.open <= b - BUCKETS) this.tracks.delete(key);
  }

  /** Every tracked link's baseline from its buckets completed before `nowMs`'s, within the window. */
  baselines(nowMs: number): Baselines {
    const b = this.bucketOf(nowMs);
    const links = new Map<string, LinkBaseline>();
    for (const [key, t] of this.tracks) {
      if (t.open < b) close(t);
      if (t.memo === undefined || t.memoAt !== b) {
        const p50: number[] = [];
        const p99: number[] = [];
        for (let i = 0; i < BUCKETS; i++) {
          const at = t.bucket[i]!;
          if (at < 0 || at >= b || at < b - BUCKETS) continue;
          p50.push(t.p50[i]!);
          p99.push(t.p99[i]!);
        }
        t.memo = p50.length > 0 ? { p50: stats(p50), p99: stats(p99) } : undefined;
        t.memoAt = b;
      }
      if (t.memo !== undefined) links.set(key, t.memo);
    }
    return { minutes: this.opts.minutes, links };
  }
}
