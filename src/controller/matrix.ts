// Assembles the matrix (its shape: src/api/matrix.ts): every agent's row (its /api/v1/results)
// put side by side, plus which agents answered. A pure function: no I/O, no clock of its own.

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

/** Flattens fetched rows into cells; `lastSeen` carries what earlier rounds knew. */
export function assembleMatrix(
  fetched: readonly Fetched[],
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
          ...(r.run !== undefined ? { run: r.run } : {}),
          ...(p.rotating !== undefined ? { rotating: p.rotating } : {}),
          ...(r.measuredAt !== undefined ? { measuredAt: r.measuredAt } : {}),
        });
      }
    }
  }
  agents.sort((a, b) => a.node.localeCompare(b.node) || a.network.localeCompare(b.network));
  return {
    apiVersion: API_VERSION,
    kind: 'Matrix',
    generatedAt: new Date(nowMs).toISOString(),
    agents,
    nodes: [...nodes].sort(),
    zones,
    cells,
    dns,
    ports,
    apiserver,
  };
}
