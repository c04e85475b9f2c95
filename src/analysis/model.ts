// Triage's indexed view of a snapshot: cells grouped into links (one source agent to one target
// agent), each cell judged unknown | ok | lossy | failing, plus the shared bookkeeping the
// rules use to hand symptoms to the cause that explains them. Also the small helpers every
// rule file needs (keys, evidence lines, finding drafts), so those files read as rules only.

import type { AgentStatus, Cell } from '../api/matrix.ts';
import type { NodeCoverage } from '../api/coverage.ts';
import type { TriageOptions } from './options.ts';
import {
  FINDING_KINDS,
  type Evidence,
  type Finding,
  type FindingKind,
  type NextStep,
  type Severity,
  type Snapshot,
} from './types.ts';

export type Net = 'pod' | 'host';
export type Status = 'unknown' | 'ok' | 'lossy' | 'failing';
/**
 * hh: host-to-host (the node network). ov: across nodes to a pod agent (pod-to-pod,
 * host-to-pod), which rides the overlay. ph: pod-to-host across nodes, which leaves the pod
 * masqueraded to the node address and rides the node network. local: within one node.
 */
export type LinkClass = 'hh' | 'ov' | 'ph' | 'local';

export interface Link {
  readonly key: string;
  readonly sourceNode: string;
  readonly sourceNet: Net;
  readonly targetNode: string;
  readonly targetNet: Net;
  readonly cls: LinkClass;
  readonly path: string;
  readonly cells: Cell[];
}

export interface Tally {
  readonly known: boolean;
  readonly sent: number;
  /** Loss-weighted count (ratio × sent summed), so cells whose ratio and counts differ pool sanely. */
  readonly lost: number;
  readonly ratio: number;
  readonly status: Status;
  readonly protocols: readonly string[];
  readonly lastFailure: string | null;
}

/** A finding under construction: explains can still grow while later rules run. */
export interface Draft extends Omit<Finding, 'explains'> {
  explains: string[];
}

export interface Ctx {
  readonly opts: TriageOptions;
  readonly snapshot: Snapshot;
  readonly nodes: readonly string[];
  readonly zones: ReadonlyMap<string, string>;
  readonly agents: ReadonlyMap<string, AgentStatus>;
  readonly coverage: ReadonlyMap<string, NodeCoverage> | undefined;
  readonly links: ReadonlyMap<string, Link>;
  /** Cross-node links by unordered node pair key. */
  readonly pairLinks: ReadonlyMap<string, Link[]>;
  /** Target agents with no data (no agent there): cells to them are unknown, never failing. */
  readonly absent: ReadonlySet<string>;
  /** Source agents whose own cells are held back (starved prober). */
  readonly untrusted: Map<string, string>;
  /** Cells taken by a finding before the link rules run (an agent's TCP port blocked). */
  readonly takenCells: Map<Cell, string>;
  /** Whole links explained by a finding (link key → finding id). */
  readonly explainedLinks: Map<string, string>;
  /** Nodes whose IP paths a finding says are broken (node → finding id); DNS/ports hold back. */
  readonly ipHubs: Map<string, string>;
  /** A finding saying IP paths are broken across the cluster, if any. */
  clusterIp: string | undefined;
  /** Extra `explains` entries for findings already made (finding id → lines). */
  readonly extraExplains: Map<string, string[]>;
  /** Small-probe tallies per link; cleared whenever cells are taken or held back. */
  readonly smallTallies: Map<Link, Tally>;
  /** Links by source agent key. */
  readonly outLinks: ReadonlyMap<string, readonly Link[]>;
}

export const agentKey = (node: string, net: string): string => `${node}/${net}`;
export const linkKeyOf = (sn: string, snet: string, tn: string, tnet: string): string =>
  `${sn}/${snet}>${tn}/${tnet}`;
export const pairKey = (a: string, b: string): string => (a < b ? `${a}<->${b}` : `${b}<->${a}`);
export const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
export const uniqSorted = (xs: Iterable<string>): string[] => [...new Set(xs)].sort(cmp);

function isNet(x: unknown): x is Net {
  return x === 'pod' || x === 'host';
}

function finite(x: unknown): number {
  return typeof x === 'number' && Number.isFinite(x) ? x : 0;
}

/** The loss ratio a cell states, clamped; null when it has no probes. */
export function cellRatio(c: Cell): number | null {
  const sent = finite(c.sent);
  if (sent <= 0) return null;
  const r =
    typeof c.lossRatio === 'number' && Number.isFinite(c.lossRatio)
      ? c.lossRatio
      : finite(c.lost) / sent;
  return Math.min(1, Math.max(0, r));
}

export function statusOf(ratio: number, opts: TriageOptions): Status {
  return ratio >= opts.failRatio ? 'failing' : ratio >= opts.lossyRatio ? 'lossy' : 'ok';
}

