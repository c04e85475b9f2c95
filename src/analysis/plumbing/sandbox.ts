// cni-sandbox-errors: the kubelet on a node reported at least SANDBOX_ERRORS_MIN Pod sandbox
// failures inside the controller's window (FailedCreatePodSandBox, "failed to setup network"):
// the CNI cannot add Pods there. One failure is often a Pod deleted while it was being created,
// so a single one is not reported. The controller ages the Events out, so a node that recovered
// goes quiet once its failures leave the window.

import { draft } from '../drafts.ts';
import type { Rule } from '../model.ts';
import { sandboxErrorSteps } from '../next-steps/plumbing.ts';
import { SANDBOX_ERRORS_MIN } from './health.ts';

export const sandboxErrors: Rule = (ctx) => {
  const report = ctx.snapshot.plumbing;
  if (report === undefined) return [];
  const minutes = Math.round(report.sandboxWindowMs / 60_000);
  return report.nodes
    .filter((n) => (n.sandboxErrors?.count ?? 0) >= SANDBOX_ERRORS_MIN)
    .map((n) => {
      const e = n.sandboxErrors!;
      const pods = e.pods.slice(0, 5).join(', ');
      return draft(ctx, {
        kind: 'cni-sandbox-errors',
        subject: n.node,
        severity: 'critical',
        nodes: [n.node],
        title: `The CNI cannot set up Pods on ${n.node}`,
        summary: `The kubelet on ${n.node} failed to create ${e.count} Pod sandboxes in the last ${minutes} min (${pods}${e.pods.length > 5 ? ', …' : ''}): the network plugin cannot add Pods there, so new Pods on ${n.node} stay in ContainerCreating.`,
        evidence: [
          {
            text: `${n.node}: ${e.count} sandbox failures in ${minutes} min, last: ${e.lastMessage}`,
            sourceNode: n.node,
            value: e.count,
          },
        ],
        confidence: 0.85,
        nextSteps: sandboxErrorSteps(n.node, e.pods[0]),
      });
    });
};
