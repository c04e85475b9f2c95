// apiserver-unreachable: the API server checks (the `kubernetes` Service VIP and each endpoint
// asked directly, from every agent) that fail from some nodes while the others reach it, or
// from (nearly) every node at once. Each source agent's checks of one way (the VIP; the
// endpoints pooled) are compared with those of the agents on other nodes: named only when it
// fails significantly and materially more (stats.ts compare, Bonferroni over every agent and
// way), never on a threshold alone, so one endpoint down for everybody, or a few lost connects,
// names no node. Which way fails tells the cause: the VIP only (the endpoints answer directly)
// is the Service translation on that node; the endpoints too is the path to the control plane.
// Sources whose IP paths fail (an isolated node, a cluster-wide IP finding) are held back and
// credited to that finding: their checks say nothing about the API server.

import {
  addExplains,
  draft,
  isFindingId,
  lossFigures,
  outcomeCounts,
  type Ranked,
} from './drafts.ts';
import { cellView } from './fresh.ts';
import { ipHeldBack } from './links.ts';
import { agentKey, cmp, finite, uniqSorted, type Ctx, type Draft } from './model.ts';
import { apiServerSteps, type ApiServerWay } from './next-steps/apiserver.ts';
import { atLeast, bonferroni, compare, pool, type Counts } from './stats.ts';
import type { ApiServerCell } from './types.ts';

type Way = 'service' | 'endpoint';
const WAYS: readonly Way[] = ['service', 'endpoint'];
const WAY_TEXT: Readonly<Record<Way, string>> = {
  service: 'the `kubernetes` VIP',
  endpoint: 'the endpoints directly',
};

function valid(c: unknown): c is ApiServerCell {
  if (c === null || typeof c !== 'object') return false;
  const a = c as Partial<ApiServerCell>;
  return (
    typeof a.sourceNode === 'string' &&
    (a.sourceNetwork === 'pod' || a.sourceNetwork === 'host') &&
    (a.kind === 'service' || a.kind === 'endpoint') &&
    typeof a.target === 'string' &&
    typeof a.sent === 'number'
  );
}

/** One source agent's checks of one way: pooled over its cells of that way. */
interface Source {
  readonly key: string;
  readonly node: string;
  readonly way: Way;
  readonly counts: Counts;
  readonly cells: readonly ApiServerCell[];
}

/**
 * A cell's counts: checks answered again after failures its window still holds are judged on
 * those only (fresh.ts), so a healed way clears without waiting for the window.
 */
function countsOf(c: ApiServerCell): Counts {
  const sent = finite(c.sent);
  const failed = Math.min(sent, finite(c.failed));
  const v = cellView(sent, failed, c.run);
  return { sent: v.sent, lost: v.lost };
}

/** Every trusted source × way with enough checks; held-back failing sources credited. */
function sourcesOf(ctx: Ctx): Source[] {
  const raw: readonly unknown[] = Array.isArray(ctx.snapshot.matrix?.apiserver)
    ? ctx.snapshot.matrix.apiserver
    : [];
  const by = new Map<string, { node: string; way: Way; key: string; cells: ApiServerCell[] }>();
  for (const c of raw) {
    if (!valid(c) || !(c.sent > 0)) continue;
    const key = agentKey(c.sourceNode, c.sourceNetwork);
    const k = `${key}|${c.kind}`;
    const s = by.get(k) ?? { node: c.sourceNode, way: c.kind, key, cells: [] };
    by.set(k, s);
    s.cells.push(c);
  }
  const out: Source[] = [];
  for (const s of by.values()) {
    const counts = pool(s.cells.map(countsOf));
    if (counts.sent < ctx.opts.minPortChecks) continue;
    const net = s.key.slice(s.key.lastIndexOf('/') + 1);
    const held = ipHeldBack(ctx, s.node, net);
    if (held !== undefined) {
      if (counts.lost > 0 && isFindingId(held))
        addExplains(ctx, held, `API server checks from ${s.key} (held back)`);
      continue;
    }
    out.push({ ...s, counts });
  }
  return out.sort((a, b) => cmp(a.key, b.key) || cmp(a.way, b.way));
}

