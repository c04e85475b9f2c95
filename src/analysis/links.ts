// Judging cells and links: a cell's counts (its fresh view, fresh.ts) and whether it counts at
// all, a link's pooled small-probe tally and its status by a significance test (stats.ts), the
// state of some link classes between two nodes, and the bookkeeping that hands links to the
// finding that explains them. Every link rule reads links through these, and every rule reads a
// cell's sent/lost through cellCounts only, so what a cell's evidence is (the whole window, or
// fresh samples) is decided in one place.

import { cellView, cutView, type FreshCounts } from './fresh.ts';
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
 * A cell with the views triage judges it on, attached per link (judgeFreshness): `view` (healed
 * or its window) for every rule, `cut` (a proven hard failure) for isolation only, and for a
 * rotating visit's cell (rotatingViews) `weight`, what one of its probes counts for, and
 * `pooled`, the visits its link's rotating cells of its size hold together.
 */
type JudgedCell = Cell & {
  readonly view?: FreshCounts;
  readonly cut?: FreshCounts;
  readonly weight?: number;
  readonly pooled?: number;
};

/**
 * The counts a cell is judged on: its trailing run when that proves the path healed (fresh.ts),
 * else its window. A hard failure is not seen here: a run of failures after a clean window is a
 * change, which heavy partial loss starting makes too, and judged against the window of another
 * size or kind it would fake a contrast (an MTU black hole at the start of 80% loss). Only
 * isolation, with most of a node's links at once, reads it (cutCounts, withHardFailures).
 */
export function cellCounts(c: Cell): FreshCounts {
  const v = (c as JudgedCell).view;
  return v ?? cellView(finite(c.sent), finite(c.lost), c.run);
}

/**
 * A cell's window counts, whatever its fresh view: the reference side of a contrast ("A fails
 * while B works"). B healed while A's window still holds the same fault is no contrast (the
 * tail of healed loss read as an MTU black hole and a blocked TCP port in the lab); so B is
 * judged on its window, and A on its fresh view, which clears the claim once A heals.
 */
export function windowCounts(c: Cell): FreshCounts {
  const sent = finite(c.sent) * ((c as JudgedCell).weight ?? 1);
  const r =
    typeof c.lossRatio === 'number' && Number.isFinite(c.lossRatio)
      ? Math.min(1, Math.max(0, c.lossRatio))
      : sent > 0
        ? Math.min(1, finite(c.lost) / sent)
        : 0;
  return { sent, lost: r * sent, fresh: 'window' };
}

/** A tally's window counts (the reference side of a contrast, as windowCounts). */
export const windowOf = (t: Tally): { sent: number; lost: number } => t.window ?? t;

/** The counts isolation judges a cell on: its link's proven hard failure, if any. */
export function cutCounts(c: Cell): FreshCounts {
  return (c as JudgedCell).cut ?? cellCounts(c);
}

const countsIn = (ctx: Ctx, c: Cell): FreshCounts =>
  ctx.hardFailures ? cutCounts(c) : cellCounts(c);

/**
 * A link's cells with their views attached: each size's kinds together are a hard failure when
 * all of them end in failures that the loss before can't explain (cutView); otherwise each cell
 * is judged on its own (healed or its window). Called once per link when the view is built.
 */
export function judgeFreshness(cells: readonly Cell[]): Cell[] {
  const cut = new Map<Cell, FreshCounts>();
  for (const size of ['small', 'mtu'] as const) {
    const group = cells.filter((c) => c.size === size);
    const views = cutView(
      group.map((c) => ({ sent: finite(c.sent), lost: finite(c.lost), run: c.run })),
    );
    views?.forEach((v, i) => cut.set(group[i]!, v));
  }
  const rotating = rotatingViews(cells);
  return cells.map((c): JudgedCell => {
    const hard = cut.get(c);
    return {
      ...c,
      view: cellCounts(c),
      ...(hard !== undefined ? { cut: hard } : {}),
      ...rotating.get(c),
    };
  });
}

/**
 * A rotating visit (peers.rotation) is one probe of each kind at the same moment, so the kinds'
 * results of one visit are one sample of the path, not independent ones: a hiccup of a second
 * loses all of them. On a core link that is 3 of 180 probes; on a rotating link holding five
 * visits it would be 3 of 15, significantly lossy. So a link's rotating cells (of a size) are
 * counted in visits: each probe weighs 1 / (the kinds that have results), the window's ratios
 * unchanged, and the cells count once their visits together reach minProbes (usable, gateCount).
 * Only window views are weighted: a healed run is judged on its own few successes as before.
 */
function rotatingViews(
  cells: readonly Cell[],
): Map<Cell, { view: FreshCounts; weight: number; pooled: number }> {
  const out = new Map<Cell, { view: FreshCounts; weight: number; pooled: number }>();
  for (const size of ['small', 'mtu'] as const) {
    const group = cells.filter((c) => c.rotating === true && c.size === size && finite(c.sent) > 0);
    if (group.length === 0) continue;
    const weight = 1 / group.length;
    const pooled = group.reduce((n, c) => n + finite(c.sent), 0) * weight;
    for (const c of group) {
      const k = cellCounts(c);
      const view =
        k.fresh === 'window' ? { sent: k.sent * weight, lost: k.lost * weight, fresh: k.fresh } : k;
      out.set(c, { view, weight, pooled });
    }
  }
  return out;
}

