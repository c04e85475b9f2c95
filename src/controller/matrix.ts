// Assembles the matrix (its shape: src/api/matrix.ts): every agent's row (its /api/v1/results)
// put side by side, plus which agents answered. Pure functions: no I/O, no clock of their own.
//
// In two steps so a round never holds every parsed row at once: the collector turns each row
// into its part of the matrix (rowPart: its cells, DNS and port cells) as soon as it arrives,
// and the row is dropped; joinParts puts the parts together in the agents' order when the
// round ends. A parsed row costs about as much as its cells again, so holding all rows until
// the round ended doubled a round's memory (2,000 agents: ~150 MB of rows; bench section 10).
// assembleMatrix is the two steps at once, for callers that have the rows already.

import { API_VERSION, type AcceptedAgentRow } from '../api/agent-row.ts';
import type {
  AgentState,
  AgentStatus,
  ApiServerCell,
  Cell,
  DnsCell,
  Matrix,
  PortCell,
} from '../api/matrix.ts';

/** Where the controller pulls one agent's row from (its directory lists these). */
export interface AgentEndpoint {
  readonly node: string;
  readonly network: 'pod' | 'host';
  readonly url: string;
}

export interface Fetched {
  readonly endpoint: AgentEndpoint;
  readonly state: AgentState;
  readonly detail?: string;
  readonly row?: AcceptedAgentRow;
}

/** One agent's part of the matrix: everything the matrix needs of its row, and no more. */
export interface RowPart {
  readonly endpoint: AgentEndpoint;
  readonly state: AgentState;
  readonly detail?: string;
  readonly zone: string;
  readonly self?: AgentStatus['self'];
  readonly cells: readonly Cell[];
  readonly dns: readonly DnsCell[];
  readonly ports: readonly PortCell[];
  readonly apiserver: readonly ApiServerCell[];
  /** Nodes the row names (its own and its peers'), for the matrix's node list. */
  readonly nodes: readonly string[];
  /**
   * The zones the row tells, in its order: [node, zone, authoritative]. An agent's own zone
   * (authoritative) wins over what its peers' entries say; replayed in order by joinParts so
   * the zones object's keys come out in the order they always did.
   */
  readonly zoneHints: readonly (readonly [string, string, boolean])[];
}

/** Turns one fetched row into its part of the matrix (the row itself is not kept). */
export function rowPart(f: Fetched): RowPart {
  const row = f.row;
  const base = {
    endpoint: f.endpoint,
    state: f.state,
    ...(f.detail !== undefined ? { detail: f.detail } : {}),
    zone: row?.source.zone ?? '',
    ...(row?.self !== undefined ? { self: row.self } : {}),
  };
  if (row === undefined)
    return {
      ...base,
      cells: [],
      dns: [],
      ports: [],
      apiserver: [],
      nodes: [f.endpoint.node],
      zoneHints: [],
    };
  const cells: Cell[] = [];
  const dns: DnsCell[] = [];
  const ports: PortCell[] = [];
  const apiserver: ApiServerCell[] = [];
  const nodes: string[] = [f.endpoint.node];
  const zoneHints: [string, string, boolean][] = [];
  if (row.source.zone !== '') zoneHints.push([row.source.node, row.source.zone, true]);
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
      ...(d.run !== undefined ? { run: d.run } : {}),
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
      ...(p.run !== undefined ? { run: p.run } : {}),
    });
  for (const a of row.apiserver)
    apiserver.push({
      ...source,
      target: a.target,
      kind: a.kind,
      address: a.address,
      port: a.port,
      sent: a.sent,
      failed: a.failed,
      okRatio: a.okRatio,
      outcomes: a.outcomes,
      lastOutcome: a.lastOutcome,
      lastDetail: a.lastDetail,
      readyz: a.readyz,
      run: a.run,
    });
  for (const p of row.peers) {
    nodes.push(p.node);
    if (p.zone !== '') zoneHints.push([p.node, p.zone, false]);
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
        ...(r.run !== undefined ? { run: r.run } : {}),
        ...(p.rotating !== undefined ? { rotating: p.rotating } : {}),
        ...(r.measuredAt !== undefined ? { measuredAt: r.measuredAt } : {}),
      });
    }
  }
  return { ...base, cells, dns, ports, apiserver, nodes, zoneHints };
}

/** The matrix from every agent's part, in the agents' order; `lastSeen` carries earlier rounds. */
export function joinParts(
  parts: readonly RowPart[],
  nowMs: number,
  lastSeen: ReadonlyMap<string, string>,
): Matrix {
  const cells: Cell[] = [];
  const dns: DnsCell[] = [];
  const ports: PortCell[] = [];
  const apiserver: ApiServerCell[] = [];
  const nodes = new Set<string>();
  const zones: Record<string, string> = {};
  const agents: AgentStatus[] = [];
  const now = new Date(nowMs).toISOString();
  for (const p of parts) {
    const key = `${p.endpoint.node}/${p.endpoint.network}`;
    agents.push({
      node: p.endpoint.node,
      network: p.endpoint.network,
      url: p.endpoint.url,
      state: p.state,
      ...(p.detail !== undefined ? { detail: p.detail } : {}),
      zone: p.zone,
      ...(p.self !== undefined ? { self: p.self } : {}),
      lastSeen: p.state === 'ok' ? now : (lastSeen.get(key) ?? null),
    });
    for (const n of p.nodes) nodes.add(n);
    for (const [node, zone, own] of p.zoneHints)
      if (own || zones[node] === undefined) zones[node] = zone;
    // A loop, not push(...spread): a spread of 160,000 cells overflows the call stack.
    for (const c of p.cells) cells.push(c);
    for (const d of p.dns) dns.push(d);
    for (const x of p.ports) ports.push(x);
    for (const x of p.apiserver) apiserver.push(x);
  }
  agents.sort((a, b) => a.node.localeCompare(b.node) || a.network.localeCompare(b.network));
  return {
    apiVersion: API_VERSION,
    kind: 'Matrix',
    generatedAt: now,
    agents,
    nodes: [...nodes].sort(),
    zones,
    cells,
    dns,
    ports,
    apiserver,
  };
}

/** Flattens fetched rows into cells; `lastSeen` carries what earlier rounds knew. */
export function assembleMatrix(
  fetched: readonly Fetched[],
  nowMs: number,
  lastSeen: ReadonlyMap<string, string>,
): Matrix {
  return joinParts(fetched.map(rowPart), nowMs, lastSeen);
}
