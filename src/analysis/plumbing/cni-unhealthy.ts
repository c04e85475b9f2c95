// cni-unhealthy: a CNI or kube-proxy agent Pod on a node is not Ready, or its container ended
// within the restart window (health.ts). Reported per node whatever the IP paths say: an agent
// crash-looping is worth knowing before the data plane breaks. When an IP-path finding already
// covers the node (overlay, isolation ...), the summary names it as the likely symptom; that
// finding names this agent as its likely cause (cause.ts). Many nodes at once (a bad rollout)
// are one cluster finding.

import { draft } from '../drafts.ts';
import type { Ctx, Draft, Rule } from '../model.ts';
import { cniUnhealthySteps } from '../next-steps/plumbing.ts';
import { podEvidence, podLabel, unhealthyOn, type UnhealthyPod } from './health.ts';

/** From this many nodes, and at least this share of the nodes watched, it is one rollout. */
const CLUSTER_MIN_NODES = 3;
const CLUSTER_SHARE = 0.5;

function nodeDraft(ctx: Ctx, node: string, bad: readonly UnhealthyPod[]): Draft {
  const symptom = ctx.ipHubs.get(node);
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
      (symptom !== undefined
        ? ` The IP-path finding ${symptom} on this node is likely its symptom.`
        : ''),
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
        summary: `${components.join(', ')} Pods are not Ready or restarting on ${bad.length} of ${watched} nodes at once: a rollout, a configuration change or a shared dependency (the API server, the datastore) rather than one node.`,
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
