// Turns what one agent measured into its Prometheus metrics: counters and histograms on every
// result, windowed gauges from the WindowStore at scrape time, agent self-health on demand.
// Owns the agent's one explicit Registry; removes every series of a peer that departs.

import { Registry, type Counter, type Histogram } from 'prom-client';
import {
  FAILURE_REASONS,
  PROBE_KINDS,
  SIZE_CLASSES,
  pathOf,
  scopeOf,
  type Peer,
  type ProbeKind,
  type ProbeResult,
  type Self,
} from '../core/types.ts';
import { pairKey } from '../core/pair-key.ts';
import type { PeerDiff } from '../core/peer-diff.ts';
import type { EngineHealth } from '../core/engine-health.ts';
import { DNS_OUTCOMES } from '../probes/dns.ts';
import { serverResponded, type DnsJob, type DnsJobResult } from '../probes/dns-job.ts';
import { PORT_OUTCOMES, type PortJob, type PortJobResult } from '../probes/port-job.ts';
import type { TimestampInfo } from '../probes/probe.ts';
import type { DnsWindowStore } from '../store/dns-window.ts';
import type { LateWindow } from '../store/late-window.ts';
import type { PairWindowStore } from '../store/pair-window.ts';
import type { PortWindowStore } from '../store/port-window.ts';
import { createMetrics, type Metrics } from './catalogue.ts';

type PairLabels = {
  source_node: string;
  target_node: string;
  path: string;
  protocol: string;
  size: string;
};

interface Cached {
  readonly labels: PairLabels;
  readonly sent: ReturnType<Counter<keyof PairLabels>['labels']>;
  readonly lost: ReturnType<Counter<keyof PairLabels>['labels']>;
  readonly rtt: ReturnType<
    Histogram<'source_node' | 'path' | 'protocol' | 'size' | 'scope'>['labels']
  >;
  readonly lateness: ReturnType<Histogram<'source_node' | 'network' | 'protocol'>['labels']>;
}

type DnsLabels = {
  source_node: string;
  network: string;
  server_kind: string;
  server: string;
  query: string;
  transport: string;
};

type PortLabels = { source_node: string; network: string; target: string; expected: string };

const QUANTILES = [
  ['0.5', 'p50'],
  ['0.9', 'p90'],
  ['0.99', 'p99'],
] as const;

export class AgentMetrics {
  readonly registry = new Registry();
  readonly m: Metrics;
  private readonly peers = new Map<string, Peer>();
  private readonly cache = new Map<string, Cached>();
  private readonly last = new Map<string, number>();
  private readonly selfLabels: { source_node: string; network: string };
  private readonly dnsLabels = new Map<string, DnsLabels>();
  private readonly portLabels = new Map<string, PortLabels>();

  constructor(
    private readonly self: Self,
    private readonly store: PairWindowStore,
    version: string,
    private readonly dnsStore?: DnsWindowStore,
    private readonly extra: { ports?: PortWindowStore; late?: LateWindow } = {},
  ) {
    this.m = createMetrics(this.registry);
    this.selfLabels = { source_node: self.node, network: self.network };
    this.m.buildInfo.set({ version, node_version: process.version }, 1);
    this.m.peers.set(this.selfLabels, 0);
  }

  /** The peers currently probed, as a change (diffPeers); departed ones lose every series. */
  setPeers(diff: PeerDiff<Peer>): void {
    for (const p of diff.departed) this.removePeer(p);
    for (const p of diff.kept) this.peers.set(p.id, p);
    for (const p of diff.arrived) this.peers.set(p.id, p);
    this.m.peers.set(this.selfLabels, diff.kept.length + diff.arrived.length);
  }

