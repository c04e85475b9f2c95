// What the IP-path rules share: node pairs (unordered, sorted), the evidence of a pair's failing
// links and of a node's own pod ↔ host pair, the peers a node can be judged against, and how a
// grouping (group.ts: one node, the cluster, or single pairs) becomes one draft per scope, for
// pairs (emitGrouped) or for cell symptoms on links (groupSymptoms: MTU and loss).

import { linkEvidence, type Ranked } from '../drafts.ts';
import { addKnown, groupPairs, type Grouping } from '../group.ts';
import { cellCounts, classState, smallTally, usable } from '../links.ts';
import {
  agentKey,
  cmp,
  linkKeyOf,
  pairKey,
  type Ctx,
  type Draft,
  type Link,
  type LinkClass,
} from '../model.ts';
import { compare, pool, wilson, type Counts } from '../stats.ts';
import type { Cell } from '../types.ts';

export type Pair = readonly [string, string];

/** Two nodes as an unordered pair: the smaller name first. */
export const orderedPair = (a: string, b: string): Pair => (a < b ? [a, b] : [b, a]);

/** Every unordered pair of distinct nodes that has at least one link. */
export function nodePairs(ctx: Ctx): Pair[] {
  const out: Pair[] = [];
  for (const links of ctx.pairLinks.values()) {
    const l = links[0]!;
    out.push(orderedPair(l.sourceNode, l.targetNode));
  }
  return out.sort((x, y) => cmp(x[0], y[0]) || cmp(x[1], y[1]));
}

export function evidenceOfFailing(
  ctx: Ctx,
  a: string,
  b: string,
  classes: readonly LinkClass[],
): Ranked[] {
  return classState(ctx, a, b, classes).failing.map((x) => linkEvidence(x.link, x.t));
}

/** What the node's own pod ↔ host pair says: a node that still reaches itself is up. */
export function localEvidence(ctx: Ctx, node: string): { ev: Ranked[]; ok: boolean | undefined } {
  const ev: Ranked[] = [];
  let ok: boolean | undefined;
  for (const [s, t] of [
    ['pod', 'host'],
    ['host', 'pod'],
  ] as const) {
    const l = ctx.links.get(linkKeyOf(node, s, node, t));
    if (l === undefined) continue;
    const ta = smallTally(ctx, l);
    if (!ta.known) continue;
    const good = ta.status !== 'failing';
    ok = ok === undefined ? good : ok && good;
    ev.push(linkEvidence(l, ta));
  }
  return { ev, ok };
}

export function agentStateEvidence(ctx: Ctx, node: string): Ranked[] {
  const ev: Ranked[] = [];
  for (const net of ['pod', 'host'] as const) {
    const a = ctx.agents.get(agentKey(node, net));
    if (a !== undefined && a.state !== 'ok')
      ev.push({
        text: `the controller can't read ${node}/${net}: ${a.state}${a.detail !== undefined ? ` (${a.detail})` : ''}`,
        sourceNode: node,
      });
  }
  if (ctx.coverage !== undefined && !ctx.coverage.has(node))
    ev.push({
      text: `${node} is not in the coverage list (not Ready, or cordoned)`,
      sourceNode: node,
    });
  return ev;
}

/** For each node, the peers whose pair with it can be judged on these classes. */
export function knownPeers(
  ctx: Ctx,
  pairs: readonly Pair[],
  classes: readonly LinkClass[],
): Map<string, Set<string>> {
  const known = new Map<string, Set<string>>();
  for (const [a, b] of pairs) if (classState(ctx, a, b, classes).known) addKnown(known, a, b);
  return known;
}

/** A peer of the node to run checks from (not one of `not`), if any. */
export function firstPeer(ctx: Ctx, node: string, not: readonly string[]): string | undefined {
  return ctx.nodes.find(
    (n) => n !== node && !not.includes(n) && ctx.pairLinks.has(pairKey(n, node)),
  );
}

/** The end to run checks from and its peer: the hub and some peer of it, else the pair. */
export function checkEnds(
  ctx: Ctx,
  hub: string | undefined,
  pair: Pair,
): [string, string | undefined] {
  return [
    hub ?? pair[0],
    hub !== undefined ? firstPeer(ctx, hub, []) : pair[1] !== pair[0] ? pair[1] : undefined,
  ];
}

/** What one draft of a grouped rule is about. */
export interface Scope {
  readonly subject: string;
  readonly hubs: string[];
  readonly pairs: Pair[];
  readonly cluster: boolean;
}

