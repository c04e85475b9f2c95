// The matrix: every agent's row (its /api/v1/results) put side by side, plus which agents
// answered. Pure functions only, so triage and the UI can be tested on hand-made snapshots.

import { z } from 'zod';

const rtt = z.object({
  min: z.number(),
  p50: z.number(),
  p90: z.number(),
  p99: z.number(),
  max: z.number(),
  mean: z.number(),
});

/** What an agent's /api/v1/results must look like; anything else is an invalid response. */
export const agentResultsSchema = z.object({
  apiVersion: z.literal('podmesh.io/v1'),
  kind: z.literal('AgentResults'),
  source: z.object({
    node: z.string(),
    network: z.enum(['pod', 'host']),
    zone: z.string(),
    address: z.string(),
  }),
  generatedAt: z.string(),
  windowSeconds: z.number(),
  intervalMs: z.number(),
  probes: z.record(z.string(), z.unknown()),
  peers: z
    .array(
      z.object({
        node: z.string(),
        network: z.enum(['pod', 'host']),
        zone: z.string(),
        address: z.string(),
        path: z.string(),
        scope: z.string(),
        results: z
          .array(
            z.object({
              protocol: z.enum(['udp', 'icmp', 'tcp']),
              size: z.enum(['small', 'mtu']),
              sent: z.number().int().nonnegative(),
              lost: z.number().int().nonnegative(),
              lossRatio: z.number().min(0).max(1).nullable(),
              forwardLost: z.number().int().nonnegative(),
              reverseLost: z.number().int().nonnegative(),
              duplicates: z.number().int().nonnegative(),
              reordered: z.number().int().nonnegative(),
              rttSeconds: rtt.nullable(),
              lastSuccess: z.string().nullable(),
              lastFailure: z.string().nullable(),
            }),
          )
          .max(64),
      }),
    )
    .max(10_000),
  dns: z
    .array(
      z.object({
        serverKind: z.enum(['service', 'replica']),
        server: z.string(),
        query: z.string(),
        name: z.string(),
        transport: z.enum(['udp', 'tcp']),
        sent: z.number().int().nonnegative(),
        failed: z.number().int().nonnegative(),
        answeredRatio: z.number().min(0).max(1).nullable(),
        outcomes: z.record(z.string(), z.number()),
        lastOutcome: z.string().nullable(),
        lastDetail: z.string().nullable(),
        latencySeconds: z.object({ p50: z.number(), p99: z.number(), max: z.number() }).nullable(),
      }),
    )
    .max(10_000)
    .default([]),
  ports: z
    .array(
      z.object({
        target: z.string(),
        address: z.string(),
        port: z.number().int(),
        expected: z.enum(['open', 'closed']),
        sent: z.number().int().nonnegative(),
        open: z.number().int().nonnegative(),
        openRatio: z.number().min(0).max(1).nullable(),
        outcomes: z.record(z.string(), z.number()),
        lastOutcome: z.string().nullable(),
        lastDetail: z.string().nullable(),
        connectSeconds: z.object({ p50: z.number(), p99: z.number(), max: z.number() }).nullable(),
      }),
    )
    .max(10_000)
    .default([]),
  /** The prober's own health: a starved agent's latency numbers can't be trusted. */
  self: z
    .object({
      lateRatio: z.number().min(0).max(1).nullable(),
      latenessP99Seconds: z.number().nullable(),
      eventLoopP99Seconds: z.object({ main: z.number().nullable(), engine: z.number().nullable() }),
    })
    .optional(),
});
export type AgentRow = z.infer<typeof agentResultsSchema>;

export interface AgentEndpoint {
  readonly node: string;
  readonly network: 'pod' | 'host';
  readonly url: string;
}

export type AgentState = 'ok' | 'unreachable' | 'timeout' | 'http-error' | 'invalid';

export interface AgentStatus {
  readonly node: string;
  readonly network: 'pod' | 'host';
  readonly url: string;
  readonly state: AgentState;
  readonly detail?: string;
  /** The agent's zone, from its last valid row ('' when unknown). */
  readonly zone: string;
  /** The prober's own health from its last valid row, if any. */
  readonly self?: AgentRow['self'];
  /** When a valid row was last received from this agent (ISO time), or null. */
  readonly lastSeen: string | null;
}

export interface Cell {
  readonly sourceNode: string;
  readonly sourceNetwork: 'pod' | 'host';
  readonly targetNode: string;
  readonly targetNetwork: 'pod' | 'host';
  readonly path: string;
  readonly scope: string;
  readonly protocol: 'udp' | 'icmp' | 'tcp';
  readonly size: 'small' | 'mtu';
  readonly sent: number;
  readonly lost: number;
  readonly lossRatio: number | null;
  readonly forwardLost: number;
  readonly reverseLost: number;
  readonly rttSeconds: AgentRow['peers'][number]['results'][number]['rttSeconds'];
  readonly lastFailure: string | null;
}

