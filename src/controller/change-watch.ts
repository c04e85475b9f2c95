// The Kubernetes side of "what changed" (changes.ts) beyond the plumbing Pods: the NetworkPolicies
// of every namespace, watched read-only by a Reflector that keeps only their identity, generation
// and creation time (never their rules), and the Nodes the controller's discovery already
// watches, both reduced each round to the small ClusterState the timeline compares.

import { NetworkingV1Api, type V1NetworkPolicy, type V1Node } from '@kubernetes/client-node';
import type { Reflector } from '../discovery/reflector.ts';
import type { ClusterState, NodeState, PolicyState } from './changes.ts';
import { roundReflector, type RoundReflectorOptions } from './round-reflector.ts';

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

export type PolicyWatcherOptions = RoundReflectorOptions;

/** Every NetworkPolicy of the cluster, for "created, changed or deleted" (list and watch only). */
export class PolicyWatcher {
  private readonly r: Reflector<V1NetworkPolicy>;

  constructor(o: PolicyWatcherOptions) {
    const net = o.kubeConfig.makeApiClient(NetworkingV1Api);
    this.r = roundReflector<V1NetworkPolicy>(o, {
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
