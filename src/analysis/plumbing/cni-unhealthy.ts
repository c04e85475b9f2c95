// cni-unhealthy: a CNI or kube-proxy agent Pod on a node is not Ready, or its container ended
// within the restart window (health.ts). Reported per node whatever the IP paths say: an agent
// crash-looping is worth knowing before the data plane breaks. When an overlay finding already
// covers the node, the summary names it as the likely symptom; that
// finding names this agent as its likely cause (cause.ts). Many nodes at once (a bad rollout)
// are one cluster finding.

import { draft, isFindingId } from '../drafts.ts';
import type { Ctx, Draft, Rule } from '../model.ts';
import { cniUnhealthySteps } from '../next-steps/plumbing.ts';
import { podEvidence, podLabel, unhealthyOn, type UnhealthyPod } from './health.ts';

/** From this many nodes, and at least this share of the nodes watched, it is one rollout. */
const CLUSTER_MIN_NODES = 3;
const CLUSTER_SHARE = 0.5;

/**
 * The overlay findings that cover a node: its hub finding, the finding of a pair it is in, or
 * the one across the cluster. Run after the IP-path rules.
 */
function ipFindingsOn(ctx: Ctx, node: string): string[] {
  const ids = new Set<string>();
  const hub = ctx.ipHubs.get(node);
  if (hub !== undefined) ids.add(hub);
  for (const [key, id] of ctx.explainedLinks) {
    const l = ctx.links.get(key);
    // A pair's overlay finding only: a hub's names its hub, not every peer of it.
    if (!id.startsWith('overlay-broken:') || !id.includes('<->') || l === undefined) continue;
    if (l.sourceNode === node || l.targetNode === node) ids.add(id);
  }
  if (ctx.clusterIp !== undefined) ids.add(ctx.clusterIp);
  // Only real finding ids: the bookkeeping also holds plain reasons for what it held back.
  // Overlay (pod network) findings only: a node cut off or a node network down is more likely
  // the cause of its CNI agent failing (no API server, no datastore) than its symptom.
  return [...ids]
    .filter((id) => isFindingId(id) && id.startsWith('overlay-broken:'))
    .sort()
    .slice(0, 3);
}

function symptomSentence(ids: readonly string[], where: string): string {
  if (ids.length === 0) return '';
  const list = ids.join(', ');
  return ids.length === 1
    ? ` The IP-path finding ${list} ${where} is likely its symptom.`
    : ` The IP-path findings ${list} ${where} are likely its symptoms.`;
}

function nodeDraft(ctx: Ctx, node: string, bad: readonly UnhealthyPod[]): Draft {
  const symptom = symptomSentence(ipFindingsOn(ctx, node), 'on this node');
  const names = bad.map((u) => `${podLabel(u)} is ${u.why}`).join('; ');
  const proxyOnly = bad.every((u) => u.pod.role === 'proxy');
  const what = proxyOnly ? 'kube-proxy' : 'CNI';
  return draft(ctx, {
    kind: 'cni-unhealthy',
    subject: node,
    severity: bad.some((u) => u.notReady) ? 'critical' : 'warning',
    nodes: [node],
    title: `The ${what} agent on ${node} is ${bad.some((u) => u.notReady) ? 'not Ready' : 'restarting'}`,
    summary:
      `On ${node}, ${names}. ` +
      (proxyOnly
        ? 'Services (ClusterIP, NodePort) on this node may not be translated while it is down.'
        : 'New Pods there may get no network, and its overlay routes and policies may go stale.') +
      symptom,
    evidence: bad.map((u) => podEvidence(node, u)),
    confidence: bad.some((u) => u.notReady) ? 0.9 : 0.7,
    nextSteps: cniUnhealthySteps(
      node,
      bad.map((u) => u.pod),
    ),
  });
}

export const cniUnhealthy: Rule = (ctx) => {
  const report = ctx.snapshot.plumbing;
  if (report === undefined) return [];
  const bad = report.nodes
    .map((n) => ({ node: n.node, pods: unhealthyOn(n, report.atMs) }))
    .filter((x) => x.pods.length > 0)
    .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  if (bad.length === 0) return [];
  const watched = report.nodes.length;
  if (bad.length >= CLUSTER_MIN_NODES && bad.length >= watched * CLUSTER_SHARE) {
    const components = [...new Set(bad.flatMap((b) => b.pods.map((u) => u.pod.component)))].sort();
    const first = bad[0]!;
    return [
      draft(ctx, {
        kind: 'cni-unhealthy',
        subject: 'cluster',
        severity: bad.some((b) => b.pods.some((u) => u.notReady)) ? 'critical' : 'warning',
        nodes: bad.map((b) => b.node),
        title: `${components.join(', ')} unhealthy on ${bad.length} of ${watched} nodes`,
        summary:
          `${components.join(', ')} Pods are not Ready or restarting on ${bad.length} of ${watched} nodes at once: a rollout, a configuration change or a shared dependency (the API server, the datastore) rather than one node.` +
          symptomSentence(
            [...new Set(bad.flatMap((b) => ipFindingsOn(ctx, b.node)))].sort().slice(0, 3),
            'on these nodes',
          ),
        evidence: bad.flatMap((b) => b.pods.map((u) => podEvidence(b.node, u))),
        confidence: 0.85,
        nextSteps: cniUnhealthySteps(
          first.node,
          first.pods.map((u) => u.pod),
        ),
        explains: bad.map((b) => `${b.node} plumbing`),
      }),
    ];
  }
  return bad.map((b) => nodeDraft(ctx, b.node, b.pods));
};
