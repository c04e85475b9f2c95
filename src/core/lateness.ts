// Buckets of a run's lateness (how long after its due time a scheduled run started), seconds:
// the podmesh_probe_lateness_seconds histogram and the window's coarse p99 (src/store) share
// them, so the p99 the results row reports is a bound the histogram also has.

export const LATENESS_BUCKETS = [
  0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];
