// The matrix summarised by group (GET /api/v1/matrix?summary=zone or ?summary=node on the
// controller): one entry per ordered pair of groups that some agent measured, with the
// probes, losses and round trips of its cells pooled, and each group's agents. What a web UI
// draws at scale instead of every cell: at 2,000 agents the full matrix is 156 MB of JSON
// (bench section 10), its zone summary a few KB and its node summary about a cell's share of a
// node pair. The controller builds it (src/controller/matrix-summary.ts) from the same matrix
// /api/v1/matrix serves; nothing here judges (triage does).

import { z } from 'zod';
import { API_VERSION } from './agent-row.ts';

/** How cells are grouped: by the zone of each end's node, or by node. */
export const SUMMARY_GROUPINGS = ['zone', 'node'] as const;
export type SummaryGrouping = (typeof SUMMARY_GROUPINGS)[number];

export const summaryGroupSchema = z
  .object({
    /** The zone or node name; '' for nodes whose zone no agent reported. */
    name: z.string(),
    nodes: z.number().int().nonnegative(),
    agents: z.number().int().nonnegative(),
    /** Agents whose row this round was valid. */
    agentsOk: z.number().int().nonnegative(),
  })
  .readonly();
export type SummaryGroup = z.infer<typeof summaryGroupSchema>;

/** Every cell from a node of `source` to a node of `target`, pooled. */
export const summaryPairSchema = z
  .object({
    source: z.string(),
    target: z.string(),
    /** Distinct (source agent, target agent) pairs measured. */
    agentPairs: z.number().int().nonnegative(),
    cells: z.number().int().nonnegative(),
    sent: z.number().int().nonnegative(),
    lost: z.number().int().nonnegative(),
    /** lost / sent over every cell; null when nothing was sent. */
    lossRatio: z.number().min(0).max(1).nullable(),
    /** Cells that lost any probe in their window. */
    lossyCells: z.number().int().nonnegative(),
    /** The highest loss ratio of one cell; null when no cell has one. */
    worstLossRatio: z.number().min(0).max(1).nullable(),
    /** Median of the small probes' RTT p50 over the cells that have one, seconds. */
    rttP50Seconds: z.number().nullable(),
    /** The highest small-probe RTT p99 of one cell, seconds. */
    rttP99MaxSeconds: z.number().nullable(),
  })
  .readonly();
export type SummaryPair = z.infer<typeof summaryPairSchema>;

export const matrixSummarySchema = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal('MatrixSummary'),
    /** The summarised matrix's generatedAt. */
    generatedAt: z.string(),
    by: z.enum(SUMMARY_GROUPINGS),
    groups: z.array(summaryGroupSchema).readonly(),
    pairs: z.array(summaryPairSchema).readonly(),
  })
  .readonly();
export type MatrixSummary = z.infer<typeof matrixSummarySchema>;
