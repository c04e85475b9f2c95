// latency-zone-pair: needs nodes labelled with two or more zones, one side with at least two
// nodes, and most of the judged node pairs between the two zones slow (any link of the pair)
// while the pairs inside each zone are not. Then the delay is between the zones (the
// inter-zone link, a transit gateway, a changed route), not on a node. Runs first, as its loss
// counterpart does: the node rule would otherwise blame a one-node zone's node.

import { draft } from '../drafts.ts';
import { cmp, pairKey, type Draft } from '../model.ts';
import { latencyZoneSteps } from '../next-steps/latency.ts';
import type { Pair } from '../reachability/pairs.ts';
import {
  lossLine,
  openSlow,
  slowEvidence,
  slowPairs,
  tailOnly,
  take,
  type LatencyRule,
  type LatencyView,
} from './links.ts';

function pairsOf(xs: readonly string[], ys: readonly string[] | undefined): Pair[] {
  const r: Pair[] = [];
  for (let i = 0; i < xs.length; i++)
    for (const y of ys ?? xs.slice(i + 1)) r.push(xs[i]! < y ? [xs[i]!, y] : [y, xs[i]!]);
  return r;
}

/** The judged and the slow pairs across two zones, when the delay is the zones' own. */
function zoneShift(
  v: LatencyView,
  n1: readonly string[],
  n2: readonly string[],
  slowKeys: ReadonlySet<string>,
): { cross: Pair[]; bad: Pair[] } | undefined {
  if (Math.max(n1.length, n2.length) < 2) return undefined;
  const judged = ([a, b]: Pair): boolean => v.known.get(a)?.has(b) === true;
  const isSlow = ([a, b]: Pair): boolean => slowKeys.has(pairKey(a, b));
  const cross = pairsOf(n1, n2).filter(judged);
  if (cross.length === 0) return undefined;
  const bad = cross.filter(isSlow);
  if (bad.length / cross.length < v.ctx.opts.zoneShare) return undefined;
  const intra = [...pairsOf(n1, undefined), ...pairsOf(n2, undefined)].filter(judged);
  if (intra.length === 0) return undefined;
  if (intra.filter(isSlow).length / intra.length > 1 - v.ctx.opts.zoneShare) return undefined;
  // A zone of one node whose every judged peer is across the pair: that is the node.
  const inPair = new Set([...n1, ...n2]);
  const lone = [n1, n2].find(
    (ns) => ns.length === 1 && ![...(v.known.get(ns[0]!) ?? [])].some((m) => !inPair.has(m)),
  );
  if (lone !== undefined) return undefined;
  return { cross, bad };
}

export const latencyZonePairs: LatencyRule = (v) => {
  const byZone = new Map<string, string[]>();
  for (const [n, z] of v.ctx.zones) byZone.set(z, [...(byZone.get(z) ?? []), n]);
  if (byZone.size < 2) return [];
  const out: Draft[] = [];
  const zones = [...byZone.keys()].sort(cmp);
  for (let i = 0; i < zones.length; i++) {
    for (let j = i + 1; j < zones.length; j++) {
      const z1 = zones[i]!;
      const z2 = zones[j]!;
      const open = openSlow(v);
      const slowKeys = new Set(slowPairs(open).map(([a, b]) => pairKey(a, b)));
      const shift = zoneShift(v, byZone.get(z1)!, byZone.get(z2)!, slowKeys);
      if (shift === undefined) continue;
      const badKeys = new Set(shift.bad.map(([a, b]) => pairKey(a, b)));
      const mine = open.filter((s) => badKeys.has(pairKey(s.link.sourceNode, s.link.targetNode)));
      const subject = `${z1}<->${z2}`;
      const id = `latency-zone-pair:${subject}`;
      take(v, mine, id);
      const loss = lossLine(v, mine);
      const tail = tailOnly(mine);
      out.push(
        draft(v.ctx, {
          kind: 'latency-zone-pair',
          subject,
          severity: 'warning',
          nodes: shift.bad.flat(),
          zones: [z1, z2],
          title: `Round trips between zones ${z1} and ${z2} are slower than usual`,
          summary: `${shift.bad.length} of ${shift.cross.length} node pairs between ${z1} and ${z2} have ${tail ? 'a p99 round trip' : 'round trips'} well above their own baseline, while pairs inside each zone do not: the delay is added between the zones (the inter-zone link or its load, a transit or NAT gateway, a route that changed), not on a node.`,
          lead: loss !== undefined ? [loss] : [],
          evidence: mine.map((s) => slowEvidence(v, s)),
          confidence: Math.min(0.9, 0.5 + 0.35 * (shift.bad.length / shift.cross.length)),
          nextSteps: latencyZoneSteps(v.ctx, ...shift.bad[0]!),
        }),
      );
    }
  }
  return out;
};
