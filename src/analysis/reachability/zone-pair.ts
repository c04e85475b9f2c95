// zone-pair: needs nodes labelled with two or more zones, a zone pair with at least two nodes
// on one side, and, on small probes over every class, most node pairs between the two zones
// failing while pairs inside each zone work. Then something between the zones drops it; run
// first because an isolated node or a node network fault would otherwise take those pairs.

import { capList, draft, type Ranked } from '../drafts.ts';
import { classState, explainLinks, openLinksBetween } from '../links.ts';
import { cmp, type Ctx, type Draft, type LinkClass, type Rule } from '../model.ts';
import { zoneSteps } from '../next-steps/ip-paths.ts';
import { evidenceOfFailing, type Pair } from './pairs.ts';

const ALL: readonly LinkClass[] = ['hh', 'ov', 'ph'];

function pairsWithin(xs: readonly string[]): Pair[] {
  const r: Pair[] = [];
  for (let i = 0; i < xs.length; i++)
    for (let j = i + 1; j < xs.length; j++) r.push([xs[i]!, xs[j]!]);
  return r;
}

function pairsAcross(xs: readonly string[], ys: readonly string[]): Pair[] {
  const r: Pair[] = [];
  for (const x of xs) for (const y of ys) r.push([x, y]);
  return r;
}

/** The judged and the failing pairs across two zones, when the cut is the zones' own. */
function zoneCut(
  ctx: Ctx,
  n1: readonly string[],
  n2: readonly string[],
): { cross: Pair[]; bad: Pair[] } | undefined {
  if (Math.max(n1.length, n2.length) < 2) return undefined;
  const cross = pairsAcross(n1, n2).filter(([a, b]) => classState(ctx, a, b, ALL).known);
  if (cross.length === 0) return undefined;
  const bad = cross.filter(([a, b]) => classState(ctx, a, b, ALL).failing.length > 0);
  if (bad.length / cross.length < ctx.opts.zoneShare) return undefined;
  const intra = [...pairsWithin(n1), ...pairsWithin(n2)].filter(
    ([a, b]) => classState(ctx, a, b, ALL).known,
  );
  if (intra.length === 0) return undefined;
  const intraBad = intra.filter(([a, b]) => classState(ctx, a, b, ALL).failing.length > 0);
  if (intraBad.length / intra.length > 1 - ctx.opts.zoneShare) return undefined;
  // A zone of one node whose every peer is across the pair: that is the node, not the zone.
  const inPair = new Set([...n1, ...n2]);
  const lone = [n1, n2].find(
    (ns) =>
      ns.length === 1 &&
      !ctx.nodes.some((m) => !inPair.has(m) && classState(ctx, ns[0]!, m, ALL).known),
  );
  if (lone !== undefined) return undefined;
  return { cross, bad };
}

function zonePairDraft(
  ctx: Ctx,
  z1: string,
  z2: string,
  cross: readonly Pair[],
  bad: readonly Pair[],
): Draft {
  const subject = `${z1}<->${z2}`;
  const id = `zone-pair:${subject}`;
  const evidence: Ranked[] = [];
  let hostFails = false;
  for (const [a, b] of bad) {
    evidence.push(...evidenceOfFailing(ctx, a, b, ALL));
    if (classState(ctx, a, b, ['hh']).failing.length > 0) hostFails = true;
  }
  const explained: string[] = [];
  for (const [a, b] of bad) {
    explainLinks(ctx, openLinksBetween(ctx, a, b), id);
    explained.push(`${a}<->${b}`);
  }
  const nodes = [...new Set(bad.flat())];
  const [ea, eb] = bad[0]!;
  return draft(ctx, {
    kind: 'zone-pair',
    subject,
    severity: 'critical',
    nodes,
    zones: [z1, z2],
    title: `Traffic between zones ${z1} and ${z2} fails`,
    summary: `${bad.length} of ${cross.length} node pairs between ${z1} and ${z2} fail${hostFails ? ' on the node network too' : ' on the pod network (the node network between them works)'}, while pairs inside each zone work: something between the zones drops it (firewall, security group or network ACL, a missing route${hostFails ? '' : ", or the overlay's UDP port not allowed between the zones' subnets"}).`,
    evidence,
    confidence: Math.min(0.95, 0.6 + 0.35 * (bad.length / cross.length)),
    nextSteps: zoneSteps(ctx, ea, eb),
    explains: capList(explained, 20),
  });
}

export const zonePairs: Rule = (ctx) => {
  const byZone = new Map<string, string[]>();
  for (const [n, z] of ctx.zones) byZone.set(z, [...(byZone.get(z) ?? []), n]);
  if (byZone.size < 2) return [];
  const out: Draft[] = [];
  const zones = [...byZone.keys()].sort(cmp);
  for (let i = 0; i < zones.length; i++) {
    for (let j = i + 1; j < zones.length; j++) {
      const z1 = zones[i]!;
      const z2 = zones[j]!;
      const cut = zoneCut(ctx, byZone.get(z1)!, byZone.get(z2)!);
      if (cut !== undefined) out.push(zonePairDraft(ctx, z1, z2, cut.cross, cut.bad));
    }
  }
  return out;
};