/** Whether a cell counts at all: enough probes, a trusted source, a target that exists. */
export function usable(ctx: Ctx, c: Cell): boolean {
  if (finite(c.sent) < ctx.opts.minProbes || cellRatio(c) === null) return false;
  if (ctx.untrusted.has(agentKey(c.sourceNode, c.sourceNetwork))) return false;
  if (ctx.absent.has(agentKey(c.targetNode, c.targetNetwork))) return false;
  return !ctx.takenCells.has(c);
}

export function tally(ctx: Ctx, cells: readonly Cell[]): Tally {
  let sent = 0;
  let lost = 0;
  const protocols = new Set<string>();
  let lastFailure: string | null = null;
  for (const c of cells) {
    if (!usable(ctx, c)) continue;
    const s = finite(c.sent);
    sent += s;
    lost += cellRatio(c)! * s;
    protocols.add(c.protocol);
    if (c.lastFailure !== null && typeof c.lastFailure === 'string' && cellRatio(c)! > 0)
      lastFailure ??= c.lastFailure;
  }
  if (sent === 0)
    return { known: false, sent, lost, ratio: 0, status: 'unknown', protocols: [], lastFailure };
  const ratio = lost / sent;
  return {
    known: true,
    sent,
    lost,
    ratio,
    status: statusOf(ratio, ctx.opts),
    protocols: [...protocols].sort(cmp),
    lastFailure,
  };
}

export const smallCells = (l: Link): Cell[] => l.cells.filter((c) => c.size === 'small');
export function smallTally(ctx: Ctx, l: Link): Tally {
  let t = ctx.smallTallies.get(l);
  if (t === undefined) {
    t = tally(ctx, smallCells(l));
    ctx.smallTallies.set(l, t);
  }
  return t;
}

export function reverseOf(ctx: Ctx, l: Link): Link | undefined {
  return ctx.links.get(linkKeyOf(l.targetNode, l.targetNet, l.sourceNode, l.sourceNet));
}

export const linkLabel = (l: Link): string =>
  `${l.sourceNode} → ${l.targetNode} ${l.path}${l.cls === 'local' ? ' (same node)' : ''}`;

export function pct(r: number): string {
  const p = r * 100;
  return p >= 10 || p === 0 ? `${Math.round(p)}%` : `${p.toFixed(1)}%`;
}

/** One line for a link's pooled small-probe result. */
export function linkEvidence(l: Link, t: Tally): Evidence {
  const lost = Math.round(t.lost);
  return {
    text: `${linkLabel(l)} ${t.protocols.join('/')} small: ${lost} of ${t.sent} lost${
      t.lastFailure !== null && lost > 0 ? ` (${t.lastFailure})` : ''
    }`,
    sourceNode: l.sourceNode,
    targetNode: l.targetNode,
    path: l.path,
    size: 'small',
    value: t.ratio,
  };
}

export function cellEvidence(c: Cell, note = ''): Evidence {
  const r = cellRatio(c) ?? 0;
  const sent = finite(c.sent);
  const lost = Math.round(r * sent);
  const local = c.sourceNode === c.targetNode ? ' (same node)' : '';
  return {
    text: `${c.sourceNode} → ${c.targetNode} ${c.path}${local} ${c.protocol} ${c.size}: ${lost} of ${sent} lost${
      c.lastFailure !== null && lost > 0 ? ` (${c.lastFailure})` : ''
    }${note}`,
    sourceNode: c.sourceNode,
    targetNode: c.targetNode,
    path: c.path,
    protocol: c.protocol,
    size: c.size,
    value: r,
  };
}

/** Evidence with an optional sort key, for lines whose stated value isn't "worse when higher". */
export type Ranked = Evidence & { readonly rank?: number };

const strip = ({ rank: _rank, ...e }: Ranked): Evidence => e;

/** Worst first (by rank, else value), at most `max`, then one "... and N more" line. */
export function capEvidence(list: readonly Ranked[], max: number): Evidence[] {
  const key = (e: Ranked): number => e.rank ?? e.value ?? -1;
  const sorted = [...list].sort((a, b) => key(b) - key(a) || cmp(a.text, b.text)).map(strip);
  if (sorted.length <= max) return sorted;
  const kept = sorted.slice(0, max);
  kept.push({ text: `… and ${sorted.length - max} more` });
  return kept;
}

export function capList(list: readonly string[], max: number): string[] {
  const u = uniqSorted(list);
  if (u.length <= max) return u;
  return [...u.slice(0, max), `… and ${u.length - max} more`];
}

