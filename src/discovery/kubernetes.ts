// Peers from the Kubernetes API: agent Pods (both DaemonSets), the Nodes they run on, and the
// DNS Service's EndpointSlices, each followed by a @kubernetes/client-node informer. The API
// server is treated as something that goes away: informers that fail are restarted with capped
// backoff, a watchdog replaces watches that went quiet, and nothing learned is ever thrown away
// because of an error, so the agent keeps probing the last known peers through an outage. That
// machinery is the Reflector (reflector.ts); this file is what podmesh makes of what it holds:
// which Pods are peers, which Nodes are leaving, which DNS replicas to check.

import { readFileSync } from 'node:fs';
import {
  CoreV1Api,
  DiscoveryV1Api,
  KubeConfig,
  type V1EndpointSlice,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import { SystemClock, type Clock, type TimerHandle } from '../core/clock.ts';
import { peerId, type Network, type Peer } from '../core/types.ts';
import type { PeerSource, PeersListener } from './peer-source.ts';
import {
  Reflector,
  describeError,
  type DiscoveryLog,
  type ReflectorHandle,
  type ResourceSyncStats,
} from './reflector.ts';

export type { DiscoveryLog, ResourceSyncStats } from './reflector.ts';

export const DEFAULT_PORTS = { http: 9860, stamp: 9862, tcp: 9863 } as const;
/** Labels both agent DaemonSets put on their Pods (and nothing else in the namespace does). */
export const DEFAULT_POD_SELECTOR =
  'app.kubernetes.io/name=podmesh,app.kubernetes.io/component=agent';
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
export const REGION_LABEL = 'topology.kubernetes.io/region';
const LEGACY_ZONE_LABEL = 'failure-domain.beta.kubernetes.io/zone';
const LEGACY_REGION_LABEL = 'failure-domain.beta.kubernetes.io/region';
const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

const quietLog: DiscoveryLog = { debug: () => {}, info: () => {}, warn: () => {} };

export interface KubernetesPeerSourceOptions {
  readonly kubeConfig: KubeConfig;
  /** Namespace of the agent Pods. */
  readonly namespace: string;
  /** Label selector matching the Pods of both agent DaemonSets. */
  readonly podSelector: string;
  /** Namespace of the cluster DNS Service. Default kube-system. */
  readonly dnsNamespace?: string;
  /** Name of the cluster DNS Service; "" turns DNS replica discovery off. Default kube-dns. */
  readonly dnsService?: string;
  /**
   * Also watch the `kubernetes` Service's EndpointSlices in `default` (the API server's own
   * addresses, for the apiserver checks). Default off: only agents ask for it.
   */
  readonly apiServerEndpoints?: boolean;
  /** How long a node stays cordoned or NotReady before its agents count as gone. Default 60 s. */
  readonly nodeGraceMs?: number;
  /** A watch with no event, bookmark or reconnect for this long is restarted. Default 10 min. */
  readonly watchdogMs?: number;
  /** First delay before restarting a failed informer; doubles up to backoffMaxMs. Default 1 s. */
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  readonly clock?: Clock;
  readonly log?: DiscoveryLog;
}

/** A cluster DNS server Pod, straight from the DNS Service's EndpointSlices. */
export interface DnsReplica {
  readonly address: string;
  /** UDP port (the slice port named "dns"); 53 if the slice names none. */
  readonly port: number;
  /** TCP port (the slice port named "dns-tcp"). */
  readonly tcpPort: number;
  readonly node: string;
  readonly zone: string;
  readonly pod: string;
}
export type DnsReplicasListener = (replicas: readonly DnsReplica[]) => void;

export interface NodeInfo {
  readonly name: string;
  readonly zone: string;
  readonly region: string;
  readonly ready: boolean;
  readonly cordoned: boolean;
}

/** Why a Pod gives no peer, or undefined when it does. Exported for tests and the controller. */
export function podSkipReason(pod: V1Pod): string | undefined {
  if (pod.metadata?.deletionTimestamp != null) return 'terminating';
  if ((pod.spec?.nodeName ?? '') === '') return 'unscheduled';
  if (pod.status?.phase !== 'Running') return 'not-running';
  if (!conditionTrue(pod.status?.conditions, 'Ready')) return 'not-ready';
  if (podIPv4(pod) === undefined) return 'no-ipv4';
  return undefined;
}

/** The peer a Ready agent Pod stands for; zone comes from its Node. */
export function peerFromPod(pod: V1Pod, node?: NodeInfo): Peer | undefined {
  if (podSkipReason(pod) !== undefined) return undefined;
  const nodeName = pod.spec?.nodeName ?? '';
  const address = podIPv4(pod) ?? '';
  const network: Network = pod.spec?.hostNetwork === true ? 'host' : 'pod';
  const named = new Map<string, number>();
  for (const c of pod.spec?.containers ?? [])
    for (const p of c.ports ?? []) if (p.name !== undefined) named.set(p.name, p.containerPort);
  return {
    id: peerId(nodeName, network),
    node: nodeName,
    network,
    zone: node?.zone ?? '',
    address,
    httpPort: named.get('http') ?? DEFAULT_PORTS.http,
    stampPort: named.get('stamp') ?? DEFAULT_PORTS.stamp,
    tcpPort: named.get('tcp') ?? DEFAULT_PORTS.tcp,
  };
}

export function nodeInfo(node: V1Node): NodeInfo {
  const labels = node.metadata?.labels ?? {};
  return {
    name: node.metadata?.name ?? '',
    zone: labels[ZONE_LABEL] ?? labels[LEGACY_ZONE_LABEL] ?? '',
    region: labels[REGION_LABEL] ?? labels[LEGACY_REGION_LABEL] ?? '',
    // No Ready condition yet (a node still joining) counts as not Ready.
    ready: conditionTrue(node.status?.conditions, 'Ready'),
    cordoned: node.spec?.unschedulable === true,
  };
}

/** An API server address from the `kubernetes` Service's EndpointSlices. */
export interface ApiServerEndpoint {
  readonly address: string;
  readonly port: number;
}
export type ApiServerEndpointsListener = (endpoints: readonly ApiServerEndpoint[]) => void;

/** Ready IPv4 endpoints of the `kubernetes` Service (its `https` port), one per address, sorted. */
export function apiServerEndpointsFromSlices(
  slices: Iterable<V1EndpointSlice>,
): ApiServerEndpoint[] {
  const out = new Map<string, ApiServerEndpoint>();
  for (const s of slices) {
    if (s.addressType !== 'IPv4') continue;
    const port = (s.ports?.find((p) => p.name === 'https') ?? s.ports?.[0])?.port ?? 443;
    for (const e of s.endpoints ?? []) {
      if (e.conditions?.ready === false || e.conditions?.terminating === true) continue;
      for (const address of e.addresses) out.set(`${address}:${port}`, { address, port });
    }
  }
  return [...out.values()].sort((a, b) => compareIPv4(a.address, b.address) || a.port - b.port);
}

/** Ready IPv4 endpoints of the DNS Service, one per address, sorted. */
export function dnsReplicasFromSlices(slices: Iterable<V1EndpointSlice>): DnsReplica[] {
  const out = new Map<string, DnsReplica>();
  for (const s of slices) {
    if (s.addressType !== 'IPv4') continue;
    const udp = s.ports?.find((p) => p.name === 'dns' || (p.protocol ?? 'TCP') === 'UDP');
    const tcp = s.ports?.find((p) => p.name === 'dns-tcp' || (p.protocol ?? 'TCP') === 'TCP');
    for (const e of s.endpoints ?? []) {
      // The API says a missing ready condition means "unknown" and is to be read as ready.
      if (e.conditions?.ready === false || e.conditions?.terminating === true) continue;
      for (const address of e.addresses)
        out.set(address, {
          address,
          port: udp?.port ?? 53,
          tcpPort: tcp?.port ?? udp?.port ?? 53,
          node: e.nodeName ?? '',
          zone: e.zone ?? '',
          pod: e.targetRef?.name ?? '',
        });
    }
  }
  return [...out.values()].sort((a, b) => compareIPv4(a.address, b.address));
}

/**
 * Client configuration from where the process runs: the service account inside a cluster
 * (KUBERNETES_SERVICE_HOST set), else KUBECONFIG or ~/.kube/config.
 */
export function kubeConfigFromEnvironment(env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  if ((env.KUBERNETES_SERVICE_HOST ?? '') !== '') kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

/**
 * The namespace podmesh runs in: POD_NAMESPACE (downward API), the service account's
 * namespace file, the kubeconfig context's namespace, else "podmesh".
 */
export function namespaceFromEnvironment(
  env: NodeJS.ProcessEnv = process.env,
  kc?: KubeConfig,
): string {
  const fromEnv = env.POD_NAMESPACE ?? '';
  if (fromEnv !== '') return fromEnv;
  try {
    const ns = readFileSync(SA_NAMESPACE_FILE, 'utf8').trim();
    if (ns !== '') return ns;
  } catch {
    // Not in a cluster.
  }
  const ctx = kc?.getContextObject(kc.getCurrentContext());
  return ctx?.namespace ?? 'podmesh';
}

export class KubernetesPeerSource implements PeerSource {
  private readonly clock: Clock;
  private readonly log: DiscoveryLog;
  private readonly nodeGraceMs: number;
  private readonly pods: Reflector<V1Pod>;
  private readonly nodes: Reflector<V1Node>;
  private readonly slices: Reflector<V1EndpointSlice> | undefined;
  private readonly apiSlices: Reflector<V1EndpointSlice> | undefined;
  private readonly apiListeners = new Set<ApiServerEndpointsListener>();
  private api: readonly ApiServerEndpoint[] = [];
  private apiKey: string | undefined;
  private readonly reflectors: ReflectorHandle[];
  private listener: PeersListener | undefined;
  private readonly dnsListeners = new Set<DnsReplicasListener>();
  private current: readonly Peer[] = [];
  private currentKey: string | undefined;
  private dns: readonly DnsReplica[] = [];
  private dnsKey: string | undefined;
  private nodeInfos = new Map<string, NodeInfo>();
  /**
   * Nodes seen at least once; a Pod on one that is gone no longer counts. A deleted Node is
   * forgotten once no agent Pod names it (recompute), so node churn can't grow this forever.
   */
  private readonly seenNodes = new Set<string>();
  private readonly leavingSince = new Map<string, number>();
  private readonly graceTimers = new Map<string, TimerHandle>();
  private recomputeQueued = false;
  private running = false;

  constructor(opts: KubernetesPeerSourceOptions) {
    this.clock = opts.clock ?? new SystemClock();
    this.log = opts.log ?? quietLog;
    this.nodeGraceMs = opts.nodeGraceMs ?? 60_000;
    const kc = opts.kubeConfig;
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const common = {
      kubeConfig: kc,
      clock: this.clock,
      log: this.log,
      watchdogMs: opts.watchdogMs ?? 600_000,
      backoffInitialMs: opts.backoffInitialMs ?? 1000,
      backoffMaxMs: opts.backoffMaxMs ?? 30_000,
      onChange: () => this.queueRecompute(),
    };
    this.pods = new Reflector<V1Pod>({
      ...common,
      resource: 'pods',
      path: `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/pods`,
      labelSelector: opts.podSelector,
      list: () =>
        core.listNamespacedPod({ namespace: opts.namespace, labelSelector: opts.podSelector }),
      trim: (p) => {
        if (p.metadata !== undefined) delete p.metadata.managedFields;
      },
    });
    this.nodes = new Reflector<V1Node>({
      ...common,
      resource: 'nodes',
      path: '/api/v1/nodes',
      list: () => core.listNode(),
      // Node status carries every cached image and volume: kilobytes per node we never read.
      trim: (n) => {
        if (n.metadata !== undefined) delete n.metadata.managedFields;
        if (n.status !== undefined) {
          delete n.status.images;
          delete n.status.volumesAttached;
          delete n.status.volumesInUse;
        }
      },
    });
    const dnsService = opts.dnsService ?? 'kube-dns';
    if (dnsService !== '') {
      const dnsNamespace = opts.dnsNamespace ?? 'kube-system';
      const selector = `kubernetes.io/service-name=${dnsService}`;
      this.slices = new Reflector<V1EndpointSlice>({
        ...common,
        resource: 'endpointslices',
        path: `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(dnsNamespace)}/endpointslices`,
        labelSelector: selector,
        list: () =>
          discovery.listNamespacedEndpointSlice({
            namespace: dnsNamespace,
            labelSelector: selector,
          }),
      });
    }
    if (opts.apiServerEndpoints === true) {
      const selector = 'kubernetes.io/service-name=kubernetes';
      this.apiSlices = new Reflector<V1EndpointSlice>({
        ...common,
        // Its own label value: the DNS Service's slices are `endpointslices`.
        resource: 'apiserver-endpointslices',
        path: '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices',
        labelSelector: selector,
        list: () =>
          discovery.listNamespacedEndpointSlice({ namespace: 'default', labelSelector: selector }),
      });
    }
    this.reflectors = [this.pods, this.nodes];
    if (this.slices !== undefined) this.reflectors.push(this.slices);
    if (this.apiSlices !== undefined) this.reflectors.push(this.apiSlices);
  }

  /** A source configured from the environment (see kubeConfigFromEnvironment). */
  static fromEnvironment(
    opts: Omit<KubernetesPeerSourceOptions, 'kubeConfig' | 'namespace'> & {
      readonly kubeConfig?: KubeConfig;
      readonly namespace?: string;
    },
  ): KubernetesPeerSource {
    const kubeConfig = opts.kubeConfig ?? kubeConfigFromEnvironment();
    const namespace =
      opts.namespace !== undefined && opts.namespace !== ''
        ? opts.namespace
        : namespaceFromEnvironment(process.env, kubeConfig);
    return new KubernetesPeerSource({ ...opts, kubeConfig, namespace });
  }

  /**
   * Starts the informers and returns at once; the listener first hears from us once Pods and
   * Nodes have both been listed, and after that on every change of the peer list.
   */
  start(listener: PeersListener): Promise<void> {
    this.listener = listener;
    if (this.running) return Promise.resolve();
    this.running = true;
    for (const r of this.reflectors) r.start();
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.running = false;
    this.listener = undefined;
    this.dnsListeners.clear();
    this.apiListeners.clear();
    for (const r of this.reflectors) r.stop();
    for (const t of this.graceTimers.values()) this.clock.clearTimeout(t);
    this.graceTimers.clear();
    return Promise.resolve();
  }

  /** The last peer list pushed (empty before the first sync). */
  peers(): readonly Peer[] {
    return this.current;
  }

  /** Cluster DNS replicas; the listener hears the current list at once if known. */
  onDnsReplicas(listener: DnsReplicasListener): () => void {
    this.dnsListeners.add(listener);
    if (this.dnsKey !== undefined) listener(this.dns);
    return () => this.dnsListeners.delete(listener);
  }

  dnsReplicas(): readonly DnsReplica[] {
    return this.dns;
  }

  /** The API server's endpoints (apiServerEndpoints); the listener hears the list at once if known. */
  onApiServerEndpoints(listener: ApiServerEndpointsListener): () => void {
    this.apiListeners.add(listener);
    if (this.apiKey !== undefined) listener(this.api);
    return () => this.apiListeners.delete(listener);
  }

  /** Every agent Pod the informer holds, skipped ones included (the controller's coverage needs them). */
  agentPods(): V1Pod[] {
    return [...this.pods.objects.values()];
  }

  /** Every Node the informer holds. */
  allNodes(): V1Node[] {
    return [...this.nodes.objects.values()];
  }

  /** What the Node informer knows, by node name. */
  nodeInfo(name: string): NodeInfo | undefined {
    return this.nodeInfos.get(name);
  }

  /**
   * Wall time of the most recent successful list or watch event from any informer: the
   * API server was reachable and answering then. Undefined before the first.
   */
  lastSyncMs(): number | undefined {
    let last: number | undefined;
    for (const r of this.reflectors)
      if (r.lastSyncMs !== undefined && (last === undefined || r.lastSyncMs > last))
        last = r.lastSyncMs;
    return last;
  }

  syncStats(): ResourceSyncStats[] {
    return this.reflectors.map((r) => r.stats());
  }

  private queueRecompute(): void {
    if (this.recomputeQueued || !this.running) return;
    this.recomputeQueued = true;
    // Coalesces a relist's burst of callbacks into one pass.
    queueMicrotask(() => {
      this.recomputeQueued = false;
      if (this.running) this.recompute();
    });
  }

  private recompute(): void {
    if (this.nodes.synced) this.updateNodes();
    if (this.slices?.synced === true) this.updateDns();
    if (this.apiSlices?.synced === true) this.updateApiServer();
    if (!this.pods.synced || !this.nodes.synced) return;

    const now = this.clock.nowMs();
    const chosen = new Map<string, { peer: Peer; created: number; name: string }>();
    const podNodes = new Set<string>();
    for (const pod of this.pods.objects.values()) {
      const nodeName = pod.spec?.nodeName ?? '';
      podNodes.add(nodeName);
      const node = this.nodeInfos.get(nodeName);
      if (node === undefined && this.seenNodes.has(nodeName)) continue; // node deleted
      const since = this.leavingSince.get(nodeName);
      if (since !== undefined && now - since >= this.nodeGraceMs) continue;
      const peer = peerFromPod(pod, node);
      if (peer === undefined) continue;
      // Two Ready agents of one kind on one node only happen mid-rollout: the newer one stays.
      const created = timeOf(pod.metadata?.creationTimestamp);
      const name = pod.metadata?.name ?? '';
      const prev = chosen.get(peer.id);
      if (
        prev === undefined ||
        created > prev.created ||
        (created === prev.created && name > prev.name)
      )
        chosen.set(peer.id, { peer, created, name });
    }
    // A deleted Node matters only while a Pod on it lingers; then it is forgotten.
    for (const name of this.seenNodes)
      if (!this.nodeInfos.has(name) && !podNodes.has(name)) this.seenNodes.delete(name);
    const peers = [...chosen.values()]
      .map((c) => c.peer)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const key = JSON.stringify(peers);
    if (key === this.currentKey) return;
    this.currentKey = key;
    this.current = peers;
    try {
      this.listener?.(peers);
    } catch (err) {
      // Runs from a microtask: a throwing listener must not take the process down.
      this.log.warn({ err: describeError(err) }, 'peer listener failed');
    }
  }

  private updateNodes(): void {
    const infos = new Map<string, NodeInfo>();
    for (const n of this.nodes.objects.values()) {
      const info = nodeInfo(n);
      infos.set(info.name, info);
      this.seenNodes.add(info.name);
    }
    this.nodeInfos = infos;
    const now = this.clock.nowMs();
    for (const info of infos.values()) {
      const leaving = info.cordoned || !info.ready;
      if (leaving && !this.leavingSince.has(info.name)) {
        this.leavingSince.set(info.name, now);
        this.log.info(
          {
            node: info.name,
            cordoned: info.cordoned,
            ready: info.ready,
            graceMs: this.nodeGraceMs,
          },
          'node leaving; its agents stay peers until the grace period ends',
        );
        const t = this.clock.setTimeout(() => {
          this.graceTimers.delete(info.name);
          this.queueRecompute();
        }, this.nodeGraceMs);
        this.graceTimers.set(info.name, t);
      } else if (!leaving && this.leavingSince.has(info.name)) {
        this.log.info({ node: info.name }, 'node back: schedulable and Ready');
        this.forgetLeaving(info.name);
      }
    }
    for (const name of [...this.leavingSince.keys()])
      if (!infos.has(name)) this.forgetLeaving(name);
  }

  private forgetLeaving(name: string): void {
    this.leavingSince.delete(name);
    const t = this.graceTimers.get(name);
    if (t !== undefined) this.clock.clearTimeout(t);
    this.graceTimers.delete(name);
  }

  private updateApiServer(): void {
    if (this.apiSlices === undefined) return;
    const endpoints = apiServerEndpointsFromSlices(this.apiSlices.objects.values());
    const key = JSON.stringify(endpoints);
    if (key === this.apiKey) return;
    this.apiKey = key;
    this.api = endpoints;
    for (const l of this.apiListeners) {
      try {
        l(endpoints);
      } catch (err) {
        this.log.warn({ err: describeError(err) }, 'API server endpoints listener failed');
      }
    }
  }

  private updateDns(): void {
    if (this.slices === undefined) return;
    const replicas = dnsReplicasFromSlices(this.slices.objects.values());
    const key = JSON.stringify(replicas);
    if (key === this.dnsKey) return;
    this.dnsKey = key;
    this.dns = replicas;
    for (const l of this.dnsListeners) {
      try {
        l(replicas);
      } catch (err) {
        this.log.warn({ err: describeError(err) }, 'DNS replicas listener failed');
      }
    }
  }
}

function conditionTrue(
  conditions: readonly { type: string; status: string }[] | undefined,
  type: string,
): boolean {
  return conditions?.some((c) => c.type === type && c.status === 'True') ?? false;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function podIPv4(pod: V1Pod): string | undefined {
  const candidates = [pod.status?.podIP, ...(pod.status?.podIPs ?? []).map((p) => p.ip)];
  return candidates.find((ip): ip is string => ip !== undefined && IPV4.test(ip));
}

function compareIPv4(a: string, b: string): number {
  const n = (s: string): number => s.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
  return n(a) - n(b) || (a < b ? -1 : a > b ? 1 : 0);
}

/** Watch events carry timestamps as strings, typed lists as Dates. */
function timeOf(t: Date | string | undefined): number {
  if (t === undefined) return 0;
  const ms = new Date(t).getTime();
  return Number.isNaN(ms) ? 0 : ms;
}
