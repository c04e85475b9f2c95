// Coverage: does every schedulable node have a Ready agent of each kind, and if not, why?
// Pure functions over plain snapshots of Nodes, agent Pods and Events, so the reasons (the
// first things the troubleshooting guide checks: Pod status, CrashLoopBackOff, sandbox and CNI
// errors) are tested as tables. What it produces is declared in src/api/coverage.ts.

import type { AgentCoverage, CoverageReason, NodeCoverage } from '../api/coverage.ts';

export type AgentNetwork = 'pod' | 'host';

export interface NodeSnapshot {
  readonly name: string;
  readonly ready: boolean;
  /** spec.unschedulable (cordoned). */
  readonly unschedulable: boolean;
}

export interface ContainerState {
  readonly ready: boolean;
  readonly restartCount: number;
  readonly waitingReason?: string;
  readonly waitingMessage?: string;
  readonly lastTerminatedReason?: string;
}

export interface AgentPodSnapshot {
  readonly name: string;
  readonly node: string | undefined;
  readonly network: AgentNetwork;
  readonly phase: string;
  readonly ready: boolean;
  readonly terminating: boolean;
  /** PodScheduled=False message, when the scheduler can't place it. */
  readonly unschedulableMessage?: string;
  readonly containers: readonly ContainerState[];
}

export interface EventSnapshot {
  /** Pod name the event is about. */
  readonly pod: string;
  readonly reason: string;
  readonly message: string;
  readonly lastMs: number;
}

/** Nodes that are expected to run agents: Ready and not cordoned. */
export function expectedNodes(nodes: readonly NodeSnapshot[]): NodeSnapshot[] {
  return nodes.filter((n) => n.ready && !n.unschedulable);
}

export function coverage(
  nodes: readonly NodeSnapshot[],
  pods: readonly AgentPodSnapshot[],
  events: readonly EventSnapshot[] = [],
): NodeCoverage[] {
  return expectedNodes(nodes)
    .map((n) => ({
      node: n.name,
      pod: agentCoverage(
        pods.filter((p) => p.node === n.name && p.network === 'pod'),
        events,
      ),
      host: agentCoverage(
        pods.filter((p) => p.node === n.name && p.network === 'host'),
        events,
      ),
    }))
    .sort((a, b) => a.node.localeCompare(b.node));
}

/** The best pod of one kind on one node decides; a Ready one wins over any broken one. */
function agentCoverage(
  pods: readonly AgentPodSnapshot[],
  events: readonly EventSnapshot[],
): AgentCoverage {
  if (pods.length === 0) {
    return {
      covered: false,
      reason: 'missing',
      detail:
        'no agent Pod on this node (DaemonSet not scheduled here: check taints, tolerations and nodeSelector)',
      pod: null,
    };
  }
  const verdicts = pods.map((p) => ({ p, v: podVerdict(p, events) }));
  verdicts.sort((a, b) => rank(a.v.reason) - rank(b.v.reason));
  const best = verdicts[0]!;
  return { ...best.v, pod: best.p.name };
}

function rank(r: CoverageReason): number {
  return r === 'ready' ? 0 : r === 'terminating' ? 2 : 1;
}

export function podVerdict(
  p: AgentPodSnapshot,
  events: readonly EventSnapshot[],
): Omit<AgentCoverage, 'pod'> {
  if (p.terminating)
    return { covered: false, reason: 'terminating', detail: `${p.name} is being deleted` };
  if (p.ready && p.phase === 'Running')
    return { covered: true, reason: 'ready', detail: `${p.name} is Ready` };
  for (const c of p.containers) {
    const w = c.waitingReason;
    if (w === 'CrashLoopBackOff') {
      return {
        covered: false,
        reason: 'crash-loop',
        detail: `${p.name}: CrashLoopBackOff after ${c.restartCount} restarts${c.lastTerminatedReason ? ` (last exit: ${c.lastTerminatedReason})` : ''}; see kubectl logs --previous`,
      };
    }
    if (w === 'ImagePullBackOff' || w === 'ErrImagePull' || w === 'InvalidImageName') {
      return {
        covered: false,
        reason: 'image-pull',
        detail: `${p.name}: ${w}${c.waitingMessage ? `: ${c.waitingMessage}` : ''}`,
      };
    }
    if (
      w === 'CreateContainerConfigError' ||
      w === 'CreateContainerError' ||
      w === 'RunContainerError'
    ) {
      return {
        covered: false,
        reason: 'config-error',
        detail: `${p.name}: ${w}${c.waitingMessage ? `: ${c.waitingMessage}` : ''}`,
      };
    }
  }
  if (p.unschedulableMessage !== undefined) {
    return {
      covered: false,
      reason: 'unschedulable',
      detail: `${p.name}: ${p.unschedulableMessage}`,
    };
  }
  // Sandbox creation failures are where a broken CNI shows up: only Events carry them.
  const sandbox = events
    .filter((e) => e.pod === p.name && e.reason === 'FailedCreatePodSandBox')
    .sort((a, b) => b.lastMs - a.lastMs)[0];
  if (p.phase === 'Pending' && sandbox !== undefined) {
    return { covered: false, reason: 'sandbox-error', detail: `${p.name}: ${sandbox.message}` };
  }
  if (p.phase === 'Pending') {
    const creating = p.containers.find((c) => c.waitingReason !== undefined);
    return {
      covered: false,
      reason: 'pending',
      detail: `${p.name} is Pending${creating?.waitingReason ? ` (${creating.waitingReason})` : ''}`,
    };
  }
  return {
    covered: false,
    reason: 'not-ready',
    detail: `${p.name} is ${p.phase} but not Ready (readiness probe failing)`,
  };
}
