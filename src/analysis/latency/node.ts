// latency-node: needs a node slow with at least hubShare of the peers it could be judged with,
// and with at least two of them (group.ts, the same "one node's fault" as the loss kinds). Then
// the delay is added on that node: its NIC or link saturated, its CPU busy in softirq. When most
// nodes are such hubs, it is the cluster's (subject `cluster`). The node's own slow pod ↔ host
// links go with it. What no hub explains is left to latency-pair.

import { draft } from '../drafts.ts';
import { groupPairs } from '../group.ts';
import { pairKey, type Draft } from '../model.ts';
import { latencySteps } from '../next-steps/latency.ts';
import { firstPeer } from '../reachability/pairs.ts';
import {
  lossLine,
  openSlow,
  slowEvidence,
  slowPairs,
  tailOnly,
  take,
  type LatencyRule,
  type LatencyView,
  type SlowLink,
} from './links.ts';

function nodeDraft(
  v: LatencyView,
  subject: string,
  hub: string | undefined,
  peers: readonly string[],
  mine: readonly SlowLink[],
): Draft {
  const id = `latency-node:${subject}`;
  take(v, mine, id);
  const loss = lossLine(v, mine);
  const judged = hub !== undefined ? (v.known.get(hub)?.size ?? peers.length) : 0;
  const tail = tailOnly(mine);
  const what = tail ? 'p99 round trips' : 'round trips';
  return draft(v.ctx, {
    kind: 'latency-node',
    subject,
    severity: 'warning',
    nodes:
      hub !== undefined
        ? [hub, ...peers]
        : mine.flatMap((s) => [s.link.sourceNode, s.link.targetNode]),
    title:
      hub !== undefined
        ? `Round trips to and from ${hub} are slower than usual`
        : 'Round trips across the cluster are slower than usual',
    summary:
      hub !== undefined
        ? `${what} between ${hub} and ${peers.length} of its ${judged} judged peers are well above their own baseline, with no loss: the delay is added on ${hub} (its link or NIC saturated and queueing, its CPU busy in softirq or steal time, a shaping rule), not on the paths between the others.`
        : `${what} between most nodes are well above their own baseline, with no loss: something every path shares (the node network's switches or uplinks, a change rolled out to every node) adds delay.`,
    lead: [
      ...(hub !== undefined
        ? [{ text: `${hub}: slow with ${peers.length} of ${judged} judged peers`, sourceNode: hub }]
        : []),
      ...(loss !== undefined ? [loss] : []),
    ],
    evidence: mine.map((s) => slowEvidence(v, s)),
    confidence: hub !== undefined ? Math.min(0.85, 0.55 + 0.3 * (peers.length / judged)) : 0.6,
    nextSteps: latencySteps(
      v.ctx,
      hub ?? peers[0] ?? mine[0]!.link.sourceNode,
      hub !== undefined ? firstPeer(v.ctx, hub, []) : undefined,
    ),
  });
}

export const latencyNodes: LatencyRule = (v) => {
  const open = openSlow(v);
  if (open.length === 0) return [];
  const bad = slowPairs(open);
  const g = groupPairs(bad, v.known, v.ctx.opts.hubShare);
  if (g.cluster) {
    const local = v.slow.filter((s) => s.link.cls === 'local' && !v.taken.has(s.link.key));
    return [nodeDraft(v, 'cluster', undefined, [], [...open, ...local])];
  }
  const out: Draft[] = [];
  for (const hub of g.hubs) {
    const peers = g.hubPeers.get(hub) ?? [];
    const keys = new Set(peers.map((p) => pairKey(hub, p)));
    const mine = v.slow.filter(
      (s) =>
        !v.taken.has(s.link.key) &&
        (s.link.cls === 'local'
          ? s.link.sourceNode === hub
          : keys.has(pairKey(s.link.sourceNode, s.link.targetNode))),
    );
    out.push(nodeDraft(v, hub, hub, peers, mine));
  }
  return out;
};
