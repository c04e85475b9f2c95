// The cluster's plumbing, watched read-only for triage: the Pods of the CNI, kube-proxy and
// CoreDNS (found by their well-known labels, in the namespaces configured) and the Pod sandbox
// errors the kubelets report as Events, each kept in sync by a Reflector. plumbingReport() is
// the pure part: per node, each Pod's Ready, restarts and last termination, and the sandbox
// errors inside the window (bounded per node, aged out by their last occurrence).

import { CoreV1Api, type CoreV1Event, type V1Pod } from '@kubernetes/client-node';
import type { NodePlumbing, PlumbingPod, PlumbingReport, PlumbingRole } from '../api/plumbing.ts';
import type { Reflector, ReflectorHandle } from '../discovery/reflector.ts';
import { roundReflector, type RoundReflectorOptions } from './round-reflector.ts';

/** The kubelet's Event reason when the runtime or the CNI cannot create a Pod's sandbox. */
export const SANDBOX_REASON = 'FailedCreatePodSandBox';
/** Distinct failing Pods kept per node: enough to name them, bounded whatever the cluster does. */
const MAX_SANDBOX_PODS = 10;
const MAX_MESSAGE = 300;

/** One `key=value` of the plumbing selectors: which label, which value, what it is. */
export interface PlumbingSelector {
  readonly key: string;
  readonly value: string;
  readonly role: PlumbingRole;
}

/** Parses `key=value` entries; the value names the role (kube-proxy, kube-dns, else a CNI). */
export function parseSelectors(entries: readonly string[]): PlumbingSelector[] {
  return entries.map((e) => {
    const i = e.indexOf('=');
    const key = e.slice(0, i).trim();
    const value = e.slice(i + 1).trim();
    const role: PlumbingRole =
      value === 'kube-proxy' ? 'proxy' : value === 'kube-dns' ? 'dns' : 'cni';
    return { key, value, role };
  });
}

/** One set-based selector per label key (`k8s-app in (calico-node,cilium,...)`): one watch each. */
export function selectorsByKey(sel: readonly PlumbingSelector[]): string[] {
  const byKey = new Map<string, string[]>();
  for (const s of sel) byKey.set(s.key, [...(byKey.get(s.key) ?? []), s.value]);
  return [...byKey].map(([k, vs]) => `${k} in (${[...new Set(vs)].join(',')})`);
}

function podOf(p: V1Pod, sel: readonly PlumbingSelector[]): PlumbingPod | undefined {
  const labels = p.metadata?.labels ?? {};
  const s = sel.find((x) => labels[x.key] === x.value);
  if (s === undefined) return undefined;
  const statuses = p.status?.containerStatuses ?? [];
  let last: PlumbingPod['lastTermination'];
  for (const c of statuses) {
    const t = c.lastState?.terminated;
    if (t === undefined) continue;
    const atMs = Date.parse(String(t.finishedAt ?? t.startedAt ?? '')) || 0;
    if (last === undefined || atMs > last.atMs)
      last = { container: c.name, reason: t.reason ?? `exit code ${t.exitCode}`, atMs };
  }
  const waiting = statuses.find((c) => c.state?.waiting?.reason !== undefined)?.state?.waiting;
  return {
    namespace: p.metadata?.namespace ?? '',
    name: p.metadata?.name ?? '',
    component: s.value,
    role: s.role,
    ready: p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    restarts: statuses.reduce((n, c) => n + (c.restartCount ?? 0), 0),
    ...(waiting?.reason !== undefined ? { waitingReason: waiting.reason } : {}),
    ...(last !== undefined ? { lastTermination: last } : {}),
  };
}

function eventNode(e: CoreV1Event): string {
  return e.source?.host ?? e.reportingInstance ?? '';
}

function eventLastMs(e: CoreV1Event): number {
  const t = e.series?.lastObservedTime ?? e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp;
  return Date.parse(String(t ?? e.metadata?.creationTimestamp ?? '')) || 0;
}

