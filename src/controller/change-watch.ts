// The Kubernetes side of "what changed" (changes.ts) beyond the plumbing Pods: the NetworkPolicies
// of every namespace, watched read-only by a Reflector that keeps only their identity, generation
// and creation time (never their rules); the cluster DNS ConfigMaps (the Corefile), each watched
// by name and kept as a digest of its data (never the data); and the Nodes the controller's
// discovery already watches, all reduced each round to the small ClusterState the timeline
// compares.

import { createHash } from 'node:crypto';
import {
  CoreV1Api,
  NetworkingV1Api,
  type V1ConfigMap,
  type V1NetworkPolicy,
  type V1Node,
} from '@kubernetes/client-node';
import type { Reflector } from '../discovery/reflector.ts';
import type { ClusterState, DnsConfigState, NodeState, PolicyState } from './changes.ts';
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

/** The annotation a trimmed ConfigMap keeps its digest in (its data is dropped on arrival). */
const DIGEST = 'podmesh.io/data-sha256';

/** SHA-256 over a ConfigMap's data and binaryData, keys sorted, so the order never matters. */
export function configDigest(c: Pick<V1ConfigMap, 'data' | 'binaryData'>): string {
  const h = createHash('sha256');
  for (const [part, m] of [
    ['data', c.data],
    ['binaryData', c.binaryData],
  ] as const)
    for (const k of Object.keys(m ?? {}).sort()) h.update(`${part}\0${k}\0${m?.[k] ?? ''}\0`);
  return h.digest('hex');
}

/** `namespace/name` pairs from kubernetes.dnsConfigMaps (validated by its setting). */
export function parseConfigMapRefs(list: string): { namespace: string; name: string }[] {
  return list
    .split(',')
    .filter((x) => x !== '')
    .map((x) => {
      const [namespace = '', name = ''] = x.split('/');
      return { namespace, name };
    });
}

export interface DnsConfigWatcherOptions extends RoundReflectorOptions {
  /** The ConfigMaps to watch (kubernetes.dnsConfigMaps): coredns, coredns-custom ... */
  readonly configMaps: readonly { namespace: string; name: string }[];
}

/**
 * The cluster DNS ConfigMaps, each watched on its own by a field selector on its name: that is
 * what lets RBAC grant exactly these (a Role with `resourceNames`) instead of every ConfigMap of
 * kube-system. The data is replaced by its digest as it arrives, so no Corefile is held.
 */
export class DnsConfigWatcher {
  private readonly rs: Reflector<V1ConfigMap>[];

  constructor(o: DnsConfigWatcherOptions) {
    const core = o.kubeConfig.makeApiClient(CoreV1Api);
    this.rs = o.configMaps.map(({ namespace, name }) => {
      const fieldSelector = `metadata.name=${name}`;
      return roundReflector<V1ConfigMap>(o, {
        resource: `configmaps ${namespace}/${name}`,
        path: `/api/v1/namespaces/${namespace}/configmaps`,
        fieldSelector,
        list: () => core.listNamespacedConfigMap({ namespace, fieldSelector }),
        trim: (c) => {
          const m = c.metadata;
          c.metadata = {
            name: m?.name,
            namespace: m?.namespace,
            resourceVersion: m?.resourceVersion,
            annotations: { [DIGEST]: configDigest(c) },
          };
          delete c.data;
          delete c.binaryData;
        },
      });
    });
  }

  start(): void {
    for (const r of this.rs) r.start();
  }

  stop(): void {
    for (const r of this.rs) r.stop();
  }

  /** undefined until every watch has listed once (so a slow list reads as no deletion). */
  configs(): DnsConfigState[] | undefined {
    if (!this.rs.every((r) => r.synced)) return undefined;
    return this.rs.flatMap((r) =>
      [...r.objects.values()].map((c) => ({
        namespace: c.metadata?.namespace ?? '',
        name: c.metadata?.name ?? '',
        digest: c.metadata?.annotations?.[DIGEST] ?? '',
      })),
    );
  }
}

/** One round's snapshot for the timeline from the Nodes, NetworkPolicies and DNS ConfigMaps held. */
export function clusterState(
  atMs: number,
  nodes: readonly V1Node[] | undefined,
  policies: readonly PolicyState[] | undefined,
  dnsConfigs?: readonly DnsConfigState[],
): ClusterState {
  return {
    atMs,
    ...(nodes !== undefined ? { nodes: nodes.map(nodeState) } : {}),
    ...(policies !== undefined ? { policies } : {}),
    ...(dnsConfigs !== undefined ? { dnsConfigs } : {}),
  };
}