  record(r: ProbeResult, latenessMs: number): void {
    const peer = this.peers.get(r.peerId);
    if (peer === undefined) return; // a late result for a departed peer: its series are gone
    const key = pairKey(r.peerId, r.kind, r.size);
    let c = this.cache.get(key);
    if (c === undefined) {
      const labels: PairLabels = {
        source_node: this.self.node,
        target_node: peer.node,
        path: pathOf(this.self.network, peer.network),
        protocol: r.kind,
        size: r.size,
      };
      c = {
        labels,
        sent: this.m.probesSent.labels(labels),
        lost: this.m.probesLost.labels(labels),
        rtt: this.m.rtt.labels({
          source_node: labels.source_node,
          path: labels.path,
          protocol: r.kind,
          size: r.size,
          scope: scopeOf(this.self, peer),
        }),
        lateness: this.m.lateness.labels({ ...this.selfLabels, protocol: r.kind }),
      };
      this.cache.set(key, c);
    }
    c.sent.inc();
    if (r.ok) c.rtt.observe(r.rttSeconds);
    else {
      c.lost.inc();
      this.m.probeFailures.inc({ ...c.labels, reason: r.reason });
    }
    const st = r.stamp;
    if (st !== undefined) {
      if (st.forwardLost > 0)
        this.m.stampLost.inc({ ...c.labels, direction: 'forward' }, st.forwardLost);
      if (st.reverseLost > 0)
        this.m.stampLost.inc({ ...c.labels, direction: 'reverse' }, st.reverseLost);
      if (st.duplicates > 0) this.m.stampDuplicates.inc(c.labels, st.duplicates);
      if (st.reordered > 0) this.m.stampReordered.inc(c.labels, st.reordered);
    }
    c.lateness.observe(latenessMs / 1000);
  }

  /** The DNS lookups currently run; series of the ones gone (a departed replica) are removed. */
  setDnsJobs(jobs: readonly DnsJob[]): void {
    const next = new Map(jobs.map((j) => [j.key, j]));
    for (const [key, labels] of this.dnsLabels) {
      if (next.has(key)) continue;
      this.dnsLabels.delete(key);
      for (const result of DNS_OUTCOMES) this.m.dnsRequests.remove({ ...labels, result });
      this.m.dnsAnsweredRatio.remove(labels);
      this.m.dnsWindowRequests.remove(labels);
    }
    for (const [key, j] of next) {
      if (this.dnsLabels.has(key)) continue;
      this.dnsLabels.set(key, {
        ...this.selfLabels,
        server_kind: j.serverKind,
        server: j.server,
        query: j.query,
        transport: j.transport,
      });
    }
  }

  recordDns(r: DnsJobResult): void {
    const labels = this.dnsLabels.get(r.key);
    if (labels === undefined) return; // a late lookup of a job that is gone
    this.m.dnsRequests.inc({ ...labels, result: r.outcome });
    if (serverResponded(r.outcome))
      this.m.dnsDuration.observe(
        { ...this.selfLabels, server_kind: labels.server_kind, transport: labels.transport },
        r.seconds,
      );
  }

  /** The port targets currently checked; series of removed targets go. */
  setPortJobs(jobs: readonly PortJob[]): void {
    const next = new Map(jobs.map((j) => [j.key, j]));
    for (const [key, labels] of this.portLabels) {
      const j = next.get(key);
      if (j !== undefined && j.expected === labels.expected) continue;
      this.portLabels.delete(key);
      for (const result of PORT_OUTCOMES) this.m.portChecks.remove({ ...labels, result });
      this.m.portOpenRatio.remove(labels);
      this.m.portWindowChecks.remove(labels);
      this.m.portConnectDuration.remove({ ...this.selfLabels, target: key });
    }
    for (const [key, j] of next) {
      if (this.portLabels.has(key)) continue;
      this.portLabels.set(key, { ...this.selfLabels, target: key, expected: j.expected });
    }
  }

  recordPort(r: PortJobResult): void {
    const labels = this.portLabels.get(r.key);
    if (labels === undefined) return; // a late connect to a target that is gone
    this.m.portChecks.inc({ ...labels, result: r.outcome });
    if (r.outcome === 'open')
      this.m.portConnectDuration.observe({ ...this.selfLabels, target: r.key }, r.seconds);
  }

