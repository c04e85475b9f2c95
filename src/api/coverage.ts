// Agent coverage (GET /api/v1/coverage on the controller): per schedulable node, whether a Ready
// agent of each kind runs there and, if not, why. The controller computes it from Nodes, Pods
// and Events (src/controller/coverage.ts), triage reads it (src/analysis), the web UI shows it.

import { z } from 'zod';
import { API_VERSION } from './agent-row.ts';

/** Closed set, used as a label value; `detail` carries the free text. */
export const COVERAGE_REASONS = [
  'ready',
  'missing',
  'unschedulable',
  'pending',
  'sandbox-error',
  'crash-loop',
  'image-pull',
  'config-error',
  'not-ready',
  'terminating',
] as const;
export type CoverageReason = (typeof COVERAGE_REASONS)[number];

export const agentCoverageSchema = z
  .object({
    covered: z.boolean(),
    reason: z.enum(COVERAGE_REASONS),
    detail: z.string(),
    /** The agent Pod that decided, or null when there is none. */
    pod: z.string().nullable(),
  })
  .readonly();
export type AgentCoverage = z.infer<typeof agentCoverageSchema>;

export const nodeCoverageSchema = z
  .object({
    node: z.string(),
    pod: agentCoverageSchema,
    host: agentCoverageSchema,
  })
  .readonly();
export type NodeCoverage = z.infer<typeof nodeCoverageSchema>;

export const coverageReportSchema = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal('Coverage'),
    /** null when the controller can't tell (static agent lists, the demo). */
    nodes: z.array(nodeCoverageSchema).readonly().nullable(),
  })
  .readonly();
export type CoverageReport = z.infer<typeof coverageReportSchema>;
