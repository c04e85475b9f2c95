// The controller's view of the cluster: agent endpoints and coverage from the same informers
// the agents use (KubernetesPeerSource), Events of Pending agent Pods looked up on demand (for
// sandbox/CNI errors), and Kubernetes Events written when a node loses or regains coverage.

import {
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import type { NodeCoverage } from '../api/coverage.ts';
import type { Finding } from '../api/findings.ts';
import type { Clock } from '../core/clock.ts';
import { KubernetesPeerSource, nodeInfo } from '../discovery/kubernetes.ts';
import {
  coverage,
  type AgentPodSnapshot,
  type EventSnapshot,
  type NodeSnapshot,
} from './coverage.ts';
import type { AgentDirectory, EventSink } from './controller.ts';
import type { AgentEndpoint } from './matrix.ts';
import type { NodeEvent } from './node-events.ts';
import {
  NODE_CONDITION_TYPE,
  type NodeConditionView,
  type NodeConditionWrite,
} from './node-conditions.ts';

/**
 * Where Events about Nodes live. Nodes are cluster-scoped, and the API server accepts an Event
 * whose involvedObject has no namespace only in `default` (or with none); the kubelet writes
 * its Node Events there too. `kubectl describe node` lists Events of every namespace anyway.
 */
export const NODE_EVENT_NAMESPACE = 'default';

export function nodeSnapshot(n: V1Node): NodeSnapshot {
  const info = nodeInfo(n);
  return { name: info.name, ready: info.ready, unschedulable: info.cordoned };
}

export function podSnapshot(p: V1Pod): AgentPodSnapshot {
  const statuses = p.status?.containerStatuses ?? [];
  const scheduled = p.status?.conditions?.find((c) => c.type === 'PodScheduled');
  return {
    name: p.metadata?.name ?? '',
    node: p.spec?.nodeName,
    network: p.spec?.hostNetwork === true ? 'host' : 'pod',
    phase: p.status?.phase ?? 'Unknown',
    ready: p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    terminating: p.metadata?.deletionTimestamp !== undefined,
    ...(scheduled?.status === 'False'
      ? { unschedulableMessage: scheduled.message ?? scheduled.reason ?? 'not scheduled' }
      : {}),
    containers: statuses.map((c) => ({
      ready: c.ready,
      restartCount: c.restartCount,
      ...(c.state?.waiting?.reason !== undefined ? { waitingReason: c.state.waiting.reason } : {}),
      ...(c.state?.waiting?.message !== undefined
        ? { waitingMessage: c.state.waiting.message }
        : {}),
      ...(c.lastState?.terminated?.reason !== undefined
        ? { lastTerminatedReason: c.lastState.terminated.reason }
        : {}),
    })),
  };
}

const EVENTS_TTL_MS = 30_000;

export class KubernetesDirectory implements AgentDirectory {
  private readonly api: CoreV1Api;
  private readonly events = new Map<string, { atMs: number; events: EventSnapshot[] }>();

  constructor(
    private readonly source: KubernetesPeerSource,
    kubeConfig: KubeConfig,
    private readonly namespace: string,
    private readonly clock: Clock,
  ) {
    this.api = kubeConfig.makeApiClient(CoreV1Api);
  }

  endpoints(): AgentEndpoint[] {
    return this.source
      .peers()
      .map((p) => ({ node: p.node, network: p.network, url: `http://${p.address}:${p.httpPort}` }));
  }

  coverage(): NodeCoverage[] {
    const pods = this.source.agentPods().map(podSnapshot);
    const nodes = this.source.allNodes().map(nodeSnapshot);
    const pending = pods.filter((p) => p.phase === 'Pending').map((p) => p.name);
    this.refreshEvents(pending);
    const events = pending.flatMap((name) => this.events.get(name)?.events ?? []);
    return coverage(nodes, pods, events);
  }

  /** Looks up Events of Pending pods in the background; results feed the next round. */
  private refreshEvents(pods: readonly string[]): void {
    const now = this.clock.nowMs();
    for (const k of [...this.events.keys()]) if (!pods.includes(k)) this.events.delete(k);
    for (const name of pods) {
      const cached = this.events.get(name);
      if (cached !== undefined && now - cached.atMs < EVENTS_TTL_MS) continue;
      this.events.set(name, { atMs: now, events: cached?.events ?? [] });
      this.api
        .listNamespacedEvent({
          namespace: this.namespace,
          fieldSelector: `involvedObject.name=${name}`,
        })
        .then(
          (list) => {
            this.events.set(name, {
              atMs: now,
              events: list.items.map((e) => ({
                pod: name,
                reason: e.reason ?? '',
                message: e.message ?? '',
                lastMs:
                  Date.parse(
                    String(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? 0),
                  ) || 0,
              })),
            });
          },
          () => undefined, // no Events: coverage falls back to the Pod status alone
        );
    }
  }
}

/** Each Node's PodmeshNetworkProblem condition as the informer holds it (node-conditions.ts). */
export function nodeConditionView(n: V1Node): NodeConditionView {
  const c = n.status?.conditions?.find((x) => x.type === NODE_CONDITION_TYPE);
  return {
    node: n.metadata?.name ?? '',
    ...(c !== undefined
      ? {
          current: {
            status: c.status,
            reason: c.reason,
            message: c.message,
            lastTransitionTime:
              c.lastTransitionTime === undefined
                ? undefined
                : new Date(c.lastTransitionTime).toISOString().replace(/\.\d+Z$/, 'Z'),
          },
        }
      : {}),
  };
}

/**
 * Writes the PodmeshNetworkProblem condition on a Node (nodes/status, patch): a strategic merge
 * patch, which merges status.conditions by type, so the kubelet's conditions are untouched.
 */
export class KubernetesNodeConditions {
  private readonly api: CoreV1Api;

  constructor(
    kubeConfig: KubeConfig,
    private readonly clock: Clock,
    private readonly onError: (msg: string) => void,
  ) {
    this.api = kubeConfig.makeApiClient(CoreV1Api);
  }

  write(w: NodeConditionWrite): void {
    const now = new Date(this.clock.nowMs()).toISOString().replace(/\.\d+Z$/, 'Z');
    const condition = {
      type: NODE_CONDITION_TYPE,
      ...w.condition,
      lastHeartbeatTime: now,
      lastTransitionTime: w.since ?? now,
    };
    this.api
      .patchNodeStatus(
        { name: w.node, body: { status: { conditions: [condition] } } },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      )
      .catch((e: unknown) =>
        this.onError(`writing condition ${NODE_CONDITION_TYPE} on Node ${w.node}: ${String(e)}`),
      );
  }
}

/** Writes core/v1 Events about the agent DaemonSet, naming the node, when coverage changes. */
export class KubernetesEventSink implements EventSink {
  private readonly api: CoreV1Api;

  constructor(
    kubeConfig: KubeConfig,
    private readonly namespace: string,
    private readonly clock: Clock,
    private readonly onError: (msg: string) => void,
  ) {
    this.api = kubeConfig.makeApiClient(CoreV1Api);
  }

  coverageLost(node: string, network: 'pod' | 'host', reason: string, detail: string): void {
    this.write(
      network,
      'Warning',
      'CoverageLost',
      `node ${node} has no Ready ${network}-network agent (${reason}): ${detail}`,
    );
  }

  coverageRestored(node: string, network: 'pod' | 'host'): void {
    this.write(
      network,
      'Normal',
      'CoverageRestored',
      `node ${node} has a Ready ${network}-network agent again`,
    );
  }

  /** Findings are Events on the controller Deployment: they are about the cluster, not one agent. */
  findingOpened(f: Finding): void {
    this.writeAbout(
      { kind: 'Deployment', apiVersion: 'apps/v1', name: 'podmesh-controller' },
      f.severity === 'info' ? 'Normal' : 'Warning',
      'FindingOpened',
      `[${f.severity}] ${f.kind} ${f.subject}: ${f.title}`,
    );
  }

  findingCleared(f: Finding): void {
    this.writeAbout(
      { kind: 'Deployment', apiVersion: 'apps/v1', name: 'podmesh-controller' },
      'Normal',
      'FindingCleared',
      `${f.kind} ${f.subject} cleared: ${f.title}`,
    );
  }

  /**
   * An Event on the Node itself. `kubectl describe node` selects Events by involvedObject
   * kind, name, namespace "" and uid, once with the Node's metadata.uid and (like the kubelet,
   * whose Node Events carry the node's name as uid) once with the name; older kubectl only
   * with the name. So the uid is the name: every kubectl finds it, and the controller needs
   * no Node object for it.
   */
  nodeEvent(e: NodeEvent): void {
    const now = new Date(this.clock.nowMs());
    this.api
      .createNamespacedEvent({
        namespace: NODE_EVENT_NAMESPACE,
        body: {
          metadata: { generateName: `${e.node}.`, namespace: NODE_EVENT_NAMESPACE },
          involvedObject: { kind: 'Node', apiVersion: 'v1', name: e.node, uid: e.node },
          type: e.type,
          reason: e.reason,
          message: e.message,
          source: { component: 'podmesh-controller' },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      })
      .catch((err: unknown) =>
        this.onError(`writing Event ${e.reason} on Node ${e.node}: ${String(err)}`),
      );
  }

  private write(
    network: 'pod' | 'host',
    type: 'Warning' | 'Normal',
    reason: string,
    message: string,
  ): void {
    const daemonSet = network === 'host' ? 'podmesh-agent-host' : 'podmesh-agent';
    this.writeAbout(
      { kind: 'DaemonSet', apiVersion: 'apps/v1', name: daemonSet },
      type,
      reason,
      message,
    );
  }

  private writeAbout(
    object: { kind: string; apiVersion: string; name: string },
    type: 'Warning' | 'Normal',
    reason: string,
    message: string,
  ): void {
    const now = new Date(this.clock.nowMs());
    this.api
      .createNamespacedEvent({
        namespace: this.namespace,
        body: {
          metadata: { generateName: `${object.name}.`, namespace: this.namespace },
          involvedObject: { ...object, namespace: this.namespace },
          type,
          reason,
          message,
          source: { component: 'podmesh-controller' },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      })
      .catch((e: unknown) => this.onError(`writing Event ${reason}: ${String(e)}`));
  }
}
