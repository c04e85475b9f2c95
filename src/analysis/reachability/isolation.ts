// node-isolated: needs node pairs judged on both the node network (host-to-host) and the
// overlay, and a node whose pairs fail both ways on both with most of its peers (group.ts).
// Then the node or its link is cut off; it takes every failing link to and from it, so no
// overlay, node network or loss finding repeats it. Most nodes at once is the cluster's node
// network instead (host-network:cluster).

import { capList, draft, type Ranked } from '../drafts.ts';
import { addKnown, groupPairs } from '../group.ts';
import {
  classState,
  explainLinks,
  failsBothWays,
  isRotating,
  openLinksBetween,
  smallTally,
  withHardFailures,
} from '../links.ts';
import { agentKey, pairKey, type Ctx, type Draft, type Rule } from '../model.ts';
import { isolatedSteps } from '../next-steps/ip-paths.ts';
import { clusterWideHost } from './host-network.ts';
import {
  agentStateEvidence,
  evidenceOfFailing,
  firstPeer,
  localEvidence,
  nodePairs,
  type Pair,
} from './pairs.ts';

function isolatedDraft(
  ctx: Ctx,
  x: string,
  peers: readonly string[],
  known: ReadonlyMap<string, ReadonlySet<string>>,
  hubs: readonly string[],
): Draft {
  const id = `node-isolated:${x}`;
  const evidence: Ranked[] = [];
  for (const p of peers) evidence.push(...evidenceOfFailing(ctx, x, p, ['hh', 'ov', 'ph']));
  const local = localEvidence(ctx, x);
  const states = agentStateEvidence(ctx, x);
  const incomingOnly = ![
    ...(ctx.outLinks.get(agentKey(x, 'pod')) ?? []),
    ...(ctx.outLinks.get(agentKey(x, 'host')) ?? []),
  ].some((l) => l.cls !== 'local' && smallTally(ctx, l).known);
  for (const p of peers) explainLinks(ctx, openLinksBetween(ctx, x, p), id);
  // Everything else failing to or from it is the same cut, even where a pair can't be judged
  // on both networks (an agent missing at the other end); so are its rotating links, which
  // isolation doesn't read (links.ts usable) and whose few probes would read as pair loss.
  for (const p of ctx.nodes)
    if (p !== x)
      explainLinks(
        ctx,
        openLinksBetween(ctx, x, p).filter(
          (l) => smallTally(ctx, l).status === 'failing' || isRotating(l),
        ),
        id,
      );
  ctx.ipHubs.set(x, id);
  const share = peers.length / (known.get(x)?.size ?? peers.length);
  return draft(ctx, {
    kind: 'node-isolated',
    subject: x,
    severity: 'critical',
    nodes: [x, ...peers],
    title: `${x} is isolated`,
    summary: `Traffic to and from ${x} fails on both the pod and the node network from ${peers.length} of ${known.get(x)?.size ?? peers.length} peers, while the other nodes reach each other.${local.ok === true ? ` ${x}'s own pod↔host pair still answers, so the node is up and its connection to the others is what broke (link, switch port, routing or a firewall dropping everything).` : ' The node, its network link, or a firewall dropping everything on it is the likely cause.'}${incomingOnly ? ` ${x}'s own agents could not be read, so this rests on what its peers see.` : ''}`,
    lead: [...states, ...local.ev],
    evidence,
    confidence: Math.max(0.3, 0.5 + 0.45 * share - (incomingOnly ? 0.1 : 0)),
    nextSteps: isolatedSteps(ctx, x, firstPeer(ctx, x, hubs)),
    explains: capList(
      peers.map((p) => `${pairKey(x, p)} (every path)`),
      20,
    ),
  });
}

export const isolation: Rule = (ctx) => withHardFailures(ctx, () => isolated(ctx));

function isolated(ctx: Ctx): Draft[] {
  const pairs = nodePairs(ctx);
  const bad: Pair[] = [];
  const known = new Map<string, Set<string>>();
  for (const [a, b] of pairs) {
    const hh = classState(ctx, a, b, ['hh']);
    const ov = classState(ctx, a, b, ['ov']);
    if (!hh.known || !ov.known) continue;
    addKnown(known, a, b);
    if (failsBothWays(ctx, a, b, ['hh']) && failsBothWays(ctx, a, b, ['ov'])) bad.push([a, b]);
  }
  const g = groupPairs(bad, known, ctx.opts.hubShare);
  if (g.cluster) return [clusterWideHost(ctx, bad, 'both')];
  return g.hubs.map((x) => isolatedDraft(ctx, x, g.hubPeers.get(x) ?? [], known, g.hubs));
}
