// Reading what the lab's agents measured: cumulative probe counters from /metrics (differences
// of two reads are free of the results API's sliding window), the /api/v1/results rows, a
// small matrix table for people, and the binomial interval the loss estimates are judged by.

import type { AgentRow } from '../../src/api/agent-row.ts';
import { parseMetrics } from '../support/agents.ts';
import type { Lab, LabAgent } from './lab.ts';

export interface Counts {
  sent: number;
  lost: number;
  forwardLost: number;
  reverseLost: number;
  failures: Record<string, number>;
}

/** One series: what agent `src` measured towards agent `dst` with one probe kind and size. */
export interface Series {
  readonly src: string;
  readonly dst: string;
  readonly protocol: string;
  readonly size: string;
}

/** Cumulative counters by series key (see key()). */
export type Snapshot = Map<string, Counts>;

export const key = (s: Series): string => `${s.src}>${s.dst} ${s.protocol}/${s.size}`;

export function parseKey(k: string): Series {
  const m = /^(.+)>(.+) (\w+)\/(\w+)$/.exec(k);
  if (m === null) throw new Error(`bad series key ${k}`);
  return { src: m[1]!, dst: m[2]!, protocol: m[3]!, size: m[4]! };
}

const empty = (): Counts => ({ sent: 0, lost: 0, forwardLost: 0, reverseLost: 0, failures: {} });

const COUNTERS = [
  'podmesh_probes_sent_total{',
  'podmesh_probes_lost_total{',
  'podmesh_stamp_lost_total{',
  'podmesh_probe_failures_total{',
];

/** Turns one agent's /metrics text into its series' counters. */
export function countsFromMetrics(srcId: string, text: string): Snapshot {
  const out: Snapshot = new Map();
  // Only the counters are parsed: the rest of /metrics is most of its size.
  const wanted = text
    .split('\n')
    .filter((l) => COUNTERS.some((c) => l.startsWith(c)))
    .join('\n');
  for (const s of parseMetrics(wanted)) {
    const l = s.labels;
    if (l['target_node'] === undefined || l['path'] === undefined) continue;
    const dstNetwork = l['path'].split('-to-')[1];
    const k = key({
      src: srcId,
      dst: `${l['target_node']}/${dstNetwork}`,
      protocol: l['protocol'] ?? '',
      size: l['size'] ?? '',
    });
    const c = out.get(k) ?? empty();
    switch (s.name) {
      case 'podmesh_probes_sent_total':
        c.sent = s.value;
        break;
      case 'podmesh_probes_lost_total':
        c.lost = s.value;
        break;
      case 'podmesh_stamp_lost_total':
        if (l['direction'] === 'forward') c.forwardLost = s.value;
        else if (l['direction'] === 'reverse') c.reverseLost = s.value;
        break;
      case 'podmesh_probe_failures_total':
        c.failures[l['reason'] ?? '?'] = s.value;
        break;
      default:
        continue;
    }
    out.set(k, c);
  }
  return out;
}

/**
 * Reads the counters of the given agents (all by default) at once. `viaNetns` lists agents to
 * read from inside their namespace (for those cut off from the test process).
 */
export async function snapshot(
  lab: Lab,
  agents: readonly LabAgent[] = lab.agents,
  viaNetns: ReadonlySet<string> = new Set(),
): Promise<Snapshot> {
  const parts = await Promise.all(
    agents.map(async (a) =>
      countsFromMetrics(a.id, await lab.get(a, '/metrics', viaNetns.has(a.id) ? 'netns' : 'http')),
    ),
  );
  return new Map(parts.flatMap((p) => [...p]));
}

/** after − before, for every series in `after` (a series missing before counts from zero). */
export function diff(after: Snapshot, before: Snapshot): Snapshot {
  const out: Snapshot = new Map();
  for (const [k, a] of after) {
    const b = before.get(k) ?? empty();
    const failures: Record<string, number> = {};
    for (const [r, v] of Object.entries(a.failures)) failures[r] = v - (b.failures[r] ?? 0);
    out.set(k, {
      sent: a.sent - b.sent,
      lost: a.lost - b.lost,
      forwardLost: a.forwardLost - b.forwardLost,
      reverseLost: a.reverseLost - b.reverseLost,
      failures,
    });
  }
  return out;
}

