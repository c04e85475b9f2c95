// "What changed": a bounded timeline of the changes the controller sees in the cluster, derived
// each round from what it already watches. diffPlumbing() compares two plumbing reports
// (plumbing.ts): a Pod whose restart count went up, that flipped Ready, that a new Pod of the
// same component replaced on its node, a new burst of sandbox errors on a node. diffCluster()
// compares two snapshots of the Node and NetworkPolicy watches (change-watch.ts): a node that
// rebooted or flipped Ready, a NetworkPolicy created, changed or deleted, a cluster DNS ConfigMap
// (the Corefile) whose data changed, appeared or went away. The timeline keeps
// them bounded (per node or namespace, and overall) and ages them out after a horizon;
// changesFor() picks those a finding involves from a lookback before it opened on, so a restart
// hours before is never offered as its cause. Pure but for the small ChangeTimeline holder.

import type { Change } from '../api/changes.ts';
import type { Finding } from '../api/findings.ts';
import type { PlumbingPod, PlumbingReport } from '../api/plumbing.ts';

/** A change and its time as a number, for ageing and the lookback. */
export interface TimedChange {
  readonly atMs: number;
  readonly change: Change;
}

export interface TimelineOptions {
  /** Changes older than this (against the newest report) are dropped. */
  readonly horizonMs: number;
  /** Changes kept per node: a node flapping all day can't push the others out. */
  readonly maxPerNode?: number;
  /** Changes kept in all. */
  readonly maxTotal?: number;
  /** Called once for each change the timeline keeps (the controller counts them as a metric). */
  readonly onRecorded?: (c: Change) => void;
}

const MAX_PER_NODE = 20;
const MAX_TOTAL = 500;

function timed(atMs: number, c: Omit<Change, 'at'>): TimedChange {
  return { atMs, change: { at: new Date(atMs).toISOString(), ...c } };
}

function podFields(
  node: string,
  p: PlumbingPod,
): Pick<Change, 'node' | 'namespace' | 'object' | 'component' | 'role'> {
  return {
    node,
    namespace: p.namespace,
    object: `${p.namespace}/${p.name}`,
    component: p.component,
    role: p.role,
  };
}

function lastEnded(p: PlumbingPod): string {
  const t = p.lastTermination;
  const waiting = p.waitingReason !== undefined ? `, now ${p.waitingReason}` : '';
  return t === undefined ? waiting : `, last ended ${t.reason} (${t.container})${waiting}`;
}

/**
 * A Pod first seen (the controller's first report, or a Pod that appeared): its restart is a
 * change only as of its last termination's time, which the horizon and lookback then judge.
 */
function firstSeen(node: string, p: PlumbingPod): TimedChange[] {
  if (p.restarts === 0 || p.lastTermination === undefined) return [];
  return [
    timed(p.lastTermination.atMs, {
      kind: 'pod-restarted',
      ...podFields(node, p),
      detail: `${p.name} restarted (${p.restarts} restarts)${lastEnded(p)}`,
    }),
  ];
}

