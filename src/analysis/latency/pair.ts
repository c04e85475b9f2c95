// latency-pair: whatever slow links no zone or node explains, per node pair (both directions:
// a round trip can't say which way the delay travels), or a node's own pod ↔ host pair. The
// links are not lossy (lossy links are pair-loss's): slow, not lossy. One pair slow on its
// own is its path: a route, a congested hop between the two, one node's queue toward the other.

import { draft } from '../drafts.ts';
import { cmp, pairKey, type Draft } from '../model.ts';
import { latencySteps } from '../next-steps/latency.ts';
import {
  lossLine,
  slowEvidence,
  tailOnly,
  take,
  type LatencyRule,
  type SlowLink,
} from './links.ts';

export const latencyPairs: LatencyRule = (v) => {
  const groups = new Map<string, { a: string; b: string; mine: SlowLink[] }>();
  for (const s of v.slow) {
    if (v.taken.has(s.link.key)) continue;
    const { sourceNode: x, targetNode: y } = s.link;
    const local = s.link.cls === 'local';
    const [a, b] = x < y ? [x, y] : [y, x];
    const subject = local ? `${x}/pod<->${x}/host` : pairKey(a, b);
    const g = groups.get(subject) ?? { a, b, mine: [] };
    g.mine.push(s);
    groups.set(subject, g);
  }
  const out: Draft[] = [];
  for (const [subject, { a, b, mine }] of [...groups].sort((p, q) => cmp(p[0], q[0]))) {
    take(v, mine, `latency-pair:${subject}`);
    const loss = lossLine(v, mine);
    const where = a === b ? `between ${a}'s pod and host agents` : `between ${a} and ${b}`;
    const tail = tailOnly(mine);
    out.push(
      draft(v.ctx, {
        kind: 'latency-pair',
        subject,
        severity: 'warning',
        nodes: [a, b],
        title: `Round trips ${where} are slower than usual`,
        summary: `${tail ? 'The p99 round trip' : 'Round trips'} ${where} ${tail ? 'is' : 'are'} well above ${tail ? 'its' : 'their'} own baseline while no probes are lost: slow, not lossy. ${a === b ? `The delay is inside ${a} (its CPU, its pod network's bridge or veth).` : `No other pair of these nodes shows it, so it is this path: a congested hop between them, a route that changed, or one end queueing toward the other.`}`,
        lead: loss !== undefined ? [loss] : [],
        evidence: mine.map((s) => slowEvidence(v, s)),
        confidence: tail ? 0.5 : 0.6,
        nextSteps: latencySteps(v.ctx, a, a === b ? undefined : b),
      }),
    );
  }
  return out;
};
