// agent TCP port (port-blocked / port-refused / port-rejected on an agent): needs, on a link to
// one agent, tcp connects failing significantly and materially more than the path's own loss
// explains. The path's loss is what the small udp and icmp probes to the same agent lose (a
// round trip: one packet each way); a TCP connect probe is the same two packets (SYN, SYN-ACK)
// with one try at the default timeout, so random loss makes it fail about as often (stats.ts,
// handshakeLoss, taking the top of that loss's interval). Called only when the tcp loss's
// interval lies wholly above that and the tcp loss exceeds it by at least `contrast`: 50% random
// loss in one direction never makes a port finding. One such comparison per link: the family is
// held at `confidence` (stats.ts bonferroni). Then the path is up and only podmesh's TCP
// probe port is dropped, refused or rejected, so the tcp cells are taken before any link rule
// runs and can't make the path look lossy; so are the failing tcp cells of rotating visits to
// the same agent (peers.rotation), too few to make the case on their own.

import { cellEvidence, draft, lossFigures } from '../drafts.ts';
import { cellCounts, cellRatio, usable, windowCounts } from '../links.ts';
import { agentKey, agentNode, cmp, type Ctx, type Draft, type Link, type Rule } from '../model.ts';
import { agentPortSteps, type PortOutcome } from '../next-steps/ports.ts';
import { bonferroni, handshakeLoss, pool, wilson, type Counts } from '../stats.ts';
import type { Cell } from '../types.ts';

/** One agent whose TCP probe port fails, with the tcp cells and the sources that show it. */
interface TcpOnly {
  readonly node: string;
  readonly net: string;
  readonly cells: Cell[];
  readonly sources: Set<string>;
  /** Pooled over its links: the tcp connects, and the udp/icmp round trips beside them. */
  tcp: Counts;
  path: Counts;
}

/** Whether the link's tcp cells fail more than its udp/icmp loss explains; their counts if so. */
function cellsOf(ctx: Ctx, l: Link): { tcp: Cell[]; others: Cell[] } {
  const tcp = l.cells.filter((c) => c.protocol === 'tcp' && c.size === 'small' && usable(ctx, c));
  const others = l.cells.filter(
    (c) => c.protocol !== 'tcp' && c.size === 'small' && usable(ctx, c),
  );
  return { tcp, others };
}

function tcpWorse(
  ctx: Ctx,
  l: Link,
  conf: number,
): { tcp: Cell[]; t: Counts; q: Counts } | undefined {
  const { tcp, others } = cellsOf(ctx, l);
  if (tcp.length === 0 || others.length === 0) return undefined;
  const t = pool(tcp.map(cellCounts));
  // The other kinds are the reference: their windows (links.ts windowCounts).
  const q = pool(others.map(windowCounts));
  const tw = wilson(t, conf);
  const qw = wilson(q, conf);
  // One try within the timeout is the most random loss can explain (see the header).
  if (tw.lo < handshakeLoss(qw.hi)) return undefined;
  if (tw.ratio - handshakeLoss(qw.ratio) < ctx.opts.contrast) return undefined;
  return { tcp, t, q };
}

/** Agents, by key, on whose links tcp fails more than the path's loss explains. */
function tcpOnlyFailures(ctx: Ctx): Map<string, TcpOnly> {
  const byTarget = new Map<string, TcpOnly>();
  // One comparison per link with both kinds of cells: the family held at `confidence`.
  const tested = [...ctx.links.values()].filter((l) => {
    const { tcp, others } = cellsOf(ctx, l);
    return tcp.length > 0 && others.length > 0;
  }).length;
  const conf = bonferroni(ctx.opts.confidence, tested);
  for (const l of ctx.links.values()) {
    const w = tcpWorse(ctx, l, conf);
    if (w === undefined) continue;
    const k = agentKey(l.targetNode, l.targetNet);
    const e = byTarget.get(k) ?? {
      node: l.targetNode,
      net: l.targetNet,
      cells: [],
      sources: new Set(),
      tcp: { sent: 0, lost: 0 },
      path: { sent: 0, lost: 0 },
    };
    e.cells.push(...w.tcp);
    e.sources.add(agentKey(l.sourceNode, l.sourceNet));
    e.tcp = pool([e.tcp, w.t]);
    e.path = pool([e.path, w.q]);
    byTarget.set(k, e);
  }
  return byTarget;
}

const WORDS: Readonly<Record<PortOutcome, { title: string; why: string }>> = {
  refused: {
    title: 'are refused',
    why: 'refused: a TCP reset, so nothing listens or a rule rejects with a reset',
  },
  rejected: {
    title: 'are rejected (ICMP unreachable)',
    why: 'rejected at once with an ICMP unreachable: a REJECT rule (admin-prohibited, host-prohibited, host-unreachable) or no route',
  },
  blocked: {
    title: 'time out',
    why: 'no answer: a NetworkPolicy or firewall drops the SYN (a DROP policy)',
  },
};

/** The finding for one agent's port; it takes the tcp cells. */
function agentPortDraft(ctx: Ctx, k: string, e: TcpOnly): Draft {
  const reasons = e.cells.map((c) => c.lastFailure ?? '');
  const most = (r: string): boolean => reasons.filter((x) => x === r).length > reasons.length / 2;
  const outcome: PortOutcome = most('refused')
    ? 'refused'
    : most('unreachable')
      ? 'rejected'
      : 'blocked';
  const kind =
    outcome === 'refused'
      ? 'port-refused'
      : outcome === 'rejected'
        ? 'port-rejected'
        : 'port-blocked';
  const id = `${kind}:${k}`;
  for (const c of e.cells) ctx.takenCells.set(c, id);
  // Rotating visits (peers.rotation) to the same agent hit the same port: their few tcp probes
  // can't make the case on their own, but left in place they would read as pair loss.
  for (const l of ctx.links.values())
    if (l.targetNode === e.node && l.targetNet === e.net)
      for (const c of l.cells)
        if (c.rotating === true && c.protocol === 'tcp' && (cellRatio(c) ?? 0) > 0)
          ctx.takenCells.set(c, id);
  const sourceNodes = [...e.sources].map(agentNode);
  const conf = ctx.opts.confidence;
  return draft(ctx, {
    kind,
    subject: k,
    severity: 'warning',
    nodes: [e.node, ...sourceNodes],
    targets: [k],
    title: `TCP probes to ${k} ${WORDS[outcome].title} while UDP and ICMP answer`,
    summary: `From ${e.sources.size} source${e.sources.size === 1 ? '' : 's'}, podmesh's TCP connects to ${k} fail (${WORDS[outcome].why}) far more than the path's own loss explains: TCP ${lossFigures(e.tcp, conf, 'connects failed')}, UDP and ICMP to the same agent ${lossFigures(e.path, conf)}. The path is up and only the port is affected.`,
    evidence: e.cells.map((c) => cellEvidence(c)),
    confidence: 0.8,
    nextSteps: agentPortSteps(
      ctx,
      e.node,
      e.net,
      outcome,
      sourceNodes.find((n) => n !== e.node),
    ),
  });
}

export const agentTcpPorts: Rule = (ctx) => {
  const out = [...tcpOnlyFailures(ctx)]
    .sort((x, y) => cmp(x[0], y[0]))
    .map(([k, e]) => agentPortDraft(ctx, k, e));
  // Taken cells count nowhere after this: every tally made before is stale.
  ctx.smallTallies.clear();
  return out;
};