/** The changes between two plumbing reports (prev undefined: the first one). Pure. */
export function diffPlumbing(
  prev: PlumbingReport | undefined,
  next: PlumbingReport,
): TimedChange[] {
  const out: TimedChange[] = [];
  const now = next.atMs;
  const before = new Map((prev?.nodes ?? []).map((n) => [n.node, n]));
  for (const n of next.nodes) {
    const old = before.get(n.node);
    const oldPods = new Map((old?.pods ?? []).map((p) => [`${p.namespace}/${p.name}`, p]));
    const names = new Set(n.pods.map((p) => `${p.namespace}/${p.name}`));
    for (const p of n.pods) {
      const was = oldPods.get(`${p.namespace}/${p.name}`);
      if (was === undefined) {
        // A rollout: the Pod of the same component on this node is gone, this one took over.
        const replaced =
          prev === undefined
            ? undefined
            : [...oldPods.values()].find(
                (o) =>
                  o.component === p.component &&
                  o.namespace === p.namespace &&
                  !names.has(`${o.namespace}/${o.name}`),
              );
        if (replaced !== undefined)
          out.push(
            timed(now, {
              kind: 'pod-replaced',
              ...podFields(n.node, p),
              detail: `${p.component} on ${n.node}: ${replaced.name} replaced by ${p.name}`,
            }),
          );
        out.push(...firstSeen(n.node, p));
        continue;
      }
      if (p.restarts > was.restarts) {
        const end = p.lastTermination?.atMs;
        // The container's end, when it is newer than the previous report; else when seen.
        const at = end !== undefined && end > (prev?.atMs ?? 0) && end <= now ? end : now;
        out.push(
          timed(at, {
            kind: 'pod-restarted',
            ...podFields(n.node, p),
            detail: `${p.name} restarted (${was.restarts} → ${p.restarts})${lastEnded(p)}`,
          }),
        );
      }
      if (p.ready !== was.ready)
        out.push(
          timed(now, {
            kind: p.ready ? 'pod-ready' : 'pod-not-ready',
            ...podFields(n.node, p),
            detail: `${p.name} became ${p.ready ? 'Ready' : 'not Ready'}${p.ready ? '' : lastEnded(p)}`,
          }),
        );
    }
    const sb = n.sandboxErrors;
    if (sb !== undefined && old?.sandboxErrors === undefined)
      out.push(
        timed(Math.min(sb.lastAtMs, now), {
          kind: 'sandbox-errors',
          node: n.node,
          object: n.node,
          detail: `FailedCreatePodSandBox ×${sb.count} on ${n.node} (${sb.pods.join(', ')}): ${sb.lastMessage}`,
        }),
      );
  }
  return out;
}

/** A Node as the timeline compares it. */
export interface NodeState {
  readonly name: string;
  readonly ready: boolean;
  /** status.nodeInfo.bootID: a new one means the node rebooted. */
  readonly bootId: string;
}

/** A NetworkPolicy as the timeline compares it. */
export interface PolicyState {
  readonly namespace: string;
  readonly name: string;
  /** metadata.generation: goes up when the spec changes (not on label or status edits). */
  readonly generation: number;
  readonly createdMs: number;
}

/**
 * A cluster DNS ConfigMap (the Corefile) as the timeline compares it: a digest of its data, never
 * the data itself (a Corefile can name internal hosts, and the digest is all a diff needs).
 */
export interface DnsConfigState {
  readonly namespace: string;
  readonly name: string;
  /** SHA-256 of its data and binaryData, keys sorted: a new one means the configuration changed. */
  readonly digest: string;
}

/** What the controller's watches hold at one time (undefined: not listed yet). */
export interface ClusterState {
  readonly atMs: number;
  readonly nodes?: readonly NodeState[];
  readonly policies?: readonly PolicyState[];
  /** The watched DNS ConfigMaps that exist (one missing is absent from the list). */
  readonly dnsConfigs?: readonly DnsConfigState[];
}

