// mtu-blackhole: needs, on a link no broader cause took, small probes of a protocol not failing
// and the MTU-sized probes of the same protocol losing significantly and materially more
// (stats.ts compare: the G-test, and at least `contrast` more; one comparison per link and
// protocol, the family held at `confidence`): random loss hits both sizes alike and is never an
// MTU finding. Then packets over some size are lost (an
// MTU mismatch, or "fragmentation needed" filtered), which small probes alone would never show:
// one node's, the cluster's, a pair's, or on one node between its own agents. Takes the MTU
// cells only.

import { capList, cellEvidence, draft, lossFigures } from '../drafts.ts';
import { addKnown } from '../group.ts';
import { cellCounts, statusOf, usable, windowCounts } from '../links.ts';
import type { Ctx, Draft, Rule } from '../model.ts';
import { mtuSteps } from '../next-steps/ip-paths.ts';
import { bonferroni, compare, pool } from '../stats.ts';
import type { Cell } from '../types.ts';
import { checkEnds, groupSymptoms, type Pair, type Symptom } from './pairs.ts';

interface Sym extends Symptom {
  /** The small cell of the same protocol, which is answered. */
  readonly small: Cell;
}

function mtuSymptoms(ctx: Ctx): Sym[] {
  const pairs: Sym[] = [];
  for (const l of ctx.links.values()) {
    if (ctx.explainedLinks.has(l.key)) continue;
    for (const p of ['udp', 'icmp', 'tcp'] as const) {
      const small = l.cells.find((c) => c.protocol === p && c.size === 'small' && usable(ctx, c));
      const big = l.cells.find((c) => c.protocol === p && c.size === 'mtu' && usable(ctx, c));
      if (small !== undefined && big !== undefined) pairs.push({ link: l, cell: big, small });
    }
  }
  // One comparison per link and protocol: the family is held at `confidence`.
  const conf = bonferroni(ctx.opts.confidence, pairs.length);
  return pairs.filter((s) => {
    // The small cell is the reference: its window (links.ts windowCounts), so a healed small
    // probe next to an MTU window still holding the same loss is no contrast.
    const sc = windowCounts(s.small);
    if (statusOf(cellCounts(s.small), ctx.opts) === 'failing') return false;
    return compare(cellCounts(s.cell), sc, ctx.opts.contrast, conf).material;
  });
}

/** Pairs judged on MTU-sized probes, on links no broader cause took. */
function mtuKnown(ctx: Ctx): Map<string, Set<string>> {
  const known = new Map<string, Set<string>>();
  for (const l of ctx.links.values())
    if (
      l.cls !== 'local' &&
      !ctx.explainedLinks.has(l.key) &&
      l.cells.some((c) => c.size === 'mtu' && usable(ctx, c))
    )
      addKnown(known, l.sourceNode, l.targetNode);
  return known;
}

function mtuDraft(
  ctx: Ctx,
  subject: string,
  mine: readonly Sym[],
  cluster: boolean,
  hub: string | undefined,
  pair: Pair,
): Draft {
  const id = `mtu-blackhole:${subject}`;
  for (const s of mine) ctx.takenCells.set(s.cell, id);
  const overlayOnly = mine.every((s) => s.link.cls === 'ov');
  const hostToPodIcmpOnly = mine.every(
    (s) => s.link.path === 'host-to-pod' && s.cell.protocol === 'icmp',
  );
  const where = overlayOnly
    ? "only on paths to pods (the overlay): the tunnel device's MTU is larger than what fits in the node network after encapsulation"
    : 'on the node network too: a link on the way has a smaller MTU than the nodes use, and the "fragmentation needed" messages that would tell them are lost or filtered';
  const scope = cluster
    ? 'across the cluster'
    : hub !== undefined
      ? `between ${hub} and most of its peers (check ${hub}'s MTU settings against the others')`
      : pair[0] === pair[1]
        ? `on ${pair[0]} between its pod and host agents`
        : `between ${pair[0]} and ${pair[1]}`;
  return draft(ctx, {
    kind: 'mtu-blackhole',
    subject,
    severity: 'critical',
    nodes: mine.flatMap((s) => [s.link.sourceNode, s.link.targetNode]),
    title: cluster
      ? 'MTU black hole across the cluster'
      : hub !== undefined
        ? `MTU black hole on ${hub}`
        : `MTU black hole ${pair[0] === pair[1] ? `on ${pair[0]}` : `between ${pair[0]} and ${pair[1]}`}`,
    summary: `Small probes are answered but MTU-sized ones are lost ${scope}, ${where}. MTU-sized: ${lossFigures(pool(mine.map((s) => cellCounts(s.cell))), ctx.opts.confidence)}; small probes of the same protocols: ${lossFigures(pool(mine.map((s) => cellCounts(s.small))), ctx.opts.confidence)}. Small requests work and large transfers (TLS handshakes, big responses) hang.${hostToPodIcmpOnly ? " Only host agents' ICMP to pods is affected: if the host agents size MTU probes to their own interface, set probes.mtuBytes to the pod network's MTU." : ''}`,
    evidence: mine.map((s) => {
      const small = cellCounts(s.small);
      return cellEvidence(s.cell, ` (small: ${Math.round(small.lost)} of ${small.sent} lost)`);
    }),
    confidence: hostToPodIcmpOnly ? 0.5 : 0.85,
    nextSteps: mtuSteps(ctx, ...checkEnds(ctx, hub, pair)),
    explains: capList(
      mine.map(
        (s) => `${s.link.sourceNode}->${s.link.targetNode} ${s.link.path} ${s.cell.protocol} mtu`,
      ),
      20,
    ),
  });
}

export const mtuBlackholes: Rule = (ctx) => {
  const syms = mtuSymptoms(ctx);
  if (syms.length === 0) return [];
  return groupSymptoms(ctx, syms, mtuKnown(ctx), (subject, mine, cluster, hub, pair) =>
    mtuDraft(ctx, subject, mine, cluster, hub, pair),
  );
};