function evidence(s: Source, others: Counts | undefined, ctx: Ctx): Ranked {
  const c = s.cells[0]!;
  const where =
    s.way === 'service'
      ? `VIP ${c.address}:${c.port}`
      : `${s.cells.length} endpoint${s.cells.length === 1 ? '' : 's'}`;
  const outcomes = outcomeCounts(
    s.cells.reduce<Record<string, number>>((acc, x) => {
      for (const [k, v] of Object.entries(x.outcomes ?? {}))
        if (k !== 'ok' && typeof v === 'number') acc[k] = (acc[k] ?? 0) + v;
      return acc;
    }, {}),
  ).join(', ');
  const ratio = s.counts.sent > 0 ? s.counts.lost / s.counts.sent : 0;
  return {
    text: `${s.key} → API server (${where}): ${lossFigures(s.counts, ctx.opts.confidence, 'checks failed')}${outcomes !== '' ? ` (${outcomes})` : ''}${others !== undefined ? `; agents on other nodes: ${Math.round(others.lost)} of ${Math.round(others.sent)} failed` : ''}`,
    sourceNode: s.node,
    target: s.way === 'service' ? 'service' : 'endpoints',
    value: ratio,
  };
}

/** An example address of a way, from its cells, for the next steps. */
function wayOf(sources: readonly Source[]): ApiServerWay | undefined {
  const c = sources[0]?.cells[0];
  return c === undefined ? undefined : { address: c.address, port: c.port };
}

/**
 * A way fails everywhere when the checks of all sources pooled fail significantly at or above
 * portFailRatio and most sources (sourceShare) fail at least that often themselves.
 */
function everywhere(ctx: Ctx, list: readonly Source[]): boolean {
  if (list.length === 0) return false;
  const failing = list.filter((s) => s.counts.lost >= ctx.opts.portFailRatio * s.counts.sent);
  return (
    failing.length / list.length >= ctx.opts.sourceShare &&
    atLeast(pool(list.map((s) => s.counts)), ctx.opts.portFailRatio, ctx.opts.confidence)
  );
}

function clusterWide(ctx: Ctx, failing: ReadonlyMap<Way, readonly Source[]>): Draft {
  const vip = failing.get('service');
  const eps = failing.get('endpoint');
  const all = [...(vip ?? []), ...(eps ?? [])];
  const ways = WAYS.filter((w) => failing.has(w));
  const cause =
    vip !== undefined && eps !== undefined
      ? 'the API server is down, or the whole cluster has lost its way to the control plane (a firewall or security group, a load balancer in front of it, the control plane network)'
      : vip !== undefined
        ? 'the `kubernetes` Service itself: its EndpointSlice lists addresses that do not answer, or the Service translation (kube-proxy, the CNI) fails on every node'
        : 'the endpoints the `kubernetes` EndpointSlice lists do not answer directly while the VIP does: stale or wrong endpoint addresses, or a rule that blocks those addresses before translation';
  return draft(ctx, {
    kind: 'apiserver-unreachable',
    subject: 'all',
    severity: 'critical',
    nodes: all.map((s) => s.node),
    targets: ways.map((w) => (w === 'service' ? 'service' : 'endpoints')),
    title: `The API server is unreachable from every node (${ways.map((w) => WAY_TEXT[w]).join(' and ')})`,
    summary: `Checks of the API server through ${ways.map((w) => WAY_TEXT[w]).join(' and ')} fail from most agents (${lossFigures(pool(all.map((s) => s.counts)), ctx.opts.confidence, 'checks failed')}) while the IP paths between the nodes work: ${cause}.`,
    evidence: all.map((s) => evidence(s, undefined, ctx)),
    confidence: 0.85,
    nextSteps: apiServerSteps(
      undefined,
      vip !== undefined ? wayOf(vip) : undefined,
      eps !== undefined ? wayOf(eps) : undefined,
    ),
  });
}