/** The loss ratio a cell is judged on, clamped; null when it has no probes. */
export function cellRatio(c: Cell): number | null {
  return ratioOf(c, cellCounts(c));
}

/** The loss ratio of a cell's counts: the stated ratio for its window, else lost / sent. */
function ratioOf(c: Cell, k: FreshCounts): number | null {
  if (k.sent <= 0) return null;
  const r =
    k.fresh === 'window' && typeof c.lossRatio === 'number' && Number.isFinite(c.lossRatio)
      ? c.lossRatio
      : k.lost / k.sent;
  return Math.min(1, Math.max(0, r));
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

/**
 * The samples a cell's minProbes gate counts: its own, or for a rotating visit's cell judged on
 * its window, the visits its link's rotating cells of its size hold (rotatingViews). The rules
 * then judge the link's pooled counts (tally), and a cell alone only once it holds minProbes
 * itself, in visit weight (hasOwnProbes).
 */
function gateCount(c: Cell, k: FreshCounts): number {
  const pooled = (c as JudgedCell).pooled;
  return pooled !== undefined && k.fresh === 'window' ? Math.max(pooled, k.sent) : k.sent;
}

/** Whether a cell holds minProbes of its own (a rotating cell's, weighted, rarely does). */
export function hasOwnProbes(ctx: Ctx, c: Cell): boolean {
  return cellCounts(c).sent >= ctx.opts.minProbes;
}

/**
 * Whether a cell counts at all: enough probes (a hard failure counts with fewer: its run is the
 * proof; a rotating visit's cell counts its link's rotating visits, gateCount), a trusted
 * source, a target that exists. Isolation (ctx.hardFailures) reads the core set only: a node's
 * watchers guarantee it is in enough core sets (docs/scale.md), while a rotating link holds too
 * few probes to be called failing (60 of 60 lost is the fewest, options.ts), so it could only
 * ever count as a peer that still works.
 */
export function usable(ctx: Ctx, c: Cell): boolean {
  const k = countsIn(ctx, c);
  if (ratioOf(c, k) === null || (k.fresh !== 'failing' && gateCount(c, k) < ctx.opts.minProbes))
    return false;
  if (ctx.hardFailures && c.rotating === true) return false;
  if (ctx.untrusted.has(agentKey(c.sourceNode, c.sourceNetwork))) return false;
  if (ctx.absent.has(agentKey(c.targetNode, c.targetNetwork))) return false;
  return !ctx.takenCells.has(c);
}

export function tally(ctx: Ctx, cells: readonly Cell[]): Tally {
  let sent = 0;
  let lost = 0;
  const protocols = new Set<string>();
  let lastFailure: string | null = null;
  let windowSent = 0;
  let windowLost = 0;
  let fresh = false;
  // A hard failure (fresh.ts) is its own proof of a change: a run of failures whose chance under
  // the loss before it is below CUT_ALPHA. Its few samples would never pass the interval test on
  // their own. Whether the change is a cut is only told by many links at once (isolation).
  let hard = true;
  for (const c of cells) {
    if (!usable(ctx, c)) continue;
    const k = countsIn(ctx, c);
    const r = ratioOf(c, k)!;
    const s = k.sent;
    fresh ||= k.fresh !== 'window';
    hard &&= k.fresh === 'failing';
    windowSent += finite(c.sent);
    windowLost += finite(c.lost);
    sent += s;
    lost += r * s;
    protocols.add(c.protocol);
    if (c.lastFailure !== null && typeof c.lastFailure === 'string' && r > 0)
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
    status: hard ? 'failing' : statusOf({ sent, lost }, ctx.opts),
    protocols: [...protocols].sort(cmp),
    lastFailure,
    ...(fresh ? { window: { sent: windowSent, lost: windowLost } } : {}),
  };
}

/**
 * Runs a rule with proven hard failures counting as failing links (the isolation rule): one
 * link's run of failures after a clean window can be heavy partial loss starting (80% loses
 * three probes of each kind in a row one time in seven), but most of a node's links doing it at
 * once, both ways, on the pod and the node network, is a cut. Tallies are recomputed both ways.
 */
export function withHardFailures<T>(ctx: Ctx, run: () => T): T {
  ctx.hardFailures = true;
  ctx.smallTallies.clear();
  try {
    return run();
  } finally {
    ctx.hardFailures = false;
    ctx.smallTallies.clear();
  }
}

/** A link measured by rotating visits only (peers.rotation): every cell of it is rotating. */
export const isRotating = (l: Link): boolean =>
  l.cells.length > 0 && l.cells.every((c) => c.rotating === true);

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

/**
 * The open links of some classes between two nodes, judged on small probes. Core links only:
 * the class rules (zone pair, isolation, overlay, node network) weigh a node's peers that fail
 * against those that work, and a rotating link (peers.rotation) holds too few visits ever to
 * be called failing (60 of 60 lost is the fewest), so it could only count as a peer that still
 * works. They rest on the core set, whose watchers guarantee every node an in-degree
 * (docs/scale.md); the rotating links of a cause they name take its id (reachability/rotating.ts).
 */
export function classState(
  ctx: Ctx,
  a: string,
  b: string,
  classes: readonly LinkClass[],
): ClassState {
  const links: { link: Link; t: Tally }[] = [];
  for (const l of openLinksBetween(ctx, a, b)) {
    if (!classes.includes(l.cls) || isRotating(l)) continue;
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
