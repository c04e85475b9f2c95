// Rotating links (peers.rotation, docs/scale.md) of a cause already named. The class rules (zone
// pair, isolation, overlay, node network) rest on core links (links.ts classState): a rotating
// link holds a few visits and can't be called failing. Yet the cause they name breaks its
// rotating links too, which left alone would read as pair loss on pairs the finding already
// covers. So, before pair loss, a rotating link that isn't ok takes the id of the finding that
// explains (in order):
//
//  1. a core link of the same class between the same two nodes (a pair finding);
//  2. either end, when a finding names that node (ctx.ipHubs: isolated, overlay or node network
//     of one node, or a cut in progress);
//  3. a core link of the same class between the same two zones, when a zone-pair finding took it.
//
// It makes no finding of its own, and a rotating link no named cause explains stays for pair
// loss, which judges it on its visits.

import { explainLinks, isRotating, smallTally } from '../links.ts';
import type { Ctx, Link, Rule } from '../model.ts';

function causeOf(ctx: Ctx, l: Link, core: readonly Link[]): string | undefined {
  const same = core.find(
    (c) =>
      c.cls === l.cls &&
      ((c.sourceNode === l.sourceNode && c.targetNode === l.targetNode) ||
        (c.sourceNode === l.targetNode && c.targetNode === l.sourceNode)) &&
      ctx.explainedLinks.has(c.key),
  );
  if (same !== undefined) return ctx.explainedLinks.get(same.key);
  const hub = ctx.ipHubs.get(l.targetNode) ?? ctx.ipHubs.get(l.sourceNode);
  if (hub !== undefined) return hub;
  const za = ctx.zones.get(l.sourceNode);
  const zb = ctx.zones.get(l.targetNode);
  if (za === undefined || zb === undefined || za === zb) return undefined;
  for (const c of core) {
    const id = ctx.explainedLinks.get(c.key);
    if (id === undefined || !id.startsWith('zone-pair:') || c.cls !== l.cls) continue;
    const zc = [ctx.zones.get(c.sourceNode), ctx.zones.get(c.targetNode)];
    if ((zc[0] === za && zc[1] === zb) || (zc[0] === zb && zc[1] === za)) return id;
  }
  return undefined;
}

export const rotatingLinks: Rule = (ctx) => {
  const all = [...ctx.links.values()].filter((l) => l.cls !== 'local');
  const core = all.filter((l) => !isRotating(l));
  for (const l of all) {
    if (!isRotating(l) || ctx.explainedLinks.has(l.key)) continue;
    const t = smallTally(ctx, l);
    if (!t.known || t.status === 'ok') continue;
    const id = causeOf(ctx, l, core);
    if (id !== undefined) explainLinks(ctx, [l], id);
  }
  return [];
};