  setIcmp(enabled: boolean, reason: 'ok' | 'permission' | 'disabled' | 'error'): void {
    this.m.icmpEnabled.reset();
    this.m.icmpEnabled.set({ ...this.selfLabels, reason }, enabled ? 1 : 0);
  }

  setTimestampSources(sources: Partial<Record<ProbeKind, TimestampInfo>>): void {
    this.m.timestampSource.reset();
    for (const [protocol, t] of Object.entries(sources))
      this.m.timestampSource.set({ ...this.selfLabels, protocol, source: t.source }, 1);
  }

  setMainLoopDelay(q: { p50: number; p90: number; p99: number }): void {
    for (const [label, k] of QUANTILES)
      this.m.eventLoopDelay.set({ ...this.selfLabels, thread: 'main', quantile: label }, q[k]);
  }

  /**
   * Applies cumulative counts from one probe engine as counter increments. `engine` keeps the
   * running totals of the worker and main-thread engines apart; only a worker engine's loop
   * delay is reported as the engine thread's.
   */
  setEngineHealth(h: EngineHealth, engine: string, isWorker: boolean): void {
    const bump = (name: string, total: number, child: () => { inc(n: number): void }): void =>
      this.bump(`${engine}/${name}`, total, child);
    const r = h.reflector;
    if (r !== undefined) {
      bump('reflected', r.reflected, () =>
        this.m.reflectorPackets.labels({ ...this.selfLabels, result: 'reflected' }),
      );
      bump('malformed', r.malformed, () =>
        this.m.reflectorPackets.labels({ ...this.selfLabels, result: 'malformed' }),
      );
      bump('auth_failed', r.authFailed, () =>
        this.m.reflectorPackets.labels({ ...this.selfLabels, result: 'auth_failed' }),
      );
      bump('loop', r.loop, () =>
        this.m.reflectorPackets.labels({ ...this.selfLabels, result: 'loop' }),
      );
      bump('rate_limited', r.rateLimited, () =>
        this.m.reflectorPackets.labels({ ...this.selfLabels, result: 'rate_limited' }),
      );
      this.m.reflectorSessions.set(this.selfLabels, r.sessions);
    }
    if (h.tcpAccepted !== undefined)
      bump('tcp', h.tcpAccepted, () => this.m.tcpAccepted.labels(this.selfLabels));
    if (h.restarts !== undefined)
      bump('restarts', h.restarts, () => this.m.engineRestarts.labels(this.selfLabels));
    if (h.skipped !== undefined)
      bump('skipped', h.skipped, () => this.m.schedulerSkipped.labels(this.selfLabels));
    if (h.dns !== undefined) {
      bump('dns_malformed', h.dns.malformed, () =>
        this.m.dnsDiscarded.labels({ ...this.selfLabels, reason: 'malformed' }),
      );
      bump('dns_mismatched', h.dns.mismatched, () =>
        this.m.dnsDiscarded.labels({ ...this.selfLabels, reason: 'mismatched' }),
      );
    }
    if (isWorker && h.loopDelay !== undefined) {
      for (const [label, k] of QUANTILES)
        this.m.eventLoopDelay.set(
          { ...this.selfLabels, thread: 'engine', quantile: label },
          h.loopDelay[k],
        );
    }
  }

  /** Discovery health: last sync time and restarts per watched resource. */
  setDiscovery(
    stats: readonly {
      resource: string;
      lastSyncMs: number | undefined;
      errorRestarts: number;
      watchdogRestarts: number;
    }[],
  ): void {
    for (const st of stats) {
      const labels = { ...this.selfLabels, resource: st.resource };
      if (st.lastSyncMs !== undefined) this.m.discoveryLastSync.set(labels, st.lastSyncMs / 1000);
      this.bump(`discovery/${st.resource}/error`, st.errorRestarts, () =>
        this.m.discoveryRestarts.labels({ ...labels, reason: 'error' }),
      );
      this.bump(`discovery/${st.resource}/watchdog`, st.watchdogRestarts, () =>
        this.m.discoveryRestarts.labels({ ...labels, reason: 'watchdog' }),
      );
    }
  }

