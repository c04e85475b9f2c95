// This agent's row of the matrix (format in docs/api.md), built from what the stores hold: a
// pure function of its input, so the row is exactly what the windows say at `nowMs` and the
// agent only gathers the pieces.

import { pathOf, scopeOf, type Peer, type ProbeKind, type Self } from '../core/types.ts';
import type { DnsQuerySpec } from '../mesh/families/dns.ts';
import type { DnsOutcome } from '../probes/dns.ts';
import type { DnsJob } from '../probes/dns-job.ts';
import type { PortJob } from '../probes/port-job.ts';
import type { TimestampInfo } from '../probes/probe.ts';
import type { DnsWindow } from '../store/dns-window.ts';
import type { PairWindow } from '../store/pair-window.ts';
import type { PortWindow } from '../store/port-window.ts';
import type { DnsSetup } from './dns-setup.ts';
import type { IcmpState } from './engines.ts';

/** Everything the row is made of, gathered by the agent at the time of the request. */
export interface RowInput {
  readonly self: Self;
  readonly nowMs: number;
  readonly windowSeconds: number;
  readonly intervalMs: number;
  readonly udp: boolean;
  readonly tcp: boolean;
  readonly icmp: IcmpState;
  /** The MTU probes' packet size, or null when mtu probes are off. */
  readonly mtuBytes: number | null;
  readonly timestamps: Partial<Record<ProbeKind, TimestampInfo>>;
  readonly dns: DnsSetup;
  readonly peers: readonly Peer[];
  readonly windows: readonly PairWindow[];
  readonly dnsJobs: readonly DnsJob[];
  readonly dnsWindow: (key: string) => DnsWindow | undefined;
  readonly portJobs: readonly PortJob[];
  readonly portWindow: (key: string) => PortWindow | undefined;
  /** The prober's own health over the window (health.ts). */
  readonly selfHealth: AgentResults['self'];
}

export function resultsRow(i: RowInput): AgentResults {
  return {
    apiVersion: 'podmesh.io/v1',
    kind: 'AgentResults',
    source: {
      node: i.self.node,
      network: i.self.network,
      zone: i.self.zone,
      address: i.self.address,
    },
    generatedAt: new Date(i.nowMs).toISOString(),
    windowSeconds: i.windowSeconds,
    intervalMs: i.intervalMs,
    probes: {
      udp: { enabled: i.udp, reason: i.udp ? 'ok' : 'disabled' },
      tcp: { enabled: i.tcp, reason: i.tcp ? 'ok' : 'disabled' },
      icmp: {
        enabled: i.icmp.enabled,
        reason: i.icmp.reason,
        detail: i.icmp.detail,
        thread: i.icmp.thread,
      },
      mtuBytes: i.mtuBytes,
      timestamps: i.timestamps,
      dns: {
        enabled: i.dns.state.enabled,
        reason: i.dns.state.reason,
        detail: i.dns.state.detail,
        nameserver: i.dns.service?.address ?? null,
        search: i.dns.resolver?.search ?? [],
        ndots: i.dns.resolver?.ndots ?? null,
      },
    },
    peers: i.peers.map((p) => ({
      node: p.node,
      network: p.network,
      zone: p.zone,
      address: p.address,
      path: pathOf(i.self.network, p.network),
      scope: scopeOf(i.self, p),
      results: i.windows
        .filter((w) => w.peerId === p.id)
        .map((w) => ({
          protocol: w.kind,
          size: w.size,
          sent: w.sent,
          lost: w.lost,
          lossRatio: w.lossRatio,
          forwardLost: w.forwardLost,
          reverseLost: w.reverseLost,
          duplicates: w.duplicates,
          reordered: w.reordered,
          rttSeconds: w.rtt,
          lastSuccess: w.lastSuccessMs === null ? null : new Date(w.lastSuccessMs).toISOString(),
          lastFailure: w.lastFailure,
        })),
    })),
    dns: dnsRows(i.dnsJobs, i.dns.queries, i.dnsWindow),
    ports: portRows(i.portJobs, i.portWindow),
    self: i.selfHealth,
  };
}

