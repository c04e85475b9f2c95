// The DNS rules' shared view: the trusted lookups split into cluster names and external names,
// each server's state over the sources (how many judge it, which fail it), and how a group of
// lookups is put into words. The rules read and hand on findings through DnsState.

import { outcomeCounts, type Ranked } from '../drafts.ts';
import { cmp } from '../model.ts';
import type { TriageOptions } from '../options.ts';
import type { Judged } from './lookups.ts';

export interface DnsState {
  readonly trusted: readonly Judged[];
  /** Lookups of names inside the cluster (every query but `external`). */
  readonly cluster: readonly Judged[];
  readonly external: readonly Judged[];
  /** Sources a dns-all finding of their own took: the server rules judge without them. */
  readonly excluded: Set<string>;
  /** Servers a cluster-name rule accounted for: the external-name rules leave them alone. */
  readonly reported: Set<string>;
  /** The finding the first failing replica went to: VIP lookups landing on it are its. */
  firstReplicaId: string | undefined;
  /** The first replica failing external names only: VIP lookups of them landing on it are its. */
  firstExternalReplica: string | undefined;
}

export function dnsState(trusted: readonly Judged[]): DnsState {
  return {
    trusted,
    cluster: trusted.filter((j) => j.c.query !== 'external'),
    external: trusted.filter((j) => j.c.query === 'external'),
    excluded: new Set(),
    reported: new Set(),
    firstReplicaId: undefined,
    firstExternalReplica: undefined,
  };
}

export const label = (server: string): string =>
  server === 'service' ? 'the Service VIP' : `replica ${server}`;

export function evidence(j: Judged): Ranked {
  const sent = j.c.sent;
  const parts = outcomeCounts(j.c.outcomes).slice(0, 3);
  const outcomes = parts.length > 0 ? ` (${parts.join(', ')})` : '';
  return {
    text: `${j.source} → ${label(j.server)}: ${j.c.query} ${j.c.name} over ${j.c.transport}: ${Math.round(j.ratio * sent)} of ${sent} answered${outcomes}`,
    sourceNode: j.c.sourceNode,
    server: j.server,
    value: j.ratio,
    rank: 1 - j.ratio,
  };
}

/** Pooled answered ratio of some judged cells. */
function pooled(js: readonly Judged[]): number {
  const sent = js.reduce((s, j) => s + j.c.sent, 0);
  return sent === 0 ? 1 : js.reduce((s, j) => s + j.ratio * j.c.sent, 0) / sent;
}

export function describe(js: readonly Judged[]): string {
  const queries = [...new Set(js.map((j) => j.c.query))].sort(cmp);
  const transports = [...new Set(js.map((j) => j.c.transport))].sort(cmp);
  return `${queries.join(', ')} lookups over ${transports.join(' and ')}`;
}

/** Per source, per server, the lookups (pooled over queries and transports when judged). */
export function bySourceServer(js: readonly Judged[]): Map<string, Map<string, Judged[]>> {
  const m = new Map<string, Map<string, Judged[]>>();
  for (const j of js) {
    const s = m.get(j.source) ?? new Map<string, Judged[]>();
    s.set(j.server, [...(s.get(j.server) ?? []), j]);
    m.set(j.source, s);
  }
  return m;
}

/** Whether one source's lookups to one server fail, pooled. */
export const fails = (opts: TriageOptions, js: readonly Judged[]): boolean =>
  pooled(js) < opts.dnsAnsweredRatio;

export interface ServerState {
  /** Sources that fail it. */
  readonly failing: string[];
  /** Sources that judge it. */
  known: number;
  /** The failing lookups of the sources that fail it. */
  readonly cells: Judged[];
}

/** Each server's state over the sources not excluded. */
export function serverStates(
  opts: TriageOptions,
  st: DnsState,
  js: readonly Judged[],
): Map<string, ServerState> {
  const m = new Map<string, ServerState>();
  for (const [source, servers] of bySourceServer(js.filter((j) => !st.excluded.has(j.source)))) {
    for (const [server, cells] of servers) {
      const e = m.get(server) ?? { failing: [], known: 0, cells: [] };
      e.known++;
      if (fails(opts, cells)) {
        e.failing.push(source);
        e.cells.push(...cells.filter((c) => c.failing));
      }
      m.set(server, e);
    }
  }
  return m;
}

/** A server is down when most sources that judge it fail it. */
export const isDown = (opts: TriageOptions, e: ServerState): boolean =>
  e.known > 0 && e.failing.length / e.known >= opts.sourceShare;

/** The servers down, sorted, leaving out `skip`. */
function downOf(
  opts: TriageOptions,
  states: ReadonlyMap<string, ServerState>,
  skip: ReadonlySet<string>,
): string[] {
  return [...states]
    .filter(([s, e]) => !skip.has(s) && isDown(opts, e))
    .map(([s]) => s)
    .sort(cmp);
}

/** The cluster-name view the server rules share (judged without the excluded sources). */
export interface ClusterView {
  readonly servers: ReadonlyMap<string, ServerState>;
  /** Servers down, sorted. */
  readonly down: readonly string[];
  readonly replicas: readonly string[];
  /** Every server is down and at least one replica was asked: one dns-all finding. */
  readonly everyDown: boolean;
}

export function clusterView(opts: TriageOptions, st: DnsState): ClusterView {
  const servers = serverStates(opts, st, st.cluster);
  const down = downOf(opts, servers, new Set());
  const replicas = [...servers.keys()].filter((s) => s !== 'service');
  const everyDown = servers.size > 0 && down.length === servers.size && replicas.length > 0;
  return { servers, down, replicas, everyDown };
}

/** The external-name view, leaving out the servers a cluster-name rule accounted for. */
export interface ExternalView {
  readonly ext: ReadonlyMap<string, ServerState>;
  /** Servers down for external names and not reported yet, sorted. */
  readonly extDown: readonly string[];
  /** Every server fails external names only: the cluster DNS's upstream. */
  readonly upstream: boolean;
}

export function externalView(opts: TriageOptions, st: DnsState): ExternalView {
  const ext = serverStates(opts, st, st.external);
  const extDown = downOf(opts, ext, st.reported);
  const extKnown = [...ext.keys()].filter((s) => !st.reported.has(s));
  const upstream =
    extDown.length > 0 && extDown.length === extKnown.length && extKnown.length === ext.size;
  return { ext, extDown, upstream };
}