/** One draft per scope of a grouping: the cluster, else each hub, then each pair left. */
export function emitGrouped(
  g: Grouping,
  bad: readonly Pair[],
  make: (scope: Scope) => Draft | undefined,
): Draft[] {
  const out: Draft[] = [];
  if (g.cluster) {
    const d = make({ subject: 'cluster', hubs: [], pairs: [...bad], cluster: true });
    if (d !== undefined) out.push(d);
    return out;
  }
  for (const x of g.hubs) {
    const peers = g.hubPeers.get(x) ?? [];
    const d = make({
      subject: x,
      hubs: [x],
      pairs: peers.map((p) => [x, p] as const),
      cluster: false,
    });
    if (d !== undefined) out.push(d);
  }
  for (const p of g.pairs) {
    const d = make({ subject: `${p[0]}<->${p[1]}`, hubs: [], pairs: [p], cluster: false });
    if (d !== undefined) out.push(d);
  }
  return out;
}

/** A symptom on one link: a cell the rule judged there. */
export interface Symptom {
  readonly link: Link;
  readonly cell: Cell;
}

/** One draft of a symptom rule: its subject, its symptoms, and who is blamed. */
export type SymptomDraft<T> = (
  subject: string,
  mine: readonly T[],
  cluster: boolean,
  hub: string | undefined,
  pair: Pair,
) => Draft;

/**
 * Symptoms grouped into drafts: the cross-node ones by grouping their node pairs (the cluster,
 * hubs, then pairs), then each node's own pod ↔ host ones, which are never pairs or hubs.
 */
export function groupSymptoms<T extends Symptom>(
  ctx: Ctx,
  syms: readonly T[],
  known: ReadonlyMap<string, ReadonlySet<string>>,
  make: SymptomDraft<T>,
): Draft[] {
  const cross = syms.filter((s) => s.link.cls !== 'local');
  const pairs = new Map<string, Pair>();
  for (const { link: l } of cross)
    pairs.set(pairKey(l.sourceNode, l.targetNode), orderedPair(l.sourceNode, l.targetNode));
  const bad = [...pairs.values()];
  const g = groupPairs(bad, known, ctx.opts.hubShare);
  const out = emitGrouped(g, bad, ({ subject, hubs, pairs: ps, cluster }) => {
    const keys = new Set(ps.map(([a, b]) => pairKey(a, b)));
    const mine = cross.filter((s) => keys.has(pairKey(s.link.sourceNode, s.link.targetNode)));
    return make(subject, mine, cluster, hubs[0], ps[0]!);
  });
  const byNode = new Map<string, T[]>();
  for (const s of syms.filter((x) => x.link.cls === 'local'))
    byNode.set(s.link.sourceNode, [...(byNode.get(s.link.sourceNode) ?? []), s]);
  for (const [n, ss] of [...byNode].sort((a, b) => cmp(a[0], b[0])))
    out.push(make(`${n}/pod<->${n}/host`, ss, false, undefined, [n, n]));
  return out;
}

/**
 * STAMP's split as per-direction counts between nodes a and b, over the usable udp cells of the
 * links: packets sent a→b and how many were lost, and the same b→a. A probe's request travels
 * first, so its reflection only exists when the request arrived: the reverse leg's trials are
 * the forward's survivors. (Shares of the lost probes would mislead: with equal loss p both ways
 * a share 1/(2-p) of the attributed loss is forward, 91% at p = 0.9.) Losses STAMP could not
 * attribute (no answer came back at all) are left out of both.
 */
export function stampDirections(
  ctx: Ctx,
  links: readonly Link[],
  a: string,
): { ab: Counts; ba: Counts } {
  const ab: Counts[] = [];
  const ba: Counts[] = [];
  for (const l of links)
    for (const c of l.cells) {
      if (c.protocol !== 'udp' || !usable(ctx, c)) continue;
      const { sent, lost } = cellCounts(c);
      const fwd = Math.max(0, Number.isFinite(c.forwardLost) ? c.forwardLost : 0);
      const rev = Math.max(0, Number.isFinite(c.reverseLost) ? c.reverseLost : 0);
      const trials = Math.max(fwd + rev, sent - Math.max(0, lost - fwd - rev));
      const out = { sent: trials, lost: fwd };
      const back = { sent: trials - fwd, lost: rev };
      if (l.sourceNode === a) {
        ab.push(out);
        ba.push(back);
      } else {
        ba.push(out);
        ab.push(back);
      }
    }
  return { ab: pool(ab), ba: pool(ba) };
}

/**
 * Whether STAMP puts the loss on direction x rather than y: x's loss rate significantly above
 * y's, and y's consistent with at most (1 - directionShare) of the two (its interval reaches
 * that low: a couple of background losses the other way don't make it "both directions").
 */
export function mostlyOneWay(
  ctx: Ctx,
  x: Counts,
  y: Counts,
  confidence = ctx.opts.confidence,
): boolean {
  if (x.sent <= 0 || y.sent <= 0 || x.lost <= 0) return false;
  const rx = x.lost / x.sent;
  const share = ctx.opts.directionShare;
  return (
    wilson(y, confidence).lo <= ((1 - share) / share) * rx &&
    compare(x, y, 0, confidence).significant
  );
}
