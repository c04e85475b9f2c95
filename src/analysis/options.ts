// Triage's thresholds in one place, with their defaults and the reason for each, so the rules
// in docs/triage.md and the code read the same numbers. Bad overrides (NaN, out of range) fall
// back to the default instead of throwing: triage runs every round and must never crash.

export interface TriageOptions {
  /** Probes a cell needs in its window before its loss is judged; fewer is "unknown". */
  readonly minProbes: number;
  /**
   * Loss ratio from which a path is "failing" (the reachability kinds: cut, not just lossy),
   * judged with significance: the loss's confidence interval must lie at or above it.
   */
  readonly failRatio: number;
  /** Loss ratio from which a path is "lossy" (pair-loss), judged the same way. */
  readonly lossyRatio: number;
  /**
   * Confidence of every statistical test (two-sided interval; a claim needs the interval wholly
   * beyond its threshold). docs/triage.md counts the tests a round makes.
   */
  readonly confidence: number;
  /**
   * "A fails while B works": besides being significant, A's loss ratio must exceed B's by at
   * least this (MTU-sized vs small, TCP vs what the path's loss predicts, overlay vs node
   * network, one direction vs the other).
   */
  readonly contrast: number;
  /**
   * "Most peers": share of a node's peers with known status that must show the symptom for
   * the node to be named as the cause (isolated, overlay, host network, hubs of other kinds).
   */
  readonly hubShare: number;
  /** Zone pairs: share of the node pairs between two zones that must fail. */
  readonly zoneShare: number;
  /**
   * STAMP direction: share of the attributed loss (forward + reverse) one direction must hold
   * for a failing pair to count as one-way.
   */
  readonly directionShare: number;
  /** DNS lookups a DNS cell needs before it is judged. */
  readonly minDnsQueries: number;
  /** A DNS cell is failing when its answered ratio is below this. */
  readonly dnsAnsweredRatio: number;
  /** "Most sources" for DNS servers and port targets: share of judged sources that must fail. */
  readonly sourceShare: number;
  /** Connects a port cell needs before it is judged. */
  readonly minPortChecks: number;
  /** An expected-open port is failing when this share of its connects fail. */
  readonly portFailRatio: number;
  /** An expected-closed port is reported when its open ratio is above this. */
  readonly closedOpenRatio: number;
  /** A prober is starved when its late ratio reaches this. */
  readonly lateRatio: number;
  /** ... or when its main or engine event-loop p99 delay reaches this (seconds). */
  readonly eventLoopP99Seconds: number;
  /** Evidence lines kept per finding (the worst first); the rest become one "... and N more". */
  readonly maxEvidence: number;
  /** Samples (history buckets) a link's RTT baseline needs before the latency kinds judge it. */
  readonly latencyMinSamples: number;
  /** A latency shift must exceed this many robust standard deviations (1.4826 × MAD). */
  readonly latencyMadK: number;
  /** ... and be at least this many times the baseline median ... */
  readonly latencyFactor: number;
  /** ... and at least this much above it (seconds), so sub-millisecond jitter never counts. */
  readonly latencyFloorSeconds: number;
  /**
   * A failed read of an agent (timeout, unreachable) younger than this (matrix time minus the
   * agent's lastSeen) is not yet a coverage gap: the agent's peers' rows may predate the cut
   * that made the read fail, and the next round tells a cut node from a blind spot.
   */
  readonly readGraceSeconds: number;
}

export const DEFAULT_TRIAGE_OPTIONS: TriageOptions = {
  // 60 s window at the default 1 probe/s gives 60; 10 leaves room for slower intervals.
  minProbes: 10,
  // A cut, not heavy loss: 80% random loss is pair-loss, and 60 of 60 lost (99% interval
  // 90.04-100%) is the fewest probes one cell needs to be called failing on its own.
  failRatio: 0.9,
  lossyRatio: 0.05,
  confidence: 0.99,
  contrast: 0.5,
  hubShare: 0.75,
  zoneShare: 0.8,
  directionShare: 0.9,
  // DNS and ports run every 5 s by default: 12 per 60 s window.
  minDnsQueries: 4,
  dnsAnsweredRatio: 0.9,
  sourceShare: 0.75,
  minPortChecks: 4,
  portFailRatio: 0.5,
  closedOpenRatio: 0,
  lateRatio: 0.2,
  eventLoopP99Seconds: 0.25,
  maxEvidence: 10,
  // A third of the default hour of history (60 one-minute buckets): 20 minutes of history.
  latencyMinSamples: 20,
  // k = 3 robust standard deviations, 2x, +0.5 ms: each alone lets through something ordinary
  // (a perfectly flat history, a 20 µs path doubling, a noisy path's usual swings).
  latencyMadK: 3,
  latencyFactor: 2,
  latencyFloorSeconds: 0.0005,
  // One round at the controller's default 5 s pull interval and 3 s pull timeout (8 s apart).
  readGraceSeconds: 10,
};

type Range = readonly [min: number, max: number, integer: boolean];

const RANGES: Record<keyof TriageOptions, Range> = {
  minProbes: [1, 1e9, true],
  failRatio: [1e-9, 1, false],
  lossyRatio: [1e-9, 1, false],
  confidence: [0.5, 0.999999, false],
  contrast: [0, 1, false],
  hubShare: [0, 1, false],
  zoneShare: [0, 1, false],
  directionShare: [0.5, 1, false],
  minDnsQueries: [1, 1e9, true],
  dnsAnsweredRatio: [0, 1, false],
  sourceShare: [0, 1, false],
  minPortChecks: [1, 1e9, true],
  portFailRatio: [0, 1, false],
  closedOpenRatio: [0, 1, false],
  lateRatio: [0, 1, false],
  eventLoopP99Seconds: [0, 1e6, false],
  maxEvidence: [1, 1000, true],
  latencyMinSamples: [1, 1e6, true],
  latencyMadK: [0, 1000, false],
  latencyFactor: [1, 1000, false],
  latencyFloorSeconds: [0, 60, false],
  readGraceSeconds: [0, 86_400, false],
};

/** Defaults overlaid with the valid parts of `overrides`; invalid values are ignored. */
export function resolveOptions(overrides: Partial<TriageOptions> = {}): TriageOptions {
  const out: Record<string, number> = { ...DEFAULT_TRIAGE_OPTIONS };
  for (const key of Object.keys(RANGES) as (keyof TriageOptions)[]) {
    const v = overrides[key] as unknown;
    const [min, max, integer] = RANGES[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) continue;
    if (integer && !Number.isInteger(v)) continue;
    out[key] = v;
  }
  // lossy must not exceed failing, or "lossy but not failing" would be empty and confusing.
  if (out.lossyRatio! > out.failRatio!) out.lossyRatio = out.failRatio!;
  return out as unknown as TriageOptions;
}
