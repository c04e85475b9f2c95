// The latency rules, broadest cause first, each taking the slow links it explains: a zone pair,
// a node (or the cluster), then single pairs. They run after every loss and reachability rule
// and judge only the links those left alone (links.ts), against each link's own recent
// baseline, which the controller keeps (src/controller/latency-history.ts) and hands in with
// the snapshot. Without baselines (one matrix, the first minutes) they find nothing.

import type { Rule } from '../model.ts';
import { latencyView, type LatencyRule } from './links.ts';
import { latencyNodes } from './node.ts';
import { latencyPairs } from './pair.ts';
import { latencyZonePairs } from './zone-pair.ts';

/** Every latency rule in order; each one sees only the slow links the earlier ones left. */
export const LATENCY_RULES: readonly LatencyRule[] = [latencyZonePairs, latencyNodes, latencyPairs];

export const latencyFindings: Rule = (ctx) => {
  if (ctx.snapshot.baselines === undefined) return [];
  const v = latencyView(ctx);
  if (v.slow.length === 0) return [];
  return LATENCY_RULES.flatMap((rule) => rule(v));
};