export interface DraftInput {
  readonly kind: FindingKind;
  readonly subject: string;
  readonly severity: Severity;
  readonly nodes: Iterable<string>;
  readonly zones?: Iterable<string>;
  readonly servers?: Iterable<string>;
  readonly targets?: Iterable<string>;
  readonly title: string;
  readonly summary: string;
  /** Put first, never cut (context such as "same node still works"). */
  readonly lead?: readonly Ranked[];
  readonly evidence: readonly Ranked[];
  readonly confidence: number;
  readonly nextSteps: readonly NextStep[];
  readonly explains?: Iterable<string>;
}

export function draft(ctx: Ctx, d: DraftInput): Draft {
  const conf = Number.isFinite(d.confidence) ? Math.min(1, Math.max(0, d.confidence)) : 0.5;
  return {
    id: `${d.kind}:${d.subject}`,
    kind: d.kind,
    severity: d.severity,
    subject: d.subject,
    nodes: uniqSorted(d.nodes),
    ...(d.zones !== undefined ? { zones: uniqSorted(d.zones) } : {}),
    ...(d.servers !== undefined ? { servers: uniqSorted(d.servers) } : {}),
    ...(d.targets !== undefined ? { targets: uniqSorted(d.targets) } : {}),
    title: d.title,
    summary: d.summary,
    evidence: [...(d.lead ?? []).map(strip), ...capEvidence(d.evidence, ctx.opts.maxEvidence)],
    confidence: Math.round(conf * 100) / 100,
    nextSteps: d.nextSteps,
    explains: [...(d.explains ?? [])],
  };
}

/** Whether a reason string is a finding id (vs. a plain description). */
export function isFindingId(s: string): boolean {
  const i = s.indexOf(':');
  return i > 0 && (FINDING_KINDS as readonly string[]).includes(s.slice(0, i));
}

export function addExplains(ctx: Ctx, id: string, line: string): void {
  const list = ctx.extraExplains.get(id) ?? [];
  if (!list.includes(line)) list.push(line);
  ctx.extraExplains.set(id, list);
}

/** Marks links as explained by `id` (first cause wins). */
export function explainLinks(ctx: Ctx, links: Iterable<Link>, id: string): void {
  for (const l of links) if (!ctx.explainedLinks.has(l.key)) ctx.explainedLinks.set(l.key, id);
}

/** Cross-node links between two nodes, both directions, not yet explained. */
export function openLinksBetween(ctx: Ctx, a: string, b: string): Link[] {
  return (ctx.pairLinks.get(pairKey(a, b)) ?? []).filter((l) => !ctx.explainedLinks.has(l.key));
}

export interface ClassState {
  readonly known: boolean;
  /** Failing links (pooled small probes at or over failRatio). */
  readonly failing: readonly { link: Link; t: Tally }[];
  /** Every known link with its tally. */
  readonly links: readonly { link: Link; t: Tally }[];
}

/** The open links of some classes between two nodes, judged on small probes. */
export function classState(
  ctx: Ctx,
  a: string,
  b: string,
  classes: readonly LinkClass[],
): ClassState {
  const links: { link: Link; t: Tally }[] = [];
  for (const l of openLinksBetween(ctx, a, b)) {
    if (!classes.includes(l.cls)) continue;
    const t = smallTally(ctx, l);
    if (t.known) links.push({ link: l, t });
  }
  return {
    known: links.length > 0,
    failing: links.filter((x) => x.t.status === 'failing'),
    links,
  };
}

/** The node a DNS replica label names: `node-3`, `node-3#2` → node-3; `replica-1` → none. */
export function replicaNode(ctx: Ctx, server: string): string | undefined {
  const base = server.split('#')[0] ?? server;
  return ctx.nodes.includes(base) ? base : undefined;
}

/** A finding id saying the IP paths of this agent are broken, if any. */
export function ipHeldBack(ctx: Ctx, node: string, net: string): string | undefined {
  const hub = ctx.ipHubs.get(node) ?? ctx.clusterIp;
  if (hub !== undefined) return hub;
  // Without a finding naming the node, still hold back a source most of whose paths fail;
  // paths to a node some finding already blames are that node's doing, not this source's.
  let known = 0;
  let failing = 0;
  let reason: string | undefined;
  for (const l of ctx.outLinks.get(agentKey(node, net)) ?? []) {
    if (l.cls === 'local' || ctx.ipHubs.has(l.targetNode)) continue;
    const t = smallTally(ctx, l);
    if (!t.known) continue;
    known++;
    if (t.status === 'failing') {
      failing++;
      reason ??= ctx.explainedLinks.get(l.key);
    }
  }
  if (failing >= 2 && failing / known >= ctx.opts.hubShare)
    return reason ?? `failing IP paths from ${node}/${net}`;
  return undefined;
}

/**
 * Whether the classes fail in every measured direction between two nodes: a→b (links from a
 * to b) and b→a. One-way failures are asymmetric paths, not a cut.
 */
