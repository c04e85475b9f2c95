// What every per-family recorder shares: the agent's metrics (one Registry, created from the
// catalogue), who this agent is, and the labels every agent series starts with.

import type { Self } from '../core/types.ts';
import type { Metrics } from './catalogue.ts';

export interface RecorderContext {
  readonly m: Metrics;
  readonly self: Self;
  /** source_node and network: this agent. */
  readonly selfLabels: { readonly source_node: string; readonly network: string };
}

/** Quantile label values of the windowed gauges, and the summary field each one reads. */
export const QUANTILES = [
  ['0.5', 'p50'],
  ['0.9', 'p90'],
  ['0.99', 'p99'],
] as const;
