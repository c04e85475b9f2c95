// Judging cells and links: a cell's counts and whether it counts at all, a link's pooled
// small-probe tally and its status by a significance test (stats.ts), the state of some link
// classes between two nodes, and the bookkeeping that hands links to the finding that explains
// them. Every link rule reads links through these, and every rule reads a cell's sent/lost
// through cellCounts only, so what a cell's evidence is (the whole window, or fresh samples)
// is decided in one place.

import {
  agentKey,
  cmp,
  finite,
  linkKeyOf,
  pairKey,
  type Ctx,
  type Link,
  type LinkClass,
  type Status,
  type Tally,
} from './model.ts';
import type { TriageOptions } from './options.ts';
import { atLeast, type Counts } from './stats.ts';
import type { Cell } from './types.ts';

/**
 * The one accessor of a cell's counts: probes sent and lost (loss-weighted: the stated ratio
 * times sent, so a cell whose ratio and counts disagree still pools sanely). {0, 0} when the
 * cell has no probes.
 */
export function cellCounts(c: Cell): Counts {
  const sent = finite(c.sent);
  if (sent <= 0) return { sent: 0, lost: 0 };
  const r =
    typeof c.lossRatio === 'number' && Number.isFinite(c.lossRatio)
      ? c.lossRatio
      : finite(c.lost) / sent;
  return { sent, lost: Math.min(1, Math.max(0, r)) * sent };
}

/** A cell's loss ratio (from cellCounts); null when it has no probes. */
export function cellRatio(c: Cell): number | null {
  const { sent, lost } = cellCounts(c);
  return sent > 0 ? lost / sent : null;
}

/**
 * Failing when the loss is significantly at or above failRatio (its interval at `confidence`
 * lies there), lossy when significantly at or above lossyRatio, else ok: 1 of 20 lost is ok,
 * and 80% random loss is lossy, not a cut.
 */
export function statusOf(counts: Counts, opts: TriageOptions): Status {
  return atLeast(counts, opts.failRatio, opts.confidence)
    ? 'failing'
    : atLeast(counts, opts.lossyRatio, opts.confidence)
      ? 'lossy'
      : 'ok';
}

/** Whether a cell counts at all: enough probes, a trusted source, a target that exists. */
export function usable(ctx: Ctx, c: Cell): boolean {
  if (cellCounts(c).sent < ctx.opts.minProbes) return false;
  if (ctx.untrusted.has(agentKey(c.sourceNode, c.sourceNetwork))) return false;
  if (ctx.absent.has(agentKey(c.targetNode, c.targetNetwork))) return false;
  return !ctx.takenCells.has(c);
}

export function tally(ctx: Ctx, cells: readonly Cell[]): Tally {
  let sent = 0;
  let lost = 0;
  const protocols = new Set<string>();
  let lastFailure: string | null = null;
  for (const c of cells) {
    if (!usable(ctx, c)) continue;
    const n = cellCounts(c);
    sent += n.sent;
    lost += n.lost;
    protocols.add(c.protocol);
    if (c.lastFailure !== null && typeof c.lastFailure === 'string' && cellRatio(c)! > 0)
      lastFailure ??= c.lastFailure;
  }
  if (sent === 0)
    return { known: false, sent, lost, ratio: 0, status: 'unknown', protocols: [], lastFailure };
  const ratio = lost / sent;
  return {
    known: true,
    sent,
    lost,
    ratio,
    status: statusOf({ sent, lost }, ctx.opts),
    protocols: [...protocols].sort(cmp),
    lastFailure,
  };
}

export const smallCells = (l: Link): Cell[] => l.cells.filter((c) => c.size === 'small');
export function smallTally(ctx: Ctx, l: Link): Tally {
  let t = ctx.smallTallies.get(l);
  if (t === undefined) {
    t = tally(ctx, smallCells(l));
    ctx.smallTallies.set(l, t);
  }
  return t;
}

export function reverseOf(ctx: Ctx, l: Link): Link | undefined {
  return ctx.links.get(linkKeyOf(l.targetNode, l.targetNet, l.sourceNode, l.sourceNet));
}

/** Marks links as explained by `id` (first cause wins). */
export function explainLinks(ctx: Ctx, links: Iterable<Link>, id: string): void {
  for (const l of links) if (!ctx.explainedLinks.has(l.key)) ctx.explainedLinks.set(l.key, id);
}

/** Cross-node links between two nodes, both directions, not yet explained. */
export function openLinksBetween(ctx: Ctx, a: string, b: string): Link[] {
  return (ctx.pairLinks.get(pairKey(a, b)) ?? []).filter((l) => !ctx.explainedLinks.has(l.key));
}

export interface ClassState {
  readonly known: boolean;
  /** Failing links (pooled small probes significantly at or over failRatio). */
  readonly failing: readonly { link: Link; t: Tally }[];
  /** Every known link with its tally. */
  readonly links: readonly { link: Link; t: Tally }[];
}

/** The open links of some classes between two nodes, judged on small probes. */
export function classState(
  ctx: Ctx,
  a: string,
  b: string,
  classes: readonly LinkClass[],
): ClassState {
  const links: { link: Link; t: Tally }[] = [];
  for (const l of openLinksBetween(ctx, a, b)) {
    if (!classes.includes(l.cls)) continue;
    const t = smallTally(ctx, l);
    if (t.known) links.push({ link: l, t });
  }
  return {
    known: links.length > 0,
    failing: links.filter((x) => x.t.status === 'failing'),
    links,
  };
}

/** A finding id saying the IP paths of this agent are broken, if any. */
export function ipHeldBack(ctx: Ctx, node: string, net: string): string | undefined {
  const hub = ctx.ipHubs.get(node) ?? ctx.clusterIp;
  if (hub !== undefined) return hub;
  // Without a finding naming the node, still hold back a source most of whose paths fail;
  // paths to a node some finding already blames are that node's doing, not this source's.
  let known = 0;
  let failing = 0;
  let reason: string | undefined;
  for (const l of ctx.outLinks.get(agentKey(node, net)) ?? []) {
    if (l.cls === 'local' || ctx.ipHubs.has(l.targetNode)) continue;
    const t = smallTally(ctx, l);
    if (!t.known) continue;
    known++;
    if (t.status === 'failing') {
      failing++;
      reason ??= ctx.explainedLinks.get(l.key);
    }
  }
  if (failing >= 2 && failing / known >= ctx.opts.hubShare)
    return reason ?? `failing IP paths from ${node}/${net}`;
  return undefined;
}

/**
 * Whether the classes fail in every measured direction between two nodes: a→b (links from a
 * to b) and b→a. One-way failures are asymmetric paths, not a cut.
 */
export function failsBothWays(
  ctx: Ctx,
  a: string,
  b: string,
  classes: readonly LinkClass[],
): boolean {
  const st = classState(ctx, a, b, classes);
  if (st.failing.length === 0) return false;
  for (const [x, y] of [
    [a, b],
    [b, a],
  ] as const) {
    const dir = st.links.filter((l) => l.link.sourceNode === x && l.link.targetNode === y);
    if (dir.length > 0 && !dir.some((l) => l.t.status === 'failing')) return false;
  }
  return true;
}