/** Sums the counts of the series that `pick` selects. */
export function total(s: Snapshot, pick: (x: Series) => boolean = () => true): Counts {
  const t = empty();
  for (const [k, c] of s) {
    if (!pick(parseKey(k))) continue;
    t.sent += c.sent;
    t.lost += c.lost;
    t.forwardLost += c.forwardLost;
    t.reverseLost += c.reverseLost;
    for (const [r, v] of Object.entries(c.failures)) t.failures[r] = (t.failures[r] ?? 0) + v;
  }
  return t;
}

/** Node of an agent id ("node-2/pod" → "node-2"). */
export const nodeOf = (agentId: string): string => agentId.split('/')[0]!;
export const networkOf = (agentId: string): string => agentId.split('/')[1]!;

// ---------------------------------------------------------------------------------------------
// Binomial interval

function logBinomPmf(n: number, k: number, p: number, lnFact: Float64Array): number {
  return lnFact[n]! - lnFact[k]! - lnFact[n - k]! + k * Math.log(p) + (n - k) * Math.log1p(-p);
}

/**
 * The central `level` interval of Binomial(n, p): the losses a correct estimator of loss
 * probability p shows in n probes with probability ≥ level. [lo, hi] are counts.
 */
export function binomialInterval(n: number, p: number, level = 0.95): [number, number] {
  const lnFact = new Float64Array(n + 1);
  for (let i = 1; i <= n; i++) lnFact[i] = lnFact[i - 1]! + Math.log(i);
  const tail = (1 - level) / 2;
  let cdf = 0;
  let lo = -1;
  let hi = n;
  for (let k = 0; k <= n; k++) {
    cdf += Math.exp(logBinomPmf(n, k, p, lnFact));
    if (lo < 0 && cdf >= tail) lo = k;
    if (cdf >= 1 - tail) {
      hi = k;
      break;
    }
  }
  return [Math.max(lo, 0), hi];
}

// ---------------------------------------------------------------------------------------------
// Results API and the matrix table

export async function results(lab: Lab, a: LabAgent): Promise<AgentRow> {
  return JSON.parse(await lab.get(a, '/api/v1/results')) as AgentRow;
}

type Cell = AgentRow['peers'][number]['results'][number];

export function cellOf(
  row: AgentRow,
  dstId: string,
  protocol: string,
  size = 'small',
): Cell | undefined {
  return row.peers
    .find((p) => `${p.node}/${p.network}` === dstId)
    ?.results.find((r) => r.protocol === protocol && r.size === size);
}

const pct = (c: Cell | undefined): string =>
  c?.lossRatio === null || c === undefined ? '-' : `${(c.lossRatio * 100).toFixed(0)}%`;

/**
 * The matrix as text: one row per source agent, one column per target agent; each cell shows
 * loss over the window as udp/icmp/tcp small, then mtu-sized udp/icmp after a '|'.
 */
export async function statusTable(lab: Lab): Promise<string> {
  const rows = await Promise.all(
    lab.agents.map(async (a) => {
      try {
        return await results(lab, a);
      } catch {
        return undefined;
      }
    }),
  );
  const ids = lab.agents.map((a) => a.id);
  const width = 34;
  const lines = [
    `loss over the last ${rows.find((r) => r !== undefined)?.windowSeconds ?? '?'} s, each cell: udp icmp tcp | udp-mtu icmp-mtu`,
    ['from \\ to'.padEnd(14), ...ids.map((i) => i.padEnd(width))].join(''),
  ];
  lab.agents.forEach((a, i) => {
    const row = rows[i];
    const cells = ids.map((dst) => {
      if (dst === a.id) return '·'.padEnd(width);
      if (row === undefined) return 'unreachable'.padEnd(width);
      const c = (p: string, s = 'small'): string => pct(cellOf(row, dst, p, s));
      const tcp = cellOf(row, dst, 'tcp');
      const tcpText =
        tcp?.lastFailure !== null && tcp !== undefined && (tcp.lossRatio ?? 0) > 0
          ? `${c('tcp')}(${tcp.lastFailure})`
          : c('tcp');
      return `${c('udp')} ${c('icmp')} ${tcpText} | ${c('udp', 'mtu')} ${c('icmp', 'mtu')}`.padEnd(
        width,
      );
    });
    lines.push([a.id.padEnd(14), ...cells].join(''));
  });
  return lines.join('\n');
}

