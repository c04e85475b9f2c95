// Builds triage's indexed view (model.ts) from one snapshot: agents and coverage by key, cells
// grouped into links, links by node pair and by source, zones, and the targets with no agent
// there. Malformed rows are skipped, never thrown on: triage runs every round.

import { judgeFreshness } from './links.ts';
import {
  agentKey,
  cmp,
  linkKeyOf,
  pairKey,
  type Ctx,
  type Link,
  type LinkClass,
  type Net,
} from './model.ts';
import type { TriageOptions } from './options.ts';
import type { AgentStatus, Cell, Matrix, NodeCoverage, Snapshot } from './types.ts';

function isNet(x: unknown): x is Net {
  return x === 'pod' || x === 'host';
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
  const agents = agentsByKey(m);
  const coverage = coverageByNode(snapshot);
  // Insertion order matters: zones are listed in it (the matrix's nodes, agents', then cells').
  const nodes = new Set<string>();
  for (const n of arr(m?.nodes)) if (typeof n === 'string') nodes.add(n);
  for (const a of agents.values()) nodes.add(a.node);
  const links = linksOf(arr(m?.cells), nodes);
  // Each link's cells judged on fresh samples where their trailing runs prove a change.
  for (const l of links.values()) l.cells.splice(0, l.cells.length, ...judgeFreshness(l.cells));
  const { pairLinks, outLinks } = indexLinks(links);
  return {
    opts,
    snapshot,
    nodes: [...nodes].sort(cmp),
    zones: zonesOf(m?.zones ?? {}, nodes),
    agents,
    coverage,
    links,
    pairLinks,
    absent: absentAgents(nodes, agents, coverage),
    untrusted: new Map(),
    takenCells: new Map(),
    explainedLinks: new Map(),
    ipHubs: new Map(),
    clusterIp: undefined,
    extraExplains: new Map(),
    smallTallies: new Map(),
    hardFailures: false,
    outLinks,
  };
}

function agentsByKey(m: Matrix | undefined): Map<string, AgentStatus> {
  const agents = new Map<string, AgentStatus>();
  for (const a of arr(m?.agents))
    if (a !== null && typeof a === 'object' && isNet(a.network))
      agents.set(agentKey(a.node, a.network), a);
  return agents;
}

function coverageByNode(snapshot: Snapshot): Map<string, NodeCoverage> | undefined {
  return snapshot.coverage === undefined
    ? undefined
    : new Map(
        arr(snapshot.coverage)
          .filter((c) => c !== null && typeof c === 'object' && typeof c.node === 'string')
          .map((c) => [c.node, c] as const),
      );
}

/** Cells grouped into links; the nodes they name are added to `nodes`. */
function linksOf(cells: readonly Cell[], nodes: Set<string>): Map<string, Link> {
  const links = new Map<string, Link>();
  for (const c of cells) {
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
  return links;
}

/** Cross-node links by unordered node pair, and every link by source agent. */
function indexLinks(links: ReadonlyMap<string, Link>): {
  pairLinks: Map<string, Link[]>;
  outLinks: Map<string, Link[]>;
} {
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
  return { pairLinks, outLinks };
}

function zonesOf(z: unknown, nodes: Iterable<string>): Map<string, string> {
  const zones = new Map<string, string>();
  for (const n of nodes) {
    const v = (z as Record<string, unknown>)[n];
    if (typeof v === 'string' && v !== '') zones.set(n, v);
  }
  return zones;
}

// No data is not failure: a target with no agent there (coverage says so, or, with nobody to
// tell, the controller's connection to it is refused) is unknown, not unreachable.
function absentAgents(
  nodes: Iterable<string>,
  agents: ReadonlyMap<string, AgentStatus>,
  coverage: ReadonlyMap<string, NodeCoverage> | undefined,
): Set<string> {
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
  return absent;
}
