// This agent's row of the matrix (format in docs/api.md), built from what the stores hold: a
// pure function of its input, so the row is exactly what the windows say at `nowMs` and the
// agent only gathers the pieces.

import { pathOf, scopeOf, type Peer, type ProbeKind, type Self } from '../core/types.ts';
import type { AgentRow, Latency } from '../api/agent-row.ts';
import type { DnsQuerySpec } from '../mesh/families/dns.ts';
import type { ApiServerJob } from '../probes/apiserver-job.ts';
import type { DnsJob } from '../probes/dns-job.ts';
import type { PortJob } from '../probes/port-job.ts';
import type { TimestampInfo } from '../probes/probe.ts';
import type { ApiServerWindow } from '../store/apiserver-window.ts';
import type { DnsWindow } from '../store/dns-window.ts';
import type { PairWindow } from '../store/pair-window.ts';
import type { PortWindow } from '../store/port-window.ts';
import type { RttSummary } from '../store/summary.ts';
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
  /** Ids of the peers visited by the rotation rather than probed as core peers. */
  readonly rotating: { has(id: string): boolean };
  readonly windows: readonly PairWindow[];
  readonly dnsJobs: readonly DnsJob[];
  readonly dnsWindow: (key: string) => DnsWindow | undefined;
  readonly portJobs: readonly PortJob[];
  readonly portWindow: (key: string) => PortWindow | undefined;
  readonly apiServerJobs: readonly ApiServerJob[];
  readonly apiServerWindow: (key: string) => ApiServerWindow | undefined;
  /** The prober's own health over the window (health.ts). */
  readonly selfHealth: AgentRow['self'];
}

export function resultsRow(i: RowInput): AgentRow {
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
      rotating: i.rotating.has(p.id),
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
          run: w.run,
          measuredAt: new Date(w.lastResultMs).toISOString(),
        })),
    })),
    dns: dnsRows(i.dnsJobs, i.dns.queries, i.dnsWindow),
    ports: portRows(i.portJobs, i.portWindow),
    apiserver: apiServerRows(i.apiServerJobs, i.apiServerWindow),
    self: i.selfHealth,
  };
}

/** The row's short latency summary (p50, p99, max) of a window's full one. */
function latency(s: RttSummary | null | undefined): Latency | null {
  return s == null ? null : { p50: s.p50, p99: s.p99, max: s.max };
}

function portRows(
  jobs: readonly PortJob[],
  window: (key: string) => PortWindow | undefined,
): AgentRow['ports'] {
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
      connectSeconds: latency(w?.connect),
      run: w?.run ?? null,
    };
  });
}

function apiServerRows(
  jobs: readonly ApiServerJob[],
  window: (key: string) => ApiServerWindow | undefined,
): AgentRow['apiserver'] {
  return jobs.map((j) => {
    const w = window(j.key);
    return {
      target: j.key,
      kind: j.kind,
      address: j.address,
      port: j.port,
      sent: w?.sent ?? 0,
      failed: w?.failed ?? 0,
      okRatio: w?.okRatio ?? null,
      outcomes: w?.outcomes ?? {},
      lastOutcome: w?.lastOutcome ?? null,
      lastDetail: w?.lastDetail ?? null,
      readyz: w?.readyz ?? null,
      connectSeconds: latency(w?.connect),
      tlsSeconds: latency(w?.tls),
      run: w?.run ?? null,
    };
  });
}

function dnsRows(
  jobs: readonly DnsJob[],
  queries: readonly DnsQuerySpec[],
  window: (key: string) => DnsWindow | undefined,
): AgentRow['dns'] {
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
      latencySeconds: latency(w?.latency),
      answeredBy: w?.answeredBy ?? null,
      lastTried: w?.lastTried ?? 0,
      lastSuccess: w?.lastSuccessMs == null ? null : new Date(w.lastSuccessMs).toISOString(),
      run: w?.run ?? null,
    };
  });
}
