// host-network: needs pairs judged on the node network (host-to-host, and pod-to-host, which
// leaves the pod masqueraded to the node address) with some of those links failing. Then the
// node network between them is at fault: one node's (a hub), the cluster's, or the pair's.
// It runs after the overlay rule, which has taken the pairs whose pod traffic alone fails.

import { capList, draft, type Ranked } from '../drafts.ts';
import { groupPairs } from '../group.ts';
import { classState, explainLinks, openLinksBetween } from '../links.ts';
import { pairKey, type Ctx, type Draft, type LinkClass, type Rule } from '../model.ts';
import { hostNetworkSteps } from '../next-steps/ip-paths.ts';
import {
  emitGrouped,
  evidenceOfFailing,
  knownPeers,
  nodePairs,
  type Pair,
  type Scope,
} from './pairs.ts';

/** Most nodes fail to most nodes on the node network: one cluster-wide host-network finding. */
export function clusterWideHost(ctx: Ctx, bad: readonly Pair[], what: 'both' | 'host'): Draft {
  const id = 'host-network:cluster';
  const evidence: Ranked[] = [];
  for (const [a, b] of bad) evidence.push(...evidenceOfFailing(ctx, a, b, ['hh', 'ph', 'ov']));
  for (const [a, b] of bad) explainLinks(ctx, openLinksBetween(ctx, a, b), id);
  const nodes = [...new Set(bad.flat())];
  ctx.clusterIp ??= id;
  return draft(ctx, {
    kind: 'host-network',
    subject: 'cluster',
    severity: 'critical',
    nodes,
    title: 'The node network fails across the cluster',
    summary: `${bad.length} node pairs fail on the node network${what === 'both' ? ' and the pod network with it' : ''}, spread over most nodes: no single node is to blame. Look at what they share: the switch or VPC, a firewall or security-group change applied to every node, the routes.`,
    evidence,
    confidence: 0.7,
    nextSteps: hostNetworkSteps(ctx, nodes[0], nodes[1]),
    explains: capList(
      bad.map(([a, b]) => pairKey(a, b)),
      20,
    ),
  });
}

function hostNetworkDraft(ctx: Ctx, { subject, hubs, pairs: ps }: Scope, twoNodes: boolean): Draft {
  const id = `host-network:${subject}`;
  const evidence: Ranked[] = [];
  let hhFails = false;
  let podFails = false;
  for (const [a, b] of ps) {
    evidence.push(...evidenceOfFailing(ctx, a, b, ['hh', 'ph', 'ov']));
    if (classState(ctx, a, b, ['hh']).failing.length > 0) hhFails = true;
    if (classState(ctx, a, b, ['ov']).failing.length > 0) podFails = true;
  }
  for (const [a, b] of ps) explainLinks(ctx, openLinksBetween(ctx, a, b), id);
  const hub = hubs[0];
  if (hub !== undefined) ctx.ipHubs.set(hub, id);
  const [a, b] = ps[0]!;
  const what = hhFails
    ? `node-to-node traffic fails${podFails ? ', and pod traffic with it (the overlay rides the node network)' : " while pod traffic still passes (so the node agents' own ports or ICMP may be what is filtered)"}`
    : 'only pods reaching node addresses fails (traffic masqueraded to the node address): SNAT or a host firewall rule about pod sources';
  const summary =
    hub !== undefined
      ? `Between ${hub} and ${ps.length} of its peers ${what}; the other nodes reach each other, so look at ${hub}: its firewall, routes and interface. It is not isolated${podFails ? ' from everyone' : ''}.`
      : twoNodes
        ? `Between ${a} and ${b} ${what}. With only two nodes podmesh can't tell which side is cut off; check both.`
        : `Between ${a} and ${b} ${what}, while each still reaches other nodes: a route, firewall rule or link specific to this pair.`;
  return draft(ctx, {
    kind: 'host-network',
    subject,
    severity: 'critical',
    nodes: ps.flat(),
    title:
      hub !== undefined
        ? `The node network of ${hub} fails to most peers`
        : `The node network between ${a} and ${b} fails`,
    summary,
    evidence,
    confidence: hub !== undefined ? 0.8 : twoNodes ? 0.6 : 0.75,
    nextSteps:
      hub !== undefined ? hostNetworkSteps(ctx, hub, undefined) : hostNetworkSteps(ctx, a, b),
    explains: capList(
      ps.map(([x, y]) => pairKey(x, y)),
      20,
    ),
  });
}

export const hostNetwork: Rule = (ctx) => {
  const pairs = nodePairs(ctx);
  const classes: readonly LinkClass[] = ['hh', 'ph'];
  const known = knownPeers(ctx, pairs, classes);
  const bad = pairs.filter(([a, b]) => classState(ctx, a, b, classes).failing.length > 0);
  if (bad.length === 0) return [];
  const g = groupPairs(bad, known, ctx.opts.hubShare);
  if (g.cluster) return [clusterWideHost(ctx, bad, 'host')];
  const twoNodes = ctx.nodes.filter((n) => known.has(n)).length <= 2;
  return emitGrouped(g, bad, (scope) => hostNetworkDraft(ctx, scope, twoNodes));
};
