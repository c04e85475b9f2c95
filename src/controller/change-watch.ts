// The Kubernetes side of "what changed" (changes.ts) beyond the plumbing Pods: the NetworkPolicies
// of every namespace, watched read-only by a Reflector that keeps only their identity, generation
// and creation time (never their rules), and the Nodes the controller's discovery already
// watches, both reduced each round to the small ClusterState the timeline compares.

import {
  NetworkingV1Api,
  type KubeConfig,
  type V1NetworkPolicy,
  type V1Node,
} from '@kubernetes/client-node';
import type { Clock } from '../core/clock.ts';
import { Reflector, type DiscoveryLog } from '../discovery/reflector.ts';
import type { ClusterState, NodeState, PolicyState } from './changes.ts';

export function nodeState(n: V1Node): NodeState {
  return {
    name: n.metadata?.name ?? '',
    ready: n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    bootId: n.status?.nodeInfo?.bootID ?? '',
  };
}

export function policyState(p: V1NetworkPolicy): PolicyState {
  return {
    namespace: p.metadata?.namespace ?? '',
    name: p.metadata?.name ?? '',
    generation: p.metadata?.generation ?? 0,
    createdMs: Date.parse(String(p.metadata?.creationTimestamp ?? '')) || 0,
  };
}

export interface PolicyWatcherOptions {
  readonly kubeConfig: KubeConfig;
  readonly clock: Clock;
  readonly log: DiscoveryLog;
  readonly watchdogMs: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
}

/** Every NetworkPolicy of the cluster, for "created, changed or deleted" (list and watch only). */
export class PolicyWatcher {
  private readonly r: Reflector<V1NetworkPolicy>;

  constructor(o: PolicyWatcherOptions) {
    const net = o.kubeConfig.makeApiClient(NetworkingV1Api);
    this.r = new Reflector<V1NetworkPolicy>({
      kubeConfig: o.kubeConfig,
      clock: o.clock,
      log: o.log,
      watchdogMs: o.watchdogMs,
      backoffInitialMs: o.backoffInitialMs ?? 1000,
      backoffMaxMs: o.backoffMaxMs ?? 30_000,
      onChange: () => {},
      resource: 'networkpolicies',
      path: '/apis/networking.k8s.io/v1/networkpolicies',
      list: () => net.listNetworkPolicyForAllNamespaces(),
      // The generation says the rules changed; the rules themselves are never read.
      trim: (p) => {
        const m = p.metadata;
        p.metadata =
          m === undefined
            ? {}
            : {
                name: m.name,
                namespace: m.namespace,
                generation: m.generation,
                creationTimestamp: m.creationTimestamp,
                resourceVersion: m.resourceVersion,
              };
        delete p.spec;
      },
    });
  }

  start(): void {
    this.r.start();
  }

  stop(): void {
    this.r.stop();
  }

  /** undefined until the first list (so the timeline reads no burst of "created"). */
  policies(): PolicyState[] | undefined {
    return this.r.synced ? [...this.r.objects.values()].map(policyState) : undefined;
  }
}

/** One round's snapshot for the timeline from the Nodes and the NetworkPolicies held. */
export function clusterState(
  atMs: number,
  nodes: readonly V1Node[] | undefined,
  policies: readonly PolicyState[] | undefined,
): ClusterState {
  return {
    atMs,
    ...(nodes !== undefined ? { nodes: nodes.map(nodeState) } : {}),
    ...(policies !== undefined ? { policies } : {}),
  };
}
