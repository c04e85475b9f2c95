// The matrix summarised by zone or by node (shape: src/api/matrix-summary.ts): a pure function
// of one matrix, one pass over its cells. The controller computes it at most once per matrix
// and grouping, on the first request, so a web UI refreshing it costs nothing more.

import { API_VERSION } from '../api/agent-row.ts';
import type { Matrix } from '../api/matrix.ts';
import type {
  MatrixSummary,
  SummaryGroup,
  SummaryGrouping,
  SummaryPair,
} from '../api/matrix-summary.ts';

interface PairAcc {
  readonly source: string;
  readonly target: string;
  readonly agentPairs: Set<string>;
  cells: number;
  sent: number;
  lost: number;
  lossyCells: number;
  worstLossRatio: number | null;
  readonly p50s: number[];
  rttP99MaxSeconds: number | null;
}

const finite = (x: unknown): number | undefined =>
  typeof x === 'number' && Number.isFinite(x) ? x : undefined;

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  xs.sort((a, b) => a - b);
  const m = xs.length >> 1;
  return xs.length % 2 === 1 ? xs[m]! : (xs[m - 1]! + xs[m]!) / 2;
}

const byName = (a: { name: string }, b: { name: string }): number =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

export function summariseMatrix(m: Matrix, by: SummaryGrouping): MatrixSummary {
  const groupOf = (node: string): string => (by === 'node' ? node : (m.zones[node] ?? ''));
  const groups = new Map<string, { nodes: Set<string>; agents: number; agentsOk: number }>();
  const group = (name: string): { nodes: Set<string>; agents: number; agentsOk: number } => {
    let g = groups.get(name);
    if (g === undefined) groups.set(name, (g = { nodes: new Set(), agents: 0, agentsOk: 0 }));
    return g;
  };
  for (const node of m.nodes) group(groupOf(node)).nodes.add(node);
  for (const a of m.agents) {
    const g = group(groupOf(a.node));
    g.agents++;
    if (a.state === 'ok') g.agentsOk++;
  }
  const pairs = new Map<string, PairAcc>();
  for (const c of m.cells) {
    const source = groupOf(c.sourceNode);
    const target = groupOf(c.targetNode);
    const key = `${source}\u0000${target}`;
    let p = pairs.get(key);
    if (p === undefined) {
      p = {
        source,
        target,
        agentPairs: new Set(),
        cells: 0,
        sent: 0,
        lost: 0,
        lossyCells: 0,
        worstLossRatio: null,
        p50s: [],
        rttP99MaxSeconds: null,
      };
      pairs.set(key, p);
    }
    p.agentPairs.add(`${c.sourceNode}/${c.sourceNetwork}>${c.targetNode}/${c.targetNetwork}`);
    p.cells++;
    const sent = finite(c.sent) ?? 0;
    const lost = Math.min(sent, finite(c.lost) ?? 0);
    p.sent += sent;
    p.lost += lost;
    if (lost > 0) p.lossyCells++;
    const ratio = finite(c.lossRatio);
    if (ratio !== undefined) p.worstLossRatio = Math.max(p.worstLossRatio ?? 0, ratio);
    if (c.size === 'small' && c.rttSeconds !== null) {
      const p50 = finite(c.rttSeconds.p50);
      const p99 = finite(c.rttSeconds.p99);
      if (p50 !== undefined) p.p50s.push(p50);
      if (p99 !== undefined) p.rttP99MaxSeconds = Math.max(p.rttP99MaxSeconds ?? 0, p99);
    }
  }
  const outGroups: SummaryGroup[] = [...groups]
    .map(([name, g]) => ({ name, nodes: g.nodes.size, agents: g.agents, agentsOk: g.agentsOk }))
    .sort(byName);
  const outPairs: SummaryPair[] = [...pairs.values()]
    .sort((a, b) =>
      a.source !== b.source ? (a.source < b.source ? -1 : 1) : a.target < b.target ? -1 : 1,
    )
    .map((p) => ({
      source: p.source,
      target: p.target,
      agentPairs: p.agentPairs.size,
      cells: p.cells,
      sent: p.sent,
      lost: p.lost,
      lossRatio: p.sent > 0 ? p.lost / p.sent : null,
      lossyCells: p.lossyCells,
      worstLossRatio: p.worstLossRatio === null ? null : Math.min(1, p.worstLossRatio),
      rttP50Seconds: median(p.p50s),
      rttP99MaxSeconds: p.rttP99MaxSeconds,
    }));
  return {
    apiVersion: API_VERSION,
    kind: 'MatrixSummary',
    generatedAt: m.generatedAt,
    by,
    groups: outGroups,
    pairs: outPairs,
  };
}
