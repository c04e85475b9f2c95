// The controller's matrix (GET /api/v1/matrix on the controller): every agent's row flattened
// into cells, plus which agents answered. The one declaration of that shape: the controller
// builds it (src/controller/matrix.ts), triage reads it (src/analysis), the web UI renders it
// (src/ui/app.js, through JSDoc imports) and `podmesh diagnose` summarises it. The cells reuse
// the row's field declarations (src/api/agent-row.ts), so a field means the same in both.
// The types are readonly: readers never change a matrix. Nothing parses a matrix at run time,
// so zod's freezing of parsed readonly values never applies.

import { z } from 'zod';
import { NETWORKS, PROBE_KINDS, SIZE_CLASSES } from '../core/types.ts';
import {
  API_VERSION,
  apiServerCheckSchema,
  dnsCheckSchema,
  peerResultSchema,
  peerRowSchema,
  portCheckSchema,
  selfHealthSchema,
} from './agent-row.ts';

/** Why an agent's row is missing from this round: a closed set, also a metric label value. */
export const AGENT_STATES = ['ok', 'unreachable', 'timeout', 'http-error', 'invalid'] as const;
export type AgentState = (typeof AGENT_STATES)[number];

export const agentStatusSchema = z
  .object({
    node: z.string(),
    network: z.enum(NETWORKS),
    url: z.string(),
    state: z.enum(AGENT_STATES),
    detail: z.string().optional(),
    /** The agent's zone, from its last valid row ('' when unknown). */
    zone: z.string(),
    /** The prober's own health from its last valid row, if any. */
    self: selfHealthSchema.optional(),
    /** When a valid row was last received from this agent (ISO time), or null. */
    lastSeen: z.string().nullable(),
  })
  .readonly();
export type AgentStatus = z.infer<typeof agentStatusSchema>;

/** Which agent measured a cell. */
const sourceFields = { sourceNode: z.string(), sourceNetwork: z.enum(NETWORKS) };

/** One protocol × size from one agent to one peer agent. */
export const cellSchema = z
  .object({
    ...sourceFields,
    targetNode: z.string(),
    targetNetwork: z.enum(NETWORKS),
    path: peerRowSchema.shape.path,
    scope: peerRowSchema.shape.scope,
    protocol: z.enum(PROBE_KINDS),
    size: z.enum(SIZE_CLASSES),
    ...peerResultSchema.pick({
      sent: true,
      lost: true,
      lossRatio: true,
      forwardLost: true,
      reverseLost: true,
      rttSeconds: true,
      lastFailure: true,
    }).shape,
    /** The trailing run (agent-row.ts); absent when the agent predates it. */
    run: peerResultSchema.shape.run.optional(),
    /** A rotating visit's cell (agent-row.ts); absent when the agent predates rotation. */
    rotating: peerRowSchema.shape.rotating.optional(),
    /** When the cell's newest result was sent (agent-row.ts); absent likewise. */
    measuredAt: peerResultSchema.shape.measuredAt.optional(),
  })
  .readonly();
export type Cell = z.infer<typeof cellSchema>;

/** One DNS check of one agent: (source agent, server, query, transport). */
export const dnsCellSchema = z
  .object({
    ...sourceFields,
    ...dnsCheckSchema.pick({
      serverKind: true,
      server: true,
      query: true,
      name: true,
      transport: true,
      sent: true,
      failed: true,
      answeredRatio: true,
      outcomes: true,
      lastOutcome: true,
      lastDetail: true,
      latencySeconds: true,
    }).shape,
    /** The trailing run (agent-row.ts); absent when the agent predates it. */
    run: dnsCheckSchema.shape.run.optional(),
  })
  .readonly();
export type DnsCell = z.infer<typeof dnsCellSchema>;

/** One port target as one agent sees it. */
export const portCellSchema = z
  .object({
    ...sourceFields,
    ...portCheckSchema.pick({
      target: true,
      address: true,
      port: true,
      expected: true,
      sent: true,
      open: true,
      openRatio: true,
      outcomes: true,
      lastOutcome: true,
      lastDetail: true,
    }).shape,
    /** The trailing run (agent-row.ts); absent when the agent predates it. */
    run: portCheckSchema.shape.run.optional(),
  })
  .readonly();
export type PortCell = z.infer<typeof portCellSchema>;

/** One way to the API server (the VIP, one endpoint) as one agent sees it. */
export const apiServerCellSchema = z
  .object({
    ...sourceFields,
    ...apiServerCheckSchema.pick({
      target: true,
      kind: true,
      address: true,
      port: true,
      sent: true,
      failed: true,
      okRatio: true,
      outcomes: true,
      lastOutcome: true,
      lastDetail: true,
      readyz: true,
      run: true,
    }).shape,
  })
  .readonly();
export type ApiServerCell = z.infer<typeof apiServerCellSchema>;

export const matrixSchema = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal('Matrix'),
    generatedAt: z.string(),
    agents: z.array(agentStatusSchema).readonly(),
    nodes: z.array(z.string()).readonly(),
    /** Zone of each node, as its agents report it. */
    zones: z.record(z.string(), z.string()).readonly(),
    cells: z.array(cellSchema).readonly(),
    dns: z.array(dnsCellSchema).readonly(),
    ports: z.array(portCellSchema).readonly(),
    apiserver: z.array(apiServerCellSchema).readonly(),
  })
  .readonly();
export type Matrix = z.infer<typeof matrixSchema>;
