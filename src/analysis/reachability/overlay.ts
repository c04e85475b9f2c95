// overlay-broken: needs pairs judged on the overlay (across nodes to a pod agent) with some of
// those links failing while the node network between the same nodes does not fail and, where
// it was measured, loses significantly and at least `contrast` less (stats.ts compare). Then the
// overlay is at fault: one node's (its CNI agent, VXLAN device, tunnel port), the cluster's, or
// the pair's. A hub whose own pod ↔ host pair fails too has a broken pod network on the node.

import { capList, draft, linkEvidence, type Ranked } from '../drafts.ts';
import { groupPairs } from '../group.ts';
import { classState, explainLinks, openLinksBetween, smallTally, windowOf } from '../links.ts';
import { pairKey, type Ctx, type Draft, type Rule } from '../model.ts';
import { overlaySteps } from '../next-steps/ip-paths.ts';
import { plumbingCause } from '../plumbing/cause.ts';
import { bonferroni, compare, pool } from '../stats.ts';
import {
  emitGrouped,
  evidenceOfFailing,
  firstPeer,
  knownPeers,
  localEvidence,
  nodePairs,
  type Pair,
  type Scope,
} from './pairs.ts';

/**
 * What comes first in the finding: the node network working between some of the pairs, and
 * each hub's own pod ↔ host pair (whose failing links the finding takes).
 */
function overlayLead(
  ctx: Ctx,
  id: string,
  hubs: readonly string[],
  ps: readonly Pair[],
  cluster: boolean,
): { lead: Ranked[]; localBroken: boolean } {
  const lead: Ranked[] = [];
  const hostOk = ps.slice(0, 3).flatMap(([a, b]) =>
    classState(ctx, a, b, ['hh'])
      .links.slice(0, 1)
      .map((x) => linkEvidence(x.link, x.t)),
  );
  lead.push(...hostOk);
  let localBroken = false;
  for (const h of cluster ? [] : hubs) {
    const local = localEvidence(ctx, h);
    lead.push(...local.ev);
    if (local.ok === false) {
      localBroken = true;
      explainLinks(
        ctx,
        [...ctx.links.values()].filter((l) => l.cls === 'local' && l.sourceNode === h),
        id,
      );
    }
  }
  // Pod-to-host replies come back over the overlay in CNIs that don't masquerade node-bound
  return { lead, localBroken };
}

function overlayDraft(ctx: Ctx, { subject, hubs, pairs: ps, cluster }: Scope): Draft {
  const id = `overlay-broken:${subject}`;
  const evidence: Ranked[] = [];
  let hostKnown = 0;
  for (const [a, b] of ps) {
    evidence.push(...evidenceOfFailing(ctx, a, b, ['ov']));
    if (classState(ctx, a, b, ['hh']).known) hostKnown++;
  }
  const { lead, localBroken } = overlayLead(ctx, id, hubs, ps, cluster);
  // traffic: failing pod-to-host links between the same nodes are the overlay's too.
  for (const [a, b] of ps)
    explainLinks(
      ctx,
      openLinksBetween(ctx, a, b).filter(
        (l) => l.cls === 'ov' || (l.cls === 'ph' && smallTally(ctx, l).status === 'failing'),
      ),
      id,
    );
  for (const h of hubs) ctx.ipHubs.set(h, id);
  if (cluster) ctx.clusterIp ??= id;
  const hub = hubs[0];
  const [a, b] = ps[0]!;
  const hostWorks =
    hostKnown > 0
      ? 'while the node network between the same nodes works'
      : '(the node network between them was not measured)';
  const summary = cluster
    ? `Pod traffic across nodes fails between most nodes ${hostWorks}: the overlay is down cluster-wide (CNI agents, their configuration, or the tunnel's UDP port filtered everywhere).`
    : hub !== undefined
      ? `Traffic to pods across nodes fails between ${hub} and ${ps.length} of its peers ${hostWorks}: ${hub}'s overlay is broken (its CNI agent, its VXLAN device, or a firewall dropping the tunnel's UDP port 8472/4789 on it).${localBroken ? ` Even ${hub}'s pod↔host pair on the same node fails: the pod network on ${hub} itself (veth, bridge, CNI) is broken.` : ` Same-node traffic on ${hub} still works.`}`
      : `Traffic to pods between ${a} and ${b} fails ${hostWorks}: the overlay between these two nodes (a stale route or forwarding entry for the other's pod subnet, or the tunnel port filtered between them).`;
  // An unhealthy CNI/proxy agent on these nodes is named as the likely cause (plumbing/cause.ts).
  const cause = plumbingCause(ctx, cluster ? ctx.nodes : hub !== undefined ? [hub] : ps.flat());
  return draft(ctx, {
    kind: 'overlay-broken',
    subject,
    severity: 'critical',
    nodes: ps.flat(),
    title: cluster
      ? 'The pod network (overlay) fails across the cluster'
      : hub !== undefined
        ? `The pod network (overlay) of ${hub} is broken`
        : `The pod network (overlay) between ${a} and ${b} is broken`,
    summary: summary + (cause?.sentence ?? ''),
    lead: [...(cause?.evidence ?? []), ...lead],
    evidence,
    confidence: hostKnown > 0 ? (hub !== undefined || cluster ? 0.85 : 0.7) : 0.55,
    nextSteps: overlaySteps(ctx, hubs, hub !== undefined ? firstPeer(ctx, hub, hubs) : b),
    explains: capList(
      ps.map(([x, y]) => `${pairKey(x, y)} pod paths`),
      20,
    ),
  });
}

export const overlay: Rule = (ctx) => {
  const pairs = nodePairs(ctx);
  const known = knownPeers(ctx, pairs, ['ov']);
  // One comparison per pair whose overlay fails: the family is held at `confidence`.
  const conf = bonferroni(
    ctx.opts.confidence,
    pairs.filter(([a, b]) => classState(ctx, a, b, ['ov']).failing.length > 0).length,
  );
  const bad = pairs.filter(([a, b]) => {
    const ov = classState(ctx, a, b, ['ov']);
    const hh = classState(ctx, a, b, ['hh']);
    if (ov.failing.length === 0 || hh.failing.length > 0) return false;
    // The node network between them unmeasured: no comparison to make. Measured but taken by
    // a broader finding (a one-way path): that finding explains the pair, not the overlay.
    if (!hh.known)
      return !(ctx.pairLinks.get(pairKey(a, b)) ?? []).some(
        (l) => l.cls === 'hh' && ctx.explainedLinks.has(l.key),
      );
    const failing = pool(ov.failing.map((x) => x.t));
    const host = pool(hh.links.map((x) => windowOf(x.t)));
    return compare(failing, host, ctx.opts.contrast, conf).material;
  });
  if (bad.length === 0) return [];
  const g = groupPairs(bad, known, ctx.opts.hubShare);
  return emitGrouped(g, bad, (scope) => overlayDraft(ctx, scope));
};