/** The Node, NetworkPolicy and DNS ConfigMap changes between two snapshots (prev undefined: the first). Pure. */
export function diffCluster(prev: ClusterState | undefined, next: ClusterState): TimedChange[] {
  const out: TimedChange[] = [];
  const now = next.atMs;
  if (next.nodes !== undefined && prev?.nodes !== undefined) {
    const before = new Map(prev.nodes.map((n) => [n.name, n]));
    for (const n of next.nodes) {
      const was = before.get(n.name);
      if (was === undefined) continue;
      const base = { node: n.name, object: n.name };
      if (was.bootId !== '' && n.bootId !== '' && n.bootId !== was.bootId)
        out.push(
          timed(now, {
            kind: 'node-rebooted',
            ...base,
            detail: `${n.name} rebooted (new boot ID)`,
          }),
        );
      if (n.ready !== was.ready)
        out.push(
          timed(now, {
            kind: n.ready ? 'node-ready' : 'node-not-ready',
            ...base,
            detail: `${n.name} became ${n.ready ? 'Ready' : 'not Ready'}`,
          }),
        );
    }
  }
  if (next.policies !== undefined) {
    const id = (p: PolicyState): string => `${p.namespace}/${p.name}`;
    const listed = prev?.policies !== undefined;
    const before = new Map((prev?.policies ?? []).map((p) => [id(p), p]));
    const names = new Set(next.policies.map(id));
    for (const p of next.policies) {
      const was = before.get(id(p));
      const base = { namespace: p.namespace, object: id(p) };
      // New, or seen for the first time: dated by its creation, so an old one is aged out.
      if (was === undefined)
        out.push(
          timed(Math.min(p.createdMs, now), {
            kind: 'network-policy-created',
            ...base,
            detail: `NetworkPolicy ${id(p)} created`,
          }),
        );
      else if (p.generation > was.generation)
        out.push(
          timed(now, {
            kind: 'network-policy-changed',
            ...base,
            detail: `NetworkPolicy ${id(p)} changed (generation ${was.generation} → ${p.generation})`,
          }),
        );
    }
    if (listed)
      for (const [k, p] of before)
        if (!names.has(k))
          out.push(
            timed(now, {
              kind: 'network-policy-deleted',
              namespace: p.namespace,
              object: k,
              detail: `NetworkPolicy ${k} deleted`,
            }),
          );
  }
  if (next.dnsConfigs !== undefined && prev?.dnsConfigs !== undefined)
    out.push(...diffDnsConfigs(prev.dnsConfigs, next.dnsConfigs, now));
  return out;
}

/**
 * The Corefile's changes: a digest that differs, a ConfigMap that appeared or went away. Only
 * between two lists: the first list is the baseline (a ConfigMap carries no time of its last
 * edit, so an old one can't be dated and is never offered as a change).
 */
function diffDnsConfigs(
  prev: readonly DnsConfigState[],
  next: readonly DnsConfigState[],
  now: number,
): TimedChange[] {
  const id = (c: DnsConfigState): string => `${c.namespace}/${c.name}`;
  const before = new Map(prev.map((c) => [id(c), c]));
  const after = new Map(next.map((c) => [id(c), c]));
  const out: TimedChange[] = [];
  const change = (c: DnsConfigState, what: string): TimedChange =>
    timed(now, {
      kind: 'dns-config-changed',
      namespace: c.namespace,
      object: id(c),
      detail: `ConfigMap ${id(c)} ${what}`,
    });
  for (const [k, c] of after) {
    const was = before.get(k);
    if (was === undefined) out.push(change(c, 'created'));
    else if (was.digest !== c.digest) out.push(change(c, 'changed (its data differs)'));
  }
  for (const [k, c] of before) if (!after.has(k)) out.push(change(c, 'deleted'));
  return out;
}

/** What a change is bounded by: its node, else its namespace. */
function where(c: Change): string {
  return c.node ?? `namespace ${c.namespace ?? ''}`;
}

function key(c: TimedChange): string {
  return `${c.atMs} ${c.change.kind} ${where(c.change)} ${c.change.object}`;
}

/**
 * Bounds and ages a list of changes: dedupes, drops those older than the horizon, keeps the
 * newest `maxPerNode` per node (or namespace) and `maxTotal` overall; oldest first. Pure.
 */
export function boundChanges(
  all: readonly TimedChange[],
  nowMs: number,
  o: TimelineOptions,
): TimedChange[] {
  const perNode = o.maxPerNode ?? MAX_PER_NODE;
  const seen = new Set<string>();
  const count = new Map<string, number>();
  const kept: TimedChange[] = [];
  // Newest first, so the bounds drop the oldest.
  for (const c of [...all].sort((a, b) => b.atMs - a.atMs)) {
    if (c.atMs < nowMs - o.horizonMs || seen.has(key(c))) continue;
    seen.add(key(c));
    const n = count.get(where(c.change)) ?? 0;
    if (n >= perNode) continue;
    count.set(where(c.change), n + 1);
    kept.push(c);
    if (kept.length >= (o.maxTotal ?? MAX_TOTAL)) break;
  }
  return kept.reverse();
}

/** Which namespaces' NetworkPolicies concern which findings. */
export interface ChangeScope {
  /** podmesh's own namespace: a policy there can cut the agents' probes, so every finding. */
  readonly agentNamespace: string;
  /** CoreDNS's namespace: a policy there concerns the DNS findings. */
  readonly dnsNamespace: string;
}

