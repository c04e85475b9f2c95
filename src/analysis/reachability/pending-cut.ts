// A cut in progress: a node whose peers' newest probes to and from it all fail, on every kind of
// every link, with most of its peers, while isolation (which needs every link proven) is not yet
// named. The links are proven in different rounds: a pod link whose window began with the cut is
// proven at once, a host link with a clean window behind it a probe or two later. Until then
// the proven links alone read as an overlay failure or pair loss on that node, which is wrong
// for the seconds it lasts (the lab saw `overlay-broken`, `host-network` and `pair-loss` on the
// way to `node-isolated`). So this rule, right after isolation, holds the node's links back for
// those seconds: no finding names them, and DNS, port and coverage symptoms on the node are held
// back too (ipHubs). It makes no finding of its own; a real cut is named by isolation a round
// later, and anything else shows again as soon as one probe to the node is answered.
//
// Why this can't hide a fault for long: it needs the LAST result of every small probe kind on
// every link between the node and most of its peers (at least two) to be a failure. Random loss
// of 80% on all of a node's links passes that in 0.8^(3 kinds × 2 directions × peers) of rounds
// (about 2% of rounds with 3 peers), and a finding outlives two rounds without its evidence anyway.

import { validRun } from '../fresh.ts';
import { explainLinks, isRotating } from '../links.ts';
import { agentKey, finite, pairKey, type Ctx, type Link, type Rule } from '../model.ts';

/** The id links held back this way are explained by: never a finding, so nothing reports it. */
export const PENDING_CUT = 'pending-cut';

/**
 * Whether every small cell with a trailing run on these links ends in failures (and at least
 * one does). Cells without a run (older agents) say nothing either way; nor do cells to an
 * agent that isn't there or from a starved prober (their failures are no news of a cut).
 */
function allFailNow(ctx: Ctx, links: readonly Link[]): boolean {
  let failing = 0;
  for (const l of links)
    for (const c of l.cells) {
      if (c.size !== 'small') continue;
      if (ctx.absent.has(agentKey(c.targetNode, c.targetNetwork))) continue;
      if (ctx.untrusted.has(agentKey(c.sourceNode, c.sourceNetwork))) continue;
      const r = validRun(finite(c.sent), finite(c.lost), c.run);
      if (r === undefined) continue;
      if (r.ok) return false;
      failing++;
    }
  return failing > 0;
}

export const pendingCuts: Rule = (ctx) => {
  for (const x of ctx.nodes) {
    if (ctx.ipHubs.has(x)) continue;
    let peers = 0;
    let cut = 0;
    for (const p of ctx.nodes) {
      if (p === x) continue;
      // Core links only: a rotating link's newest visit may be a period old, from before a cut.
      const links = (ctx.pairLinks.get(pairKey(x, p)) ?? []).filter(
        (l) => !ctx.explainedLinks.has(l.key) && !isRotating(l),
      );
      if (links.length === 0) continue;
      peers++;
      if (allFailNow(ctx, links)) cut++;
    }
    if (cut < 2 || cut < ctx.opts.hubShare * peers) continue;
    for (const p of ctx.nodes)
      if (p !== x) explainLinks(ctx, ctx.pairLinks.get(pairKey(x, p)) ?? [], PENDING_CUT);
    ctx.ipHubs.set(x, PENDING_CUT);
  }
  return [];
};
