// pair-loss: needs, on a link no broader cause took, loss significantly at or above lossyRatio
// (stats.ts: the interval at `confidence` lies there), over the link's usable cells pooled (alone
// or with its reverse on the same kind of path) or in one cell alone that holds minProbes itself
// (a rotating visit's cell holds a probe or two: it counts in its link's pool only): 1 of 20
// lost is never pair loss, nor is 1 of 1. Whatever loss is left once every broader
// cause has taken its share: one node's (a hub), the cluster's, a pair's, or one node's own
// pod ↔ host pair. STAMP's forward/reverse split says which way a pair's loss travels when one
// direction's loss rate is significantly higher and the other's is consistent with at most
// 1 - directionShare of the two (pairs.ts mostlyOneWay); a single
// protocol or size is named only when it loses significantly more than the rest, which don't.

import { cellEvidence, draft, lossFigures } from '../drafts.ts';
import { addKnown } from '../group.ts';
import {
  cellCounts,
  cellRatio,
  explainLinks,
  hasOwnProbes,
  isRotating,
  reverseOf,
  statusOf,
  usable,
} from '../links.ts';
import { type Ctx, type Draft, type Link, type Rule } from '../model.ts';
import { lossSteps } from '../next-steps/ip-paths.ts';
import { atLeast, compare, pool, type Counts } from '../stats.ts';
import type { Cell } from '../types.ts';
import {
  checkEnds,
  groupSymptoms,
  mostlyOneWay,
  stampDirections,
  type Pair,
  type Symptom,
} from './pairs.ts';

/** Severity is critical from here: half the probes lost breaks most traffic. */
const CRITICAL_LOSS = 0.5;

/**
 * The lossy cells (of links whose loss is significant: pooled or in one cell), and the pairs
 * judged at all, on links no broader cause took.
 */
function lossySymptoms(ctx: Ctx): { lossy: Symptom[]; known: Map<string, Set<string>> } {
  const lossy: Symptom[] = [];
  const known = new Map<string, Set<string>>();
  const { lossyRatio, confidence } = ctx.opts;
  const cellsOf = (l: Link | undefined): Cell[] =>
    l === undefined || ctx.explainedLinks.has(l.key) ? [] : l.cells.filter((c) => usable(ctx, c));
  for (const l of ctx.links.values()) {
    const cells = cellsOf(l);
    if (cells.length === 0) continue;
    if (l.cls !== 'local') addKnown(known, l.sourceNode, l.targetNode);
    // The link pooled, with its exact reverse on the same kind of path (a round trip crosses
    // both directions, so one-way loss shows on both), or one cell alone.
    const r = reverseOf(ctx, l);
    const both = r !== undefined && r.cls === l.cls ? [...cells, ...cellsOf(r)] : cells;
    const significant =
      atLeast(pool(cells.map(cellCounts)), lossyRatio, confidence) ||
      atLeast(pool(both.map(cellCounts)), lossyRatio, confidence) ||
      cells.some((c) => hasOwnProbes(ctx, c) && atLeast(cellCounts(c), lossyRatio, confidence));
    if (!significant) continue;
    for (const c of cells) if (cellRatio(c)! >= lossyRatio) lossy.push({ link: l, cell: c });
  }
  return { lossy, known };
}

/** A subset of the cells loses significantly more than the rest, and the rest aren't lossy. */
function only(ctx: Ctx, cells: readonly Cell[], pick: (c: Cell) => boolean): boolean {
  const these = pool(cells.filter(pick).map(cellCounts));
  const rest = pool(cells.filter((c) => !pick(c)).map(cellCounts));
  const { lossyRatio, confidence } = ctx.opts;
  return (
    rest.sent > 0 &&
    atLeast(these, lossyRatio, confidence) &&
    !atLeast(rest, lossyRatio, confidence) &&
    compare(these, rest, 0, confidence).significant
  );
}

/** What a single lossy protocol or size says about the kind of loss, if anything. */
function onlyNote(ctx: Ctx, links: readonly Link[]): string {
  const cells = links.flatMap((l) => l.cells.filter((c) => usable(ctx, c)));
  return only(ctx, cells, (c) => c.protocol === 'icmp')
    ? ' Only ICMP is lost: ICMP rate limiting or a firewall rule for ICMP, not the path itself.'
    : only(ctx, cells, (c) => c.protocol === 'tcp')
      ? ' Only TCP connects fail.'
      : only(ctx, cells, (c) => c.size === 'mtu')
        ? ' Only MTU-sized probes are lost, and not always: a path MTU problem on some of the routes (ECMP), or fragments dropped under load.'
        : '';
}

/** STAMP's direction, stated only when one way loses most, significantly (pairs.ts). */
function directionNote(ctx: Ctx, links: readonly Link[], pair: Pair): string {
  if (pair[0] === pair[1]) return '';
  const { ab, ba } = stampDirections(ctx, links, pair[0]);
  if (ab.lost + ba.lost <= 0) return '';
  const figures = `${pair[0]} → ${pair[1]}: ${Math.round(ab.lost)} of ${Math.round(ab.sent)} packets lost, ${pair[1]} → ${pair[0]}: ${Math.round(ba.lost)} of ${Math.round(ba.sent)}`;
  if (mostlyOneWay(ctx, ab, ba))
    return ` STAMP puts the loss on the way from ${pair[0]} to ${pair[1]} (${figures}).`;
  if (mostlyOneWay(ctx, ba, ab))
    return ` STAMP puts the loss on the way from ${pair[1]} to ${pair[0]} (${figures}).`;
  return ` STAMP sees loss in both directions (${figures}).`;
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
  // The worst path: the link whose usable cells, pooled, lose the most.
  let worst: Counts = { sent: 0, lost: 0 };
  for (const l of links) {
    const c = pool(l.cells.filter((x) => usable(ctx, x)).map(cellCounts));
    if (c.sent > 0 && (worst.sent === 0 || c.lost / c.sent > worst.lost / worst.sent)) worst = c;
  }
  const dir = hub === undefined && !cluster ? directionNote(ctx, links, pair) : '';
  // A pair measured by rotating visits only can't show a cut (links.ts classState): say so.
  const rotating = links.length > 0 && links.every(isRotating);
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
    severity:
      statusOf(worst, ctx.opts) === 'failing' || atLeast(worst, CRITICAL_LOSS, ctx.opts.confidence)
        ? 'critical'
        : 'warning',
    nodes: mine.flatMap((x) => [x.link.sourceNode, x.link.targetNode]),
    title: cluster ? 'Packet loss across the cluster' : `Packet loss ${where}`,
    summary: `Probes are lost ${where} and no broader cause explains it: the worst path, every probe kind and size pooled, ${lossFigures(worst, ctx.opts.confidence)}.${dir}${onlyNote(ctx, links)}${rotating ? ' These paths are measured by rotating visits only (peers.rotation), counted above in visits: a few a window, too few to tell a cut or a one-way block from heavy loss, so it is named as loss.' : ''}${hub !== undefined ? ` ${hub} is the common end: its interface, its load, or its link.` : ''}`,
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