export function failsBothWays(
  ctx: Ctx,
  a: string,
  b: string,
  classes: readonly LinkClass[],
): boolean {
  const st = classState(ctx, a, b, classes);
  if (st.failing.length === 0) return false;
  for (const [x, y] of [
    [a, b],
    [b, a],
  ] as const) {
    const dir = st.links.filter((l) => l.link.sourceNode === x && l.link.targetNode === y);
    if (dir.length > 0 && !dir.some((l) => l.t.status === 'failing')) return false;
  }
  return true;
}

function classOf(sn: string, snet: Net, tn: string, tnet: Net): LinkClass {
  if (sn === tn) return 'local';
  if (tnet === 'pod') return 'ov';
  return snet === 'host' ? 'hh' : 'ph';
}

function arr<T>(x: readonly T[] | undefined | null): readonly T[] {
  return Array.isArray(x) ? (x as readonly T[]) : [];
}

export function buildContext(snapshot: Snapshot, opts: TriageOptions): Ctx {
  const m = snapshot.matrix;
  const agents = new Map<string, AgentStatus>();
  for (const a of arr(m?.agents))
    if (a !== null && typeof a === 'object' && isNet(a.network))
      agents.set(agentKey(a.node, a.network), a);
  const coverage =
    snapshot.coverage === undefined
      ? undefined
      : new Map(
          arr(snapshot.coverage)
            .filter((c) => c !== null && typeof c === 'object' && typeof c.node === 'string')
            .map((c) => [c.node, c] as const),
        );

  const nodes = new Set<string>();
  for (const n of arr(m?.nodes)) if (typeof n === 'string') nodes.add(n);
  for (const a of agents.values()) nodes.add(a.node);

  const links = new Map<string, Link>();
  for (const c of arr(m?.cells)) {
    if (c === null || typeof c !== 'object') continue;
    if (!isNet(c.sourceNetwork) || !isNet(c.targetNetwork)) continue;
    if (typeof c.sourceNode !== 'string' || typeof c.targetNode !== 'string') continue;
    if (c.sourceNode === c.targetNode && c.sourceNetwork === c.targetNetwork) continue;
    nodes.add(c.sourceNode);
    nodes.add(c.targetNode);
    const key = linkKeyOf(c.sourceNode, c.sourceNetwork, c.targetNode, c.targetNetwork);
    let l = links.get(key);
    if (l === undefined) {
      l = {
        key,
        sourceNode: c.sourceNode,
        sourceNet: c.sourceNetwork,
        targetNode: c.targetNode,
        targetNet: c.targetNetwork,
        cls: classOf(c.sourceNode, c.sourceNetwork, c.targetNode, c.targetNetwork),
        path: `${c.sourceNetwork}-to-${c.targetNetwork}`,
        cells: [],
      };
      links.set(key, l);
    }
    l.cells.push(c);
  }
  const pairLinks = new Map<string, Link[]>();
  const outLinks = new Map<string, Link[]>();
  for (const l of links.values()) {
    const sk = agentKey(l.sourceNode, l.sourceNet);
    const ol = outLinks.get(sk);
    if (ol === undefined) outLinks.set(sk, [l]);
    else ol.push(l);
    if (l.cls === 'local') continue;
    const k = pairKey(l.sourceNode, l.targetNode);
    const list = pairLinks.get(k) ?? [];
    list.push(l);
    pairLinks.set(k, list);
  }

  const zones = new Map<string, string>();
  const z = m?.zones ?? {};
  for (const n of nodes) {
    const v = (z as Record<string, unknown>)[n];
    if (typeof v === 'string' && v !== '') zones.set(n, v);
  }

  // No data is not failure: a target with no agent there (coverage says so, or, with nobody to
  // tell, the controller's connection to it is refused) is unknown, not unreachable.
  const absent = new Set<string>();
  for (const n of nodes) {
    for (const net of ['pod', 'host'] as const) {
      const cov = coverage?.get(n)?.[net];
      const a = agents.get(agentKey(n, net));
      if (cov !== undefined && cov !== null && cov.covered === false) absent.add(agentKey(n, net));
      else if (
        coverage === undefined &&
        a?.state === 'unreachable' &&
        /refused/i.test(a.detail ?? '')
      )
        absent.add(agentKey(n, net));
    }
  }

  return {
    opts,
    snapshot,
    nodes: [...nodes].sort(cmp),
    zones,
    agents,
    coverage,
    links,
    pairLinks,
    absent,
    untrusted: new Map(),
    takenCells: new Map(),
    explainedLinks: new Map(),
    ipHubs: new Map(),
    clusterIp: undefined,
    extraExplains: new Map(),
    smallTallies: new Map(),
    outLinks,
  };
}
