// pair-loss: needs usable cells, on links no broader cause took, losing at least lossyRatio.
// Whatever loss is left once every broader cause has taken its share: one node's (a hub), the
// cluster's, a pair's, or one node's own pod ↔ host pair. STAMP's forward/reverse split says
// which way a pair's loss travels; a single lossy protocol or size says what kind of loss.

import { cellEvidence, draft, pct } from '../drafts.ts';
import { addKnown } from '../group.ts';
import { cellRatio, explainLinks, smallTally, usable } from '../links.ts';
import { cmp, type Ctx, type Draft, type Link, type Rule } from '../model.ts';
import { lossSteps } from '../next-steps/ip-paths.ts';
import { checkEnds, groupSymptoms, type Pair, type Symptom } from './pairs.ts';

/** The lossy cells, and the pairs judged at all, on links no broader cause took. */
function lossySymptoms(ctx: Ctx): { lossy: Symptom[]; known: Map<string, Set<string>> } {
  const lossy: Symptom[] = [];
  const known = new Map<string, Set<string>>();
  for (const l of ctx.links.values()) {
    if (ctx.explainedLinks.has(l.key)) continue;
    for (const c of l.cells) {
      if (!usable(ctx, c)) continue;
      if (l.cls !== 'local') addKnown(known, l.sourceNode, l.targetNode);
      if (cellRatio(c)! >= ctx.opts.lossyRatio) lossy.push({ link: l, cell: c });
    }
  }
  return { lossy, known };
}

/** STAMP's split, summed per direction of travel between the pair (a→b, b→a). */
function stampSplit(ctx: Ctx, links: readonly Link[], pair: Pair): [number, number] {
  let ab = 0;
  let ba = 0;
  if (pair[0] !== pair[1]) {
    for (const l of links)
      for (const c of l.cells) {
        if (c.protocol !== 'udp' || !usable(ctx, c)) continue;
        const out = l.sourceNode === pair[0] ? 1 : 0;
        if (out) {
          ab += Math.max(0, c.forwardLost);
          ba += Math.max(0, c.reverseLost);
        } else {
          ba += Math.max(0, c.forwardLost);
          ab += Math.max(0, c.reverseLost);
        }
      }
  }
  return [ab, ba];
}

/** What a single lossy protocol or size says about the kind of loss, if anything. */
function onlyNote(mine: readonly Symptom[]): string {
  const protocols = [...new Set(mine.map((x) => x.cell.protocol))].sort(cmp);
  const sizes = [...new Set(mine.map((x) => x.cell.size))];
  return protocols.length === 1 && protocols[0] === 'icmp'
    ? ' Only ICMP is lost: ICMP rate limiting or a firewall rule for ICMP, not the path itself.'
    : protocols.length === 1 && protocols[0] === 'tcp'
      ? ' Only TCP connects fail.'
      : sizes.length === 1 && sizes[0] === 'mtu'
        ? ' Only MTU-sized probes are lost, and not always: a path MTU problem on some of the routes (ECMP), or fragments dropped under load.'
        : '';
}

function lossDraft(
  ctx: Ctx,
  subject: string,
  mine: readonly Symptom[],
  cluster: boolean,
  hub: string | undefined,
  pair: Pair,
): Draft {
  const id = `pair-loss:${subject}`;
  const links = [...new Set(mine.map((x) => x.link))];
  explainLinks(ctx, links, id);
  const worst = Math.max(...links.map((l) => smallTally(ctx, l).ratio));
  const [ab, ba] = stampSplit(ctx, links, pair);
  const dir =
    hub === undefined && !cluster && ab + ba > 0
      ? ab >= ctx.opts.directionShare * (ab + ba)
        ? ` STAMP puts the loss on the way from ${pair[0]} to ${pair[1]}.`
        : ba >= ctx.opts.directionShare * (ab + ba)
          ? ` STAMP puts the loss on the way from ${pair[1]} to ${pair[0]}.`
          : ' STAMP sees loss in both directions.'
      : '';
  const where = cluster
    ? 'across most of the cluster'
    : hub !== undefined
      ? `between ${hub} and most of its peers`
      : pair[0] === pair[1]
        ? `between ${pair[0]}'s pod and host agents`
        : `between ${pair[0]} and ${pair[1]}`;
  return draft(ctx, {
    kind: 'pair-loss',
    subject,
    severity: worst >= ctx.opts.failRatio ? 'critical' : 'warning',
    nodes: mine.flatMap((x) => [x.link.sourceNode, x.link.targetNode]),
    title: cluster ? 'Packet loss across the cluster' : `Packet loss ${where}`,
    summary: `Probes are lost ${where} (worst path ${pct(worst)} over small probes) and no broader cause explains it.${dir}${onlyNote(mine)}${hub !== undefined ? ` ${hub} is the common end: its interface, its load, or its link.` : ''}`,
    evidence: mine.map((x) => cellEvidence(x.cell)),
    confidence: hub !== undefined || cluster ? 0.7 : 0.6,
    nextSteps: lossSteps(ctx, ...checkEnds(ctx, hub, pair)),
  });
}

export const pairLoss: Rule = (ctx) => {
  const { lossy, known } = lossySymptoms(ctx);
  if (lossy.length === 0) return [];
  return groupSymptoms(ctx, lossy, known, (subject, mine, cluster, hub, pair) =>
    lossDraft(ctx, subject, mine, cluster, hub, pair),
  );
};
