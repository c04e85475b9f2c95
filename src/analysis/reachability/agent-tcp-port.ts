// agent TCP port (port-blocked / port-refused on an agent): needs, on the links to one agent,
// tcp cells that all fail while the small udp and icmp cells to it all answer. Then the path is
// up and only podmesh's TCP probe port is dropped or refused, so the tcp cells are taken before
// any link rule runs and can't make the path look lossy.

import { cellEvidence, draft } from '../drafts.ts';
import { cellRatio, usable } from '../links.ts';
import { agentKey, agentNode, cmp, type Ctx, type Draft, type Rule } from '../model.ts';
import { agentPortSteps } from '../next-steps/ports.ts';
import type { Cell } from '../types.ts';

/** One agent whose TCP probe port fails, with the tcp cells and the sources that show it. */
interface TcpOnly {
  readonly node: string;
  readonly net: string;
  readonly cells: Cell[];
  readonly sources: Set<string>;
}

/** Agents, by key, on whose links only tcp fails while small udp and icmp get through. */
function tcpOnlyFailures(ctx: Ctx): Map<string, TcpOnly> {
  const byTarget = new Map<string, TcpOnly>();
  for (const l of ctx.links.values()) {
    const tcp = l.cells.filter((c) => c.protocol === 'tcp' && usable(ctx, c));
    const others = l.cells.filter(
      (c) => c.protocol !== 'tcp' && c.size === 'small' && usable(ctx, c),
    );
    if (tcp.length === 0 || others.length === 0) continue;
    if (!tcp.every((c) => cellRatio(c)! >= ctx.opts.failRatio)) continue;
    if (!others.every((c) => cellRatio(c)! < ctx.opts.failRatio)) continue;
    const k = agentKey(l.targetNode, l.targetNet);
    const e = byTarget.get(k) ?? {
      node: l.targetNode,
      net: l.targetNet,
      cells: [],
      sources: new Set(),
    };
    e.cells.push(...tcp);
    e.sources.add(agentKey(l.sourceNode, l.sourceNet));
    byTarget.set(k, e);
  }
  return byTarget;
}

/** The finding for one agent's port; it takes the tcp cells. */
function agentPortDraft(ctx: Ctx, k: string, e: TcpOnly): Draft {
  const reasons = e.cells.map((c) => c.lastFailure ?? '');
  const refused = reasons.filter((r) => r === 'refused').length;
  const isRefused = refused > reasons.length / 2;
  const kind = isRefused ? 'port-refused' : 'port-blocked';
  const id = `${kind}:${k}`;
  for (const c of e.cells) ctx.takenCells.set(c, id);
  const sourceNodes = [...e.sources].map(agentNode);
  return draft(ctx, {
    kind,
    subject: k,
    severity: 'warning',
    nodes: [e.node, ...sourceNodes],
    targets: [k],
    title: isRefused
      ? `TCP probes to ${k} are refused while UDP and ICMP answer`
      : `TCP probes to ${k} time out while UDP and ICMP answer`,
    summary: `From ${e.sources.size} source${e.sources.size === 1 ? '' : 's'}, podmesh's TCP connects to ${k} fail (${isRefused ? 'refused: nothing listens or a rule rejects with a reset' : 'no answer: a NetworkPolicy or firewall drops the SYN'}) while UDP and ICMP to the same agent get through, so the path is up and only the port is affected.`,
    evidence: e.cells.map((c) => cellEvidence(c)),
    confidence: 0.8,
    nextSteps: agentPortSteps(
      ctx,
      e.node,
      e.net,
      isRefused,
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
