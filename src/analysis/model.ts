// Triage's indexed view of a snapshot: cells grouped into links (one source agent to one target
// agent), each judged unknown | ok | lossy | failing, plus the shared bookkeeping the rules use
// to hand symptoms to the cause that explains them. Only the shapes and the keys live here:
// building the view is context.ts, judging links is links.ts, evidence and drafts drafts.ts.

import type { TriageOptions } from './options.ts';
import type { AgentStatus, Cell, Finding, NodeCoverage, Snapshot } from './types.ts';

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
  /** The windows' own counts, when some cell was judged on its trailing run (fresh.ts). */
  readonly window?: { readonly sent: number; readonly lost: number };
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
  /**
   * Whether a link whose every kind is a proven hard failure (fresh.ts) counts as failing. Only
   * while the isolation rule runs (links.ts withHardFailures): a run of failures after a clean
   * window tells a change, not a cut from heavy partial loss, unless most of a node's links
   * show it at once. Every other rule judges such a link on its window (links.ts cellCounts).
   */
  hardFailures: boolean;
  /** Links by source agent key. */
  readonly outLinks: ReadonlyMap<string, readonly Link[]>;
}

export const agentKey = (node: string, net: string): string => `${node}/${net}`;
/** The node of an agent key (`node-1/pod` → node-1). */
export const agentNode = (key: string): string => key.slice(0, key.lastIndexOf('/'));
export const linkKeyOf = (sn: string, snet: string, tn: string, tnet: string): string =>
  `${sn}/${snet}>${tn}/${tnet}`;
export const pairKey = (a: string, b: string): string => (a < b ? `${a}<->${b}` : `${b}<->${a}`);
export const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
export const uniqSorted = (xs: Iterable<string>): string[] => [...new Set(xs)].sort(cmp);

/** A number as stated, or 0 when it is missing or not finite (a malformed row never throws). */
export function finite(x: unknown): number {
  return typeof x === 'number' && Number.isFinite(x) ? x : 0;
}

/**
 * A triage rule: reads the view, takes the symptoms it explains (marking links, cells or agents
 * in the bookkeeping above) and returns its drafts. Rules run in a fixed order.
 */
export type Rule = (ctx: Ctx) => Draft[];
