// "What changed": a bounded timeline of the changes the controller sees in the cluster's
// plumbing, derived from the plumbing reports it already builds each round (plumbing.ts), so no
// new watch or permission is needed. diffPlumbing() compares two reports: a Pod whose restart
// count went up, that flipped Ready, that a new Pod of the same component replaced on its node,
// and a new burst of sandbox errors on a node. The timeline keeps them bounded (per node and
// overall) and ages them out after a horizon; changesFor() picks those on a finding's nodes (and
// any CoreDNS change for a DNS finding) from a lookback before the finding opened on (anything the timeline still holds), so
// a restart hours before is never offered as its cause.

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

function key(c: TimedChange): string {
  return `${c.atMs} ${c.change.kind} ${c.change.node} ${c.change.object}`;
}

/**
 * Bounds and ages a list of changes: dedupes, drops those older than the horizon, keeps the
 * newest `maxPerNode` per node and `maxTotal` overall; oldest first. Pure.
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
    const n = count.get(c.change.node) ?? 0;
    if (n >= perNode) continue;
    count.set(c.change.node, n + 1);
    kept.push(c);
    if (kept.length >= (o.maxTotal ?? MAX_TOTAL)) break;
  }
  return kept.reverse();
}

/**
 * The changes that belong to a finding: on one of its nodes, or a CoreDNS change for a DNS
 * finding (its replicas serve every node), from `lookbackMs` before it opened up to now. Pure.
 */
export function changesFor(
  all: readonly TimedChange[],
  f: Pick<Finding, 'kind' | 'nodes'>,
  sinceMs: number,
  lookbackMs: number,
): Change[] {
  const nodes = new Set(f.nodes);
  const dns = f.kind.startsWith('dns-');
  return all
    .filter(
      (c) =>
        c.atMs >= sinceMs - lookbackMs &&
        (nodes.has(c.change.node) || (dns && c.change.role === 'dns')),
    )
    .map((c) => c.change);
}

/** The controller's timeline: fed each round's plumbing report, asked per open finding. */
export class ChangeTimeline {
  private prev: PlumbingReport | undefined;
  private list: TimedChange[] = [];

  constructor(private readonly o: TimelineOptions & { readonly lookbackMs: number }) {}

  observe(r: PlumbingReport): void {
    this.list = boundChanges([...this.list, ...diffPlumbing(this.prev, r)], r.atMs, this.o);
    this.prev = r;
  }

  /** Everything kept, oldest first. */
  changes(): readonly TimedChange[] {
    return this.list;
  }

  forFinding(f: Pick<Finding, 'kind' | 'nodes'>, sinceMs: number): Change[] {
    return changesFor(this.list, f, sinceMs, this.o.lookbackMs);
  }

  /** Wraps the controller's plumbing source so each report it hands triage is observed. */
  observing(source: () => PlumbingReport | undefined): () => PlumbingReport | undefined {
    return () => {
      const r = source();
      if (r !== undefined) this.observe(r);
      return r;
    };
  }
}