function fromNode(
  ctx: Ctx,
  node: string,
  failing: readonly { s: Source; others: Counts }[],
  reaching: readonly Source[],
): Draft {
  const ways = WAYS.filter((w) => failing.some((f) => f.s.way === w));
  const vip = failing.filter((f) => f.s.way === 'service').map((f) => f.s);
  const eps = failing.filter((f) => f.s.way === 'endpoint').map((f) => f.s);
  const agents = uniqSorted(failing.map((f) => f.s.key));
  const fine = uniqSorted(
    reaching.filter((s) => s.node === node && !agents.includes(s.key)).map((s) => s.key),
  );
  // The endpoints answering directly from the same agents tell the VIP's failure apart.
  const epsAnswer = reaching.some((s) => s.node === node && s.way === 'endpoint');
  const cause =
    eps.length > 0
      ? `the path from ${node} to the control plane drops it (a route, the node's firewall, a security group or firewall between the node and the control plane)${vip.length === 0 ? ', for the endpoint addresses only while the VIP answers: a rule that matches those addresses before Service translation' : ''}`
      : `the Service translation of \`kubernetes\` on ${node} is broken (kube-proxy's rules or the CNI's service handling there)${epsAnswer ? ': the endpoints answer directly from the same node' : ''}`;
  const onlySome =
    fine.length > 0
      ? ` Only ${agents.join(', ')} fails; ${fine.join(', ')} reaches it: that network's egress (a NetworkPolicy, the pod network's masquerading).`
      : '';
  return draft(ctx, {
    kind: 'apiserver-unreachable',
    subject: node,
    severity: eps.length > 0 ? 'critical' : 'warning',
    nodes: [node],
    targets: ways.map((w) => (w === 'service' ? 'service' : 'endpoints')),
    title: `The API server is unreachable from ${node} (${ways.map((w) => WAY_TEXT[w]).join(' and ')})`,
    summary: `Checks of the API server from ${agents.join(' and ')} through ${ways.map((w) => WAY_TEXT[w]).join(' and ')} fail while the other nodes reach it and ${node}'s IP paths work: ${cause}.${onlySome}`,
    evidence: failing.map((f) => evidence(f.s, f.others, ctx)),
    confidence: eps.length > 0 ? 0.85 : 0.8,
    nextSteps: apiServerSteps(
      node,
      vip.length > 0 ? wayOf(vip) : undefined,
      eps.length > 0 ? wayOf(eps) : undefined,
    ),
  });
}

/**
 * In order: a way failing from (nearly) every source is one cluster-wide finding; else each
 * source whose checks of a way fail significantly and materially more than those of the
 * agents on other nodes names its node, one finding per node.
 */
export function apiServerFindings(ctx: Ctx): Draft[] {
  const sources = sourcesOf(ctx);
  if (sources.length === 0) return [];
  const wide = new Map<Way, Source[]>();
  for (const w of WAYS) {
    const list = sources.filter((s) => s.way === w);
    if (everywhere(ctx, list))
      wide.set(
        w,
        list.filter((s) => s.counts.lost > 0),
      );
  }
  const out: Draft[] = wide.size > 0 ? [clusterWide(ctx, wide)] : [];
  const judged = sources.filter((s) => !wide.has(s.way));
  const conf = bonferroni(ctx.opts.confidence, judged.length);
  const byNode = new Map<string, { s: Source; others: Counts }[]>();
  const reaching: Source[] = [];
  for (const s of judged) {
    const others = pool(
      judged.filter((o) => o.way === s.way && o.node !== s.node).map((o) => o.counts),
    );
    if (!compare(s.counts, others, ctx.opts.contrast, conf).material) {
      reaching.push(s);
      continue;
    }
    byNode.set(s.node, [...(byNode.get(s.node) ?? []), { s, others }]);
  }
  for (const [node, failing] of [...byNode].sort((a, b) => cmp(a[0], b[0])))
    out.push(fromNode(ctx, node, failing, reaching));
  return out;
}