function policyConcerns(f: Pick<Finding, 'kind'>, ns: string, scope?: ChangeScope): boolean {
  // Port targets may live in any namespace (their namespace is not known): any policy.
  if (f.kind.startsWith('port-')) return true;
  if (scope === undefined) return false;
  return ns === scope.agentNamespace || (f.kind.startsWith('dns-') && ns === scope.dnsNamespace);
}

/**
 * The changes that belong to a finding, from `lookbackMs` before it opened on: those on one of
 * its nodes, any CoreDNS change (a Pod or its Corefile) for a DNS finding (its replicas serve every node), and the
 * NetworkPolicy changes in the namespaces it involves (ChangeScope). Pure.
 */
export function changesFor(
  all: readonly TimedChange[],
  f: Pick<Finding, 'kind' | 'nodes'>,
  sinceMs: number,
  lookbackMs: number,
  scope?: ChangeScope,
): Change[] {
  const nodes = new Set(f.nodes);
  const dns = f.kind.startsWith('dns-');
  return all
    .filter((c) => {
      if (c.atMs < sinceMs - lookbackMs) return false;
      const ch = c.change;
      // The Corefile serves every node: it concerns every DNS finding, and only those.
      if (ch.kind === 'dns-config-changed') return dns;
      if (ch.node !== undefined) return nodes.has(ch.node) || (dns && ch.role === 'dns');
      return ch.namespace !== undefined && policyConcerns(f, ch.namespace, scope);
    })
    .map((c) => c.change);
}

/** The controller's timeline: fed each round's reports, asked per open finding. */
export class ChangeTimeline {
  private prev: PlumbingReport | undefined;
  private prevCluster: ClusterState | undefined;
  private list: TimedChange[] = [];

  constructor(
    private readonly o: TimelineOptions & {
      readonly lookbackMs: number;
      readonly scope?: ChangeScope;
    },
  ) {}

  observe(r: PlumbingReport): void {
    this.record(diffPlumbing(this.prev, r), r.atMs);
    this.prev = r;
  }

  observeCluster(c: ClusterState): void {
    this.record(diffCluster(this.prevCluster, c), c.atMs);
    // A watch not listed yet keeps the last snapshot of it, so its first list is no burst.
    const nodes = c.nodes ?? this.prevCluster?.nodes;
    const policies = c.policies ?? this.prevCluster?.policies;
    const dnsConfigs = c.dnsConfigs ?? this.prevCluster?.dnsConfigs;
    this.prevCluster = {
      atMs: c.atMs,
      ...(nodes !== undefined ? { nodes } : {}),
      ...(policies !== undefined ? { policies } : {}),
      ...(dnsConfigs !== undefined ? { dnsConfigs } : {}),
    };
  }

  /** Adds what a diff found; each change kept for the first time goes to onRecorded. */
  private record(found: readonly TimedChange[], nowMs: number): void {
    if (found.length === 0 && this.list.every((c) => c.atMs >= nowMs - this.o.horizonMs)) return;
    const before = new Set(this.list.map(key));
    this.list = boundChanges([...this.list, ...found], nowMs, this.o);
    for (const c of this.list) if (!before.has(key(c))) this.o.onRecorded?.(c.change);
  }

  /** Everything kept, oldest first. */
  changes(): readonly TimedChange[] {
    return this.list;
  }

  forFinding(f: Pick<Finding, 'kind' | 'nodes'>, sinceMs: number): Change[] {
    return changesFor(this.list, f, sinceMs, this.o.lookbackMs, this.o.scope);
  }

  /**
   * Wraps the controller's plumbing source so each report it hands triage is observed, and the
   * Node and NetworkPolicy watches with it (once a round).
   */
  observing(
    source: () => PlumbingReport | undefined,
    cluster?: () => ClusterState,
  ): () => PlumbingReport | undefined {
    return () => {
      const r = source();
      if (r !== undefined) this.observe(r);
      if (cluster !== undefined) this.observeCluster(cluster());
      return r;
    };
  }
}