  /** Renders /metrics, refreshing the windowed gauges first. */
  async render(): Promise<string> {
    this.refreshWindows();
    const text = await this.registry.metrics();
    // The per-pair window gauges live only while a scrape renders them: between scrapes the
    // window store holds their data, and keeping ~6 series per pair and probe kind in
    // prom-client (an object, a labels object and a hash string each; 6,000 at 200 peers) cost
    // 2-3 MB of heap for nothing (docs/benchmarks.md).
    const { pairLossRatio, pairWindowProbes, pairRtt, pairLastSuccess } = this.m;
    for (const g of [pairLossRatio, pairWindowProbes, pairRtt, pairLastSuccess]) g.reset();
    return text;
  }

  private refreshWindows(): void {
    const { pairLossRatio, pairWindowProbes, pairRtt, pairLastSuccess } = this.m;
    pairLossRatio.reset();
    pairWindowProbes.reset();
    pairRtt.reset();
    pairLastSuccess.reset();
    for (const w of this.store.all()) {
      const c = this.cache.get(w.key);
      if (c === undefined || !this.peers.has(w.peerId)) continue;
      pairWindowProbes.set(c.labels, w.sent);
      if (w.lossRatio !== null) pairLossRatio.set(c.labels, w.lossRatio);
      if (w.lastSuccessMs !== null) pairLastSuccess.set(c.labels, w.lastSuccessMs / 1000);
      if (w.rtt !== null)
        for (const [label, k] of QUANTILES) pairRtt.set({ ...c.labels, quantile: label }, w.rtt[k]);
    }
    const { portOpenRatio, portWindowChecks } = this.m;
    portOpenRatio.reset();
    portWindowChecks.reset();
    for (const [key, labels] of this.portLabels) {
      const w = this.extra.ports?.get(key);
      if (w === undefined) continue;
      portWindowChecks.set(labels, w.sent);
      if (w.openRatio !== null) portOpenRatio.set(labels, w.openRatio);
    }
    const late = this.extra.late?.summary();
    if (late?.lateRatio != null) this.m.lateRatio.set(this.selfLabels, late.lateRatio);
    const { dnsAnsweredRatio, dnsWindowRequests } = this.m;
    dnsAnsweredRatio.reset();
    dnsWindowRequests.reset();
    for (const w of this.dnsStore?.all() ?? []) {
      const labels = this.dnsLabels.get(w.key);
      if (labels === undefined) continue;
      dnsWindowRequests.set(labels, w.sent);
      if (w.answeredRatio !== null) dnsAnsweredRatio.set(labels, w.answeredRatio);
    }
  }

  private bump(name: string, total: number, child: () => { inc(n: number): void }): void {
    const prev = this.last.get(name) ?? 0;
    // A restarted engine starts its counts at 0 again: count from there, never decrease.
    const delta = total >= prev ? total - prev : total;
    if (delta > 0) child().inc(delta);
    this.last.set(name, total);
  }

  private removePeer(peer: Peer): void {
    this.peers.delete(peer.id);
    const path = pathOf(this.self.network, peer.network);
    for (const protocol of PROBE_KINDS) {
      for (const size of SIZE_CLASSES) {
        this.cache.delete(pairKey(peer.id, protocol, size));
        const labels = {
          source_node: this.self.node,
          target_node: peer.node,
          path,
          protocol,
          size,
        };
        this.m.probesSent.remove(labels);
        this.m.probesLost.remove(labels);
        this.m.stampDuplicates.remove(labels);
        this.m.stampReordered.remove(labels);
        for (const reason of FAILURE_REASONS) this.m.probeFailures.remove({ ...labels, reason });
        for (const direction of ['forward', 'reverse'])
          this.m.stampLost.remove({ ...labels, direction });
      }
    }
  }
}