/** One DNS check of one agent: (source agent, server, query, transport). */
export interface DnsCell {
  readonly sourceNode: string;
  readonly sourceNetwork: 'pod' | 'host';
  readonly serverKind: 'service' | 'replica';
  readonly server: string;
  readonly query: string;
  readonly name: string;
  readonly transport: 'udp' | 'tcp';
  readonly sent: number;
  readonly failed: number;
  readonly answeredRatio: number | null;
  readonly outcomes: Readonly<Record<string, number>>;
  readonly lastOutcome: string | null;
  readonly lastDetail: string | null;
  readonly latencySeconds: {
    readonly p50: number;
    readonly p99: number;
    readonly max: number;
  } | null;
}

/** One port target as one agent sees it. */
export interface PortCell {
  readonly sourceNode: string;
  readonly sourceNetwork: 'pod' | 'host';
  readonly target: string;
  readonly address: string;
  readonly port: number;
  readonly expected: 'open' | 'closed';
  readonly sent: number;
  readonly open: number;
  readonly openRatio: number | null;
  readonly outcomes: Readonly<Record<string, number>>;
  readonly lastOutcome: string | null;
  readonly lastDetail: string | null;
}

export interface Matrix {
  readonly apiVersion: 'podmesh.io/v1';
  readonly kind: 'Matrix';
  readonly generatedAt: string;
  readonly agents: readonly AgentStatus[];
  readonly nodes: readonly string[];
  /** Zone of each node, as its agents report it. */
  readonly zones: Readonly<Record<string, string>>;
  readonly cells: readonly Cell[];
  readonly dns: readonly DnsCell[];
  readonly ports: readonly PortCell[];
}

export interface Fetched {
  readonly endpoint: AgentEndpoint;
  readonly state: AgentState;
  readonly detail?: string;
  readonly row?: AgentRow;
}

/** Flattens fetched rows into cells; `lastSeen` carries what earlier rounds knew. */
export function assembleMatrix(
  fetched: readonly Fetched[],
  nowMs: number,
  lastSeen: ReadonlyMap<string, string>,
): Matrix {
  const cells: Cell[] = [];
  const dns: DnsCell[] = [];
  const ports: PortCell[] = [];
  const nodes = new Set<string>();
  const zones: Record<string, string> = {};
  const agents: AgentStatus[] = [];
  for (const f of fetched) {
    const key = `${f.endpoint.node}/${f.endpoint.network}`;
    nodes.add(f.endpoint.node);
    agents.push({
      node: f.endpoint.node,
      network: f.endpoint.network,
      url: f.endpoint.url,
      state: f.state,
      ...(f.detail !== undefined ? { detail: f.detail } : {}),
      zone: f.row?.source.zone ?? '',
      ...(f.row?.self !== undefined ? { self: f.row.self } : {}),
      lastSeen: f.state === 'ok' ? new Date(nowMs).toISOString() : (lastSeen.get(key) ?? null),
    });
    const row = f.row;
    if (row === undefined) continue;
    if (row.source.zone !== '') zones[row.source.node] = row.source.zone;
    const source = { sourceNode: row.source.node, sourceNetwork: row.source.network };
    for (const d of row.dns)
      dns.push({
        ...source,
        serverKind: d.serverKind,
        server: d.server,
        query: d.query,
        name: d.name,
        transport: d.transport,
        sent: d.sent,
        failed: d.failed,
        answeredRatio: d.answeredRatio,
        outcomes: d.outcomes,
        lastOutcome: d.lastOutcome,
        lastDetail: d.lastDetail,
        latencySeconds: d.latencySeconds,
      });
    for (const p of row.ports)
      ports.push({
        ...source,
        target: p.target,
        address: p.address,
        port: p.port,
        expected: p.expected,
        sent: p.sent,
        open: p.open,
        openRatio: p.openRatio,
        outcomes: p.outcomes,
        lastOutcome: p.lastOutcome,
        lastDetail: p.lastDetail,
      });
    for (const p of row.peers) {
      nodes.add(p.node);
      if (p.zone !== '' && zones[p.node] === undefined) zones[p.node] = p.zone;
      for (const r of p.results) {
        cells.push({
          sourceNode: row.source.node,
          sourceNetwork: row.source.network,
          targetNode: p.node,
          targetNetwork: p.network,
          path: p.path,
          scope: p.scope,
          protocol: r.protocol,
          size: r.size,
          sent: r.sent,
          lost: r.lost,
          lossRatio: r.lossRatio,
          forwardLost: r.forwardLost,
          reverseLost: r.reverseLost,
          rttSeconds: r.rttSeconds,
          lastFailure: r.lastFailure,
        });
      }
    }
  }
  agents.sort((a, b) => a.node.localeCompare(b.node) || a.network.localeCompare(b.network));
  return {
    apiVersion: 'podmesh.io/v1',
    kind: 'Matrix',
    generatedAt: new Date(nowMs).toISOString(),
    agents,
    nodes: [...nodes].sort(),
    zones,
    cells,
    dns,
    ports,
  };
}