function portRows(
  jobs: readonly PortJob[],
  window: (key: string) => PortWindow | undefined,
): AgentResults['ports'] {
  return jobs.map((j) => {
    const w = window(j.key);
    return {
      target: j.key,
      address: j.address,
      port: j.port,
      expected: j.expected,
      sent: w?.sent ?? 0,
      open: w?.open ?? 0,
      openRatio: w?.openRatio ?? null,
      outcomes: w?.outcomes ?? {},
      lastOutcome: w?.lastOutcome ?? null,
      lastDetail: w?.lastDetail ?? null,
      connectSeconds:
        w?.connect == null ? null : { p50: w.connect.p50, p99: w.connect.p99, max: w.connect.max },
    };
  });
}

function dnsRows(
  jobs: readonly DnsJob[],
  queries: readonly DnsQuerySpec[],
  window: (key: string) => DnsWindow | undefined,
): AgentResults['dns'] {
  const names = new Map(queries.map((q) => [q.kind, q.name]));
  return jobs.map((j) => {
    const w = window(j.key);
    return {
      serverKind: j.serverKind,
      server: j.server,
      address: j.address,
      port: j.port,
      query: j.query,
      name: names.get(j.query) ?? '',
      candidates: [...j.candidates],
      transport: j.transport,
      sent: w?.sent ?? 0,
      failed: w?.failed ?? 0,
      answeredRatio: w?.answeredRatio ?? null,
      outcomes: w?.outcomes ?? {},
      lastOutcome: w?.lastOutcome ?? null,
      lastDetail: w?.lastDetail ?? null,
      latencySeconds:
        w?.latency == null ? null : { p50: w.latency.p50, p99: w.latency.p99, max: w.latency.max },
      answeredBy: w?.answeredBy ?? null,
      lastTried: w?.lastTried ?? 0,
      lastSuccess: w?.lastSuccessMs == null ? null : new Date(w.lastSuccessMs).toISOString(),
    };
  });
}

/** What runs and how: the `probes` section of the results row (docs/api.md). */
export interface AgentProbesInfo {
  udp: { enabled: boolean; reason: string };
  tcp: { enabled: boolean; reason: string };
  icmp: { enabled: boolean; reason: string; detail: string; thread: 'engine' | 'main' | null };
  mtuBytes: number | null;
  timestamps: Partial<Record<ProbeKind, TimestampInfo>>;
  dns: {
    enabled: boolean;
    reason: string;
    detail: string;
    nameserver: string | null;
    search: readonly string[];
    ndots: number | null;
  };
}

export interface AgentResults {
  apiVersion: 'podmesh.io/v1';
  kind: 'AgentResults';
  source: { node: string; network: string; zone: string; address: string };
  generatedAt: string;
  windowSeconds: number;
  intervalMs: number;
  probes: AgentProbesInfo;
  peers: {
    node: string;
    network: string;
    zone: string;
    address: string;
    path: string;
    scope: string;
    results: {
      protocol: string;
      size: string;
      sent: number;
      lost: number;
      lossRatio: number | null;
      forwardLost: number;
      reverseLost: number;
      duplicates: number;
      reordered: number;
      rttSeconds: {
        min: number;
        p50: number;
        p90: number;
        p99: number;
        max: number;
        mean: number;
      } | null;
      lastSuccess: string | null;
      lastFailure: string | null;
    }[];
  }[];
  /** One entry per (server, query, transport) DNS check; see docs/api.md. */
  dns: {
    serverKind: string;
    server: string;
    address: string;
    port: number;
    query: string;
    name: string;
    candidates: string[];
    transport: string;
    sent: number;
    failed: number;
    answeredRatio: number | null;
    outcomes: Partial<Record<DnsOutcome, number>>;
    lastOutcome: DnsOutcome | null;
    lastDetail: string | null;
    latencySeconds: { p50: number; p99: number; max: number } | null;
    answeredBy: string | null;
    lastTried: number;
    lastSuccess: string | null;
  }[];
  /** One entry per configured port target; see docs/api.md. */
  ports: {
    target: string;
    address: string;
    port: number;
    expected: 'open' | 'closed';
    sent: number;
    open: number;
    openRatio: number | null;
    outcomes: Partial<Record<string, number>>;
    lastOutcome: string | null;
    lastDetail: string | null;
    connectSeconds: { p50: number; p99: number; max: number } | null;
  }[];
  /** The prober's own health over the window. */
  self: {
    lateRatio: number | null;
    latenessP99Seconds: number | null;
    eventLoopP99Seconds: { main: number | null; engine: number | null };
  };
}
