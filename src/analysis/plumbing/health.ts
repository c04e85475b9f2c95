// How triage reads the plumbing snapshot: which CNI/proxy Pods count as unhealthy on a node and
// why, as plain sentences and evidence. Shared by the plumbing rules and by the IP-path findings
// that name an unhealthy agent on their nodes as the likely cause (cause.ts).

import type { Evidence } from '../types.ts';
import type { NodePlumbing, PlumbingPod, PlumbingReport } from '../types.ts';

/** A container that ended this recently counts as "restarting" (a kubelet back-off is ≤ 5 min). */
export const RESTART_WINDOW_MS = 15 * 60_000;
/** Sandbox failures in the window from which a node's CNI is said not to set up Pods. */
export const SANDBOX_ERRORS_MIN = 3;

export interface UnhealthyPod {
  readonly pod: PlumbingPod;
  /** "not Ready (CrashLoopBackOff)", "restarted 4 min ago (OOMKilled)" ... */
  readonly why: string;
  readonly notReady: boolean;
}

function ago(ms: number): string {
  const min = Math.max(0, Math.round(ms / 60_000));
  return min < 1 ? 'under a minute ago' : `${min} min ago`;
}

/** Whether a CNI or kube-proxy Pod is unhealthy at `atMs`, and why; undefined when it is fine. */
export function unhealthy(p: PlumbingPod, atMs: number): UnhealthyPod | undefined {
  if (p.role === 'dns') return undefined; // CoreDNS has its own DNS findings and alerts
  const term = p.lastTermination;
  const recent = term !== undefined && atMs - term.atMs <= RESTART_WINDOW_MS;
  const lastEnd = term !== undefined ? `last ended ${ago(atMs - term.atMs)}: ${term.reason}` : '';
  if (!p.ready) {
    const detail = [p.waitingReason, recent ? lastEnd : ''].filter((x) => x !== undefined && x);
    return {
      pod: p,
      notReady: true,
      why: `not Ready${detail.length > 0 ? ` (${detail.join('; ')})` : ''}, ${p.restarts} restarts`,
    };
  }
  if (recent)
    return { pod: p, notReady: false, why: `restarting (${lastEnd}), ${p.restarts} restarts` };
  return undefined;
}

export function unhealthyOn(np: NodePlumbing | undefined, atMs: number): UnhealthyPod[] {
  return (np?.pods ?? []).flatMap((p) => {
    const u = unhealthy(p, atMs);
    return u === undefined ? [] : [u];
  });
}

/** The plumbing of a node, if the snapshot has one (none without Kubernetes). */
export function plumbingOf(
  report: PlumbingReport | undefined,
  node: string,
): NodePlumbing | undefined {
  return report?.nodes.find((n) => n.node === node);
}

export function podLabel(u: UnhealthyPod): string {
  return `${u.pod.namespace}/${u.pod.name} (${u.pod.component})`;
}

export function podEvidence(node: string, u: UnhealthyPod): Evidence {
  return {
    text: `${node}: ${u.pod.role === 'proxy' ? 'proxy' : 'CNI'} agent ${podLabel(u)} ${u.why}`,
    sourceNode: node,
    target: `${u.pod.namespace}/${u.pod.name}`,
    value: u.pod.restarts,
  };
}