/** Per node: the plumbing Pods there and the sandbox errors whose last occurrence is recent. */
export function plumbingReport(
  pods: Iterable<V1Pod>,
  events: Iterable<CoreV1Event>,
  sel: readonly PlumbingSelector[],
  nowMs: number,
  windowMs: number,
): PlumbingReport {
  const nodes = new Map<string, { pods: PlumbingPod[]; sandbox?: NodePlumbing['sandboxErrors'] }>();
  const entry = (n: string): { pods: PlumbingPod[]; sandbox?: NodePlumbing['sandboxErrors'] } => {
    let e = nodes.get(n);
    if (e === undefined) nodes.set(n, (e = { pods: [] }));
    return e;
  };
  for (const p of pods) {
    const node = p.spec?.nodeName ?? '';
    const pp = node === '' ? undefined : podOf(p, sel);
    if (pp !== undefined) entry(node).pods.push(pp);
  }
  for (const e of events) {
    if (e.reason !== SANDBOX_REASON) continue;
    const node = eventNode(e);
    const at = eventLastMs(e);
    // Aged out: an Event counts while its last occurrence is inside the window.
    if (node === '' || at < nowMs - windowMs) continue;
    const n = entry(node);
    const prev = n.sandbox;
    const pod = `${e.involvedObject?.namespace ?? ''}/${e.involvedObject?.name ?? ''}`;
    const podsSeen = prev?.pods ?? [];
    const newer = prev === undefined || at >= prev.lastAtMs;
    n.sandbox = {
      count: (prev?.count ?? 0) + Math.max(1, e.count ?? e.series?.count ?? 1),
      pods:
        podsSeen.includes(pod) || podsSeen.length >= MAX_SANDBOX_PODS
          ? podsSeen
          : [...podsSeen, pod].sort(),
      lastAtMs: newer ? at : prev.lastAtMs,
      lastMessage: newer ? (e.message ?? '').slice(0, MAX_MESSAGE) : prev.lastMessage,
    };
  }
  return {
    atMs: nowMs,
    sandboxWindowMs: windowMs,
    nodes: [...nodes]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([node, e]) => ({
        node,
        pods: e.pods.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
        ...(e.sandbox !== undefined ? { sandboxErrors: e.sandbox } : {}),
      })),
  };
}

export interface PlumbingWatcherOptions extends RoundReflectorOptions {
  /** Namespaces whose Pods are watched; each needs its own Role (docs/security.md). */
  readonly namespaces: readonly string[];
  /** `key=value` label selectors of the plumbing Pods. */
  readonly selectors: readonly string[];
  readonly sandboxWindowMs: number;
}

/** Reflectors over the plumbing Pods (per namespace and label key) and sandbox-error Events. */
export class PlumbingWatcher {
  private readonly sel: PlumbingSelector[];
  private readonly pods: Reflector<V1Pod>[] = [];
  private readonly events: Reflector<CoreV1Event>;
  private readonly all: ReflectorHandle[];

  constructor(private readonly o: PlumbingWatcherOptions) {
    this.sel = parseSelectors(o.selectors);
    const core = o.kubeConfig.makeApiClient(CoreV1Api);
    for (const namespace of o.namespaces)
      for (const labelSelector of selectorsByKey(this.sel))
        this.pods.push(
          roundReflector<V1Pod>(o, {
            resource: `plumbing pods ${namespace} ${labelSelector}`,
            path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
            labelSelector,
            list: () => core.listNamespacedPod({ namespace, labelSelector }),
            trim: trimPod,
          }),
        );
    // Sandbox errors happen to Pods of every namespace, so Events are watched cluster-wide,
    // filtered by the server to the one reason: never every Event of the cluster.
    const fieldSelector = `reason=${SANDBOX_REASON}`;
    this.events = roundReflector<CoreV1Event>(o, {
      resource: 'sandbox events',
      path: '/api/v1/events',
      fieldSelector,
      list: () => core.listEventForAllNamespaces({ fieldSelector }),
      trim: (e) => {
        if (e.metadata !== undefined) delete e.metadata.managedFields;
      },
    });
    this.all = [...this.pods, this.events];
  }

  start(): void {
    for (const r of this.all) r.start();
  }

  stop(): void {
    for (const r of this.all) r.stop();
  }

  /** The snapshot for triage from what has listed (a namespace it may not read adds nothing); undefined before any has. */
  report(): PlumbingReport | undefined {
    if (!this.all.some((r) => r.stats().synced)) return undefined;
    return plumbingReport(
      this.pods.flatMap((r) => [...r.objects.values()]),
      this.events.objects.values(),
      this.sel,
      this.o.clock.nowMs(),
      this.o.sandboxWindowMs,
    );
  }
}

/** Only the node, the labels and the container statuses are read: the rest is not kept. */
function trimPod(p: V1Pod): void {
  if (p.metadata !== undefined) {
    delete p.metadata.managedFields;
    delete p.metadata.annotations;
  }
  if (p.spec !== undefined) p.spec = { nodeName: p.spec.nodeName, containers: [] };
}
