// DNS lookups as the DNS rules read them: each valid cell with enough lookups judged on its
// answered ratio, and held back when the IP paths under it fail (credited to that IP finding),
// since a lookup that can't get through says nothing about DNS.

import { addExplains, isFindingId } from '../drafts.ts';
import { cellView } from '../fresh.ts';
import { ipHeldBack, smallTally } from '../links.ts';
import { agentKey, cmp, finite, linkKeyOf, type Ctx } from '../model.ts';
import type { DnsCell } from '../types.ts';

export interface Judged {
  readonly c: DnsCell;
  readonly source: string;
  readonly server: string;
  readonly ratio: number;
  readonly failing: boolean;
}

const serverKey = (c: DnsCell): string => (c.serverKind === 'service' ? 'service' : c.server);

function valid(c: unknown): c is DnsCell {
  if (c === null || typeof c !== 'object') return false;
  const d = c as Partial<DnsCell>;
  return (
    (d.serverKind === 'service' || d.serverKind === 'replica') &&
    typeof d.server === 'string' &&
    typeof d.sourceNode === 'string' &&
    (d.sourceNetwork === 'pod' || d.sourceNetwork === 'host') &&
    typeof d.query === 'string' &&
    typeof d.sent === 'number'
  );
}

/** The node a DNS replica label names: `node-3`, `node-3#2` → node-3; `replica-1` → none. */
export function replicaNode(ctx: Ctx, server: string): string | undefined {
  const base = server.split('#')[0] ?? server;
  return ctx.nodes.includes(base) ? base : undefined;
}

/**
 * A cell judged, or undefined when it has no answered ratio or too few lookups. Lookups answered
 * again after a failure its window still holds are judged on those only (fresh.ts): healed.
 */
function judge(ctx: Ctx, c: DnsCell): Judged | undefined {
  const healed = cellView(finite(c.sent), finite(c.failed), c.run);
  const stated =
    typeof c.answeredRatio === 'number' && Number.isFinite(c.answeredRatio)
      ? c.answeredRatio
      : null;
  const fresh = healed.fresh === 'healed';
  const ratio = fresh ? 1 : stated;
  const sent = fresh ? healed.sent : c.sent;
  if (ratio === null || !(sent >= ctx.opts.minDnsQueries)) return undefined;
  return {
    c,
    source: agentKey(c.sourceNode, c.sourceNetwork),
    server: serverKey(c),
    ratio: Math.min(1, Math.max(0, ratio)),
    failing: ratio < ctx.opts.dnsAnsweredRatio,
  };
}

/**
 * Why a lookup is held back: its source's IP paths fail, or the path to the replica's node
 * does. The VIP forwards to every replica, so a path failing to any replica's node explains
 * VIP lookups too.
 */
function heldBy(ctx: Ctx, c: DnsCell, replicaNodes: readonly string[]): string | undefined {
  let held = ipHeldBack(ctx, c.sourceNode, c.sourceNetwork);
  const targets =
    c.serverKind === 'replica'
      ? [replicaNode(ctx, c.server)].filter((n) => n !== undefined)
      : replicaNodes;
  for (const rn of targets) {
    if (held !== undefined) break;
    if (rn === c.sourceNode) continue;
    const l = ctx.links.get(linkKeyOf(c.sourceNode, c.sourceNetwork, rn, 'pod'));
    if (l !== undefined && smallTally(ctx, l).status === 'failing')
      held = ctx.explainedLinks.get(l.key) ?? `failing path ${c.sourceNode} → ${rn}`;
  }
  return held;
}

/** The lookups the DNS rules may judge; failing ones held back are credited to the IP finding. */
export function trustedLookups(ctx: Ctx): Judged[] {
  const raw: readonly unknown[] = Array.isArray(ctx.snapshot.matrix?.dns)
    ? ctx.snapshot.matrix.dns
    : [];
  const replicaNodes = [
    ...new Set(
      raw
        .filter(valid)
        .filter((c) => c.serverKind === 'replica')
        .map((c) => replicaNode(ctx, c.server))
        .filter((n) => n !== undefined),
    ),
  ].sort(cmp);
  const trusted: Judged[] = [];
  for (const c of raw) {
    if (!valid(c)) continue;
    const j = judge(ctx, c);
    if (j === undefined) continue;
    const held = heldBy(ctx, c, replicaNodes);
    if (held !== undefined) {
      if (j.failing && isFindingId(held))
        addExplains(ctx, held, `DNS lookups from ${j.source} (held back)`);
      continue;
    }
    trusted.push(j);
  }
  return trusted;
}