/** The q-quantile of values (nearest rank). */
export function quantile(values: readonly number[], q: number): number {
  const s = [...values].sort((x, y) => x - y);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

// ---------------------------------------------------------------------------------------------
// DNS checks: cumulative podmesh_dns_requests_total by check and result

/** One DNS check: what agent `src` asks server `server` (service, or a replica's node). */
export interface DnsCheck {
  readonly src: string;
  readonly serverKind: string;
  readonly server: string;
  readonly query: string;
  readonly transport: string;
}

/** Lookups by result, per check key (see dnsKey()). */
export type DnsSnapshot = Map<string, Record<string, number>>;

/** Results that mean the server answered (a name that doesn't exist is an answer). */
export const DNS_ANSWERED: readonly string[] = ['noerror', 'nodata', 'nxdomain'];

export const dnsKey = (c: DnsCheck): string =>
  `${c.src} ${c.serverKind}:${c.server} ${c.query}/${c.transport}`;

export function parseDnsKey(k: string): DnsCheck {
  const m = /^(\S+) (\w+):(\S+) (\w+)\/(\w+)$/.exec(k);
  if (m === null) throw new Error(`bad DNS check key ${k}`);
  return { src: m[1]!, serverKind: m[2]!, server: m[3]!, query: m[4]!, transport: m[5]! };
}

export function dnsCountsFromMetrics(srcId: string, text: string): DnsSnapshot {
  const out: DnsSnapshot = new Map();
  const wanted = text
    .split('\n')
    .filter((l) => l.startsWith('podmesh_dns_requests_total{'))
    .join('\n');
  for (const s of parseMetrics(wanted)) {
    const l = s.labels;
    const k = dnsKey({
      src: srcId,
      serverKind: l['server_kind'] ?? '',
      server: l['server'] ?? '',
      query: l['query'] ?? '',
      transport: l['transport'] ?? '',
    });
    const c = out.get(k) ?? {};
    c[l['result'] ?? '?'] = s.value;
    out.set(k, c);
  }
  return out;
}

export async function dnsSnapshot(
  lab: Lab,
  agents: readonly LabAgent[] = lab.agents,
): Promise<DnsSnapshot> {
  const parts = await Promise.all(
    agents.map(async (a) => dnsCountsFromMetrics(a.id, await lab.get(a, '/metrics'))),
  );
  return new Map(parts.flatMap((p) => [...p]));
}

export function dnsDiff(after: DnsSnapshot, before: DnsSnapshot): DnsSnapshot {
  const out: DnsSnapshot = new Map();
  for (const [k, a] of after) {
    const b = before.get(k) ?? {};
    const d: Record<string, number> = {};
    for (const [r, v] of Object.entries(a)) if (v - (b[r] ?? 0) > 0) d[r] = v - (b[r] ?? 0);
    out.set(k, d);
  }
  return out;
}

export interface DnsTotals {
  sent: number;
  answered: number;
  results: Record<string, number>;
}

/** Sums the lookups of the checks `pick` selects. */
export function dnsTotal(s: DnsSnapshot, pick: (c: DnsCheck) => boolean = () => true): DnsTotals {
  const t: DnsTotals = { sent: 0, answered: 0, results: {} };
  for (const [k, c] of s) {
    if (!pick(parseDnsKey(k))) continue;
    for (const [r, v] of Object.entries(c)) {
      t.sent += v;
      if (DNS_ANSWERED.includes(r)) t.answered += v;
      t.results[r] = (t.results[r] ?? 0) + v;
    }
  }
  return t;
}

/** Every agent's DNS checks from its results API: answered ratio over the window, last outcome. */
export async function dnsTable(lab: Lab): Promise<string> {
  const lines = [
    `DNS checks over the results window: server query/transport answered (last outcome)`,
  ];
  for (const a of lab.agents) {
    let row: AgentRow;
    try {
      row = await results(lab, a);
    } catch {
      lines.push(`${a.id}: unreachable`);
      continue;
    }
    lines.push(`${a.id}:`);
    const cells = row.dns.map((d) => {
      const r = d.answeredRatio === null ? '-' : `${(d.answeredRatio * 100).toFixed(0)}%`;
      return `${d.server} ${d.query}/${d.transport} ${r} (${d.lastOutcome ?? '-'})`;
    });
    for (let i = 0; i < cells.length; i += 3)
      lines.push(
        `  ${cells
          .slice(i, i + 3)
          .map((c) => c.padEnd(40))
          .join('')}`,
      );
  }
  return lines.join('\n');
}
