// `podmesh agent`: wires discovery → selection → plan → engines → store → metrics/HTTP.
// Agents never depend on a controller: with nothing but peers they probe and export.

import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { isIPv4 } from 'node:net';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { loopDelayMonitor, loopDelayQuantiles, loopDelaySeconds } from './core/loop-delay.ts';
import { SystemClock, type Clock } from './core/clock.ts';
import { defaultAdvertiseAddress, interfaceMtu } from './core/netif.ts';
import { diffPeers, peersChanged } from './core/peer-diff.ts';
import {
  pathOf,
  scopeOf,
  type Peer,
  type ProbeKind,
  type ProbeResult,
  type Self,
} from './core/types.ts';
import type { Config } from './config/load.ts';
import { createPeerSource } from './discovery/create.ts';
import type { DnsReplica } from './discovery/kubernetes.ts';
import type { PeerSource } from './discovery/peer-source.ts';
import {
  planDnsJobs,
  replicaTargets,
  type DnsQuerySpec,
  type DnsServerTarget,
  type ReplicaLike,
} from './mesh/families/dns.ts';
import { planPortJobs } from './mesh/families/port.ts';
import type { DnsJob, DnsJobResult } from './probes/dns-job.ts';
import type { PortJob, PortJobResult } from './probes/port-job.ts';
import { DnsWindowStore } from './store/dns-window.ts';
import { LateWindow } from './store/late-window.ts';
import { PairWindowStore } from './store/pair-window.ts';
import { PortWindowStore } from './store/port-window.ts';
import { LocalEngine, RemoteEngine, type EngineHandle } from './mesh/engine-client.ts';
import type { EngineSpec, LogSink, ResultSinks } from './mesh/family.ts';
import { planJobs } from './mesh/families/peer.ts';
import { selectPeers } from './mesh/select.ts';
import { AgentMetrics } from './metrics/recorder.ts';
import { loadTimestamping, type TimestampInfo } from './native/timestamping.ts';
import type { DnsOutcome } from './probes/dns.ts';
import { expandName, parseResolvConf, type ResolverConfig } from './probes/resolv-conf.ts';
import { baseLength } from './probes/stamp-codec.ts';
import { closeServer, createApp, listen } from './server/http.ts';

export interface AgentOptions {
  readonly config: Config;
  readonly log: Logger;
  readonly version: string;
  readonly clock?: Clock;
  readonly peerSource?: PeerSource;
  /**
   * resolv.conf content to use instead of reading dns.resolvConf: the demo and the tests pass
   * one pointing at a DNS server they started, so they never query the machine's resolver.
   */
  readonly resolvConf?: string;
}

/** A peer source that also lists the cluster DNS replicas (Kubernetes discovery). */
type WithDnsReplicas = PeerSource & {
  onDnsReplicas(listener: (replicas: readonly DnsReplica[]) => void): () => void;
};

function hasDnsReplicas(s: PeerSource): s is WithDnsReplicas {
  return typeof (s as Partial<WithDnsReplicas>).onDnsReplicas === 'function';
}

const IPV4_UDP_HEADERS = 28;

export class Agent {
  /** Mutable only in `zone`, which Kubernetes discovery may fill in from this node's labels. */
  readonly self: { -readonly [K in keyof Self]: Self[K] };
  private readonly clock: Clock;
  private readonly store: PairWindowStore;
  private readonly metrics: AgentMetrics;
  private readonly engines: { name: string; handle: EngineHandle; worker: boolean }[] = [];
  private readonly mainDelay = loopDelayMonitor();
  private server: Server | undefined;
  private peerSource: PeerSource | undefined;
  private selected: readonly Peer[] = [];
  private selectedIds = new Set<string>();
  private gotPeers = false;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private readonly mtuBytes: number;
  private readonly udpSmallBytes: number;
  private icmpState: {
    enabled: boolean;
    reason: 'ok' | 'permission' | 'disabled' | 'error';
    detail: string;
    /** Where icmp runs: the engine thread, or the main thread for the raw-socket fallback. */
    thread: 'engine' | 'main' | null;
  } = { enabled: false, reason: 'disabled', detail: 'probes.icmp is false', thread: null };
  private timestamps: Partial<Record<ProbeKind, TimestampInfo>> = {};
  private readonly dnsStore: DnsWindowStore;
  private readonly portStore: PortWindowStore;
  private readonly late: LateWindow;
  private readonly portJobs: readonly PortJob[];
  private readonly portJobKeys: ReadonlySet<string>;
  private lastEngineLoopP99: number | null = null;
  private dnsState: { enabled: boolean; reason: 'ok' | 'disabled' | 'error'; detail: string } = {
    enabled: false,
    reason: 'disabled',
    detail: 'dns.enabled is false',
  };
  private resolver: ResolverConfig | undefined;
  private dnsService: DnsServerTarget | undefined;
  private dnsQueries: DnsQuerySpec[] = [];
  private dnsServers: DnsServerTarget[] = [];
  private dnsJobs: DnsJob[] = [];
  private dnsJobKeys = new Set<string>();
  private discoveredReplicas: readonly DnsReplica[] = [];
  private unsubscribeDns: (() => void) | undefined;
  httpPort = 0;
  stampPort = 0;
  tcpPort = 0;

  private constructor(private readonly opts: AgentOptions) {
    const cfg = opts.config;
    this.clock = opts.clock ?? new SystemClock();
    const advertise =
      cfg.advertiseAddress ?? (cfg.address === '0.0.0.0' ? defaultAdvertiseAddress() : cfg.address);
    this.self = { node: cfg.node, network: cfg.network, zone: cfg.zone, address: advertise };
    this.store = new PairWindowStore(this.clock, cfg.window.seconds * 1000);
    this.dnsStore = new DnsWindowStore(this.clock, cfg.window.seconds * 1000);
    this.portStore = new PortWindowStore(this.clock, cfg.window.seconds * 1000);
    this.late = new LateWindow(this.clock, cfg.window.seconds * 1000, cfg.probes.lateMs);
    this.portJobs = planPortJobs(cfg.ports.targets);
    this.portJobKeys = new Set(this.portJobs.map((j) => j.key));
    this.metrics = new AgentMetrics(this.self, this.store, opts.version, this.dnsStore, {
      ports: this.portStore,
      late: this.late,
    });
    this.metrics.setPortJobs(this.portJobs);
    this.peerSource = opts.peerSource;
    this.udpSmallBytes = baseLength(cfg.stamp.authKey) + IPV4_UDP_HEADERS;
    const ifMtu = interfaceMtu(advertise);
    this.mtuBytes =
      cfg.probes.mtuBytes === 'auto'
        ? Math.min(ifMtu ?? 1500, cfg.probes.mtuMaxBytes)
        : cfg.probes.mtuBytes;
  }

  static async start(opts: AgentOptions): Promise<Agent> {
    const agent = new Agent(opts);
    try {
      await agent.begin();
    } catch (e) {
      await agent.stop();
      throw e;
    }
    return agent;
  }

  private async begin(): Promise<void> {
    const { config: cfg, log } = this.opts;
    this.mainDelay.enable();
    const sink: LogSink = (level, msg, fields) => log[level](fields ?? {}, msg);
    // Every scheduled run (probe, DNS lookup, port connect) tells how punctual the agent is.
    const sinks: ResultSinks = {
      peer: (r, late) => this.onResult(r, late),
      dns: (r, late) => {
        this.late.record(late);
        this.onDnsResult(r);
      },
      port: (r, late) => {
        this.late.record(late);
        this.onPortResult(r);
      },
    };
    const ports =
      this.portJobs.length > 0
        ? { ports: { intervalMs: cfg.ports.intervalMs, timeoutMs: cfg.ports.timeoutMs } }
        : {};
    if (cfg.dns.enabled) this.setUpDns();
    const dns = this.dnsState.enabled
      ? { dns: { intervalMs: cfg.dns.intervalMs, timeoutMs: cfg.dns.timeoutMs } }
      : {};
    const base = {
      bindAddress: cfg.address,
      intervalMs: cfg.probes.intervalMs,
      timeoutMs: cfg.probes.timeoutMs,
      jitter: cfg.probes.jitter,
      concurrency: cfg.probes.concurrency,
      authKey: cfg.stamp.authKey,
    };
    const responders = {
      stampPort: cfg.stampPort,
      tcpPort: cfg.tcpPort,
      maxSessions: cfg.stamp.maxSessions,
      maxRepliesPerSecond: cfg.stamp.maxRepliesPerSecond,
    };
    const offMain: ProbeKind[] = [];
    if (cfg.probes.udp) offMain.push('udp');
    if (cfg.probes.tcp) offMain.push('tcp');

    // With the timestamping addon, icmp runs on the worker too (ping or raw socket, kernel
    // times). Without it, icmp falls back to raw-socket, which only works on the main thread.
    const addon = loadTimestamping();
    const icmpOnWorker = cfg.probes.icmp && addon.ok;
    if (cfg.engine.worker) {
      const kinds: ProbeKind[] = icmpOnWorker ? [...offMain, 'icmp'] : offMain;
      const spec: EngineSpec = { ...base, kinds, responders, ...dns, ...ports };
      this.engines.push({
        name: 'worker',
        handle: await RemoteEngine.start(spec, sinks, sink),
        worker: true,
      });
      if (cfg.probes.icmp && !icmpOnWorker)
        this.engines.push({
          name: 'main',
          handle: await LocalEngine.start(
            { ...base, kinds: ['icmp'] },
            this.clock,
            { peer: sinks.peer },
            sink,
          ),
          worker: false,
        });
    } else {
      const kinds: ProbeKind[] = cfg.probes.icmp ? [...offMain, 'icmp'] : offMain;
      this.engines.push({
        name: 'main',
        handle: await LocalEngine.start(
          { ...base, kinds, responders, ...dns, ...ports },
          this.clock,
          sinks,
          sink,
        ),
        worker: false,
      });
    }
    for (const e of this.engines) {
      const st = e.handle.status;
      if (st.stampPort !== undefined) this.stampPort = st.stampPort;
      if (st.tcpPort !== undefined) this.tcpPort = st.tcpPort;
      if (st.icmp !== undefined)
        this.icmpState = {
          enabled: st.icmp.enabled,
          reason: st.icmp.reason,
          detail: st.icmp.detail,
          thread: e.worker ? 'engine' : 'main',
        };
    }
    this.metrics.setIcmp(this.icmpState.enabled, this.icmpState.reason);
    for (const e of this.engines) Object.assign(this.timestamps, e.handle.status.timestamps);
    this.metrics.setTimestampSources(this.timestamps);
    // Once, at start: user-space times carry this process's scheduling noise in every RTT.
    for (const [kind, ts] of Object.entries(this.timestamps))
      if (ts.source === 'userspace')
        log.warn(
          { protocol: kind, timestamps: ts.source, why: ts.detail },
          `${kind} RTTs use user-space timestamps: they include this agent's own scheduling delays`,
        );

    this.server = await listen(createApp(this), cfg.httpAddress, cfg.httpPort);
    const addr = this.server.address();
    this.httpPort = typeof addr === 'object' && addr !== null ? addr.port : cfg.httpPort;
    log.info(
      {
        node: this.self.node,
        network: this.self.network,
        address: this.self.address,
        http: `${cfg.httpAddress}:${this.httpPort}`,
        stamp: this.stampPort,
        tcp: this.tcpPort,
        mtuBytes: this.mtuBytes,
        icmp: this.icmpState.reason,
        dns: this.dnsState.enabled
          ? {
              nameserver: this.dnsService?.address ?? null,
              replicas: cfg.dns.replicas.length,
            }
          : this.dnsState.reason,
        worker: cfg.engine.worker,
        timestamps: Object.fromEntries(
          Object.entries(this.timestamps).map(([k, t]) => [k, t.source]),
        ),
      },
      'agent started',
    );
    for (const e of this.engines)
      if (e.handle.status.families.includes('port')) e.handle.reconcile('port', this.portJobs);
    this.peerSource ??= await createPeerSource(cfg, log);
    if (this.dnsState.enabled) {
      this.updateDns();
      const source = this.peerSource;
      if (hasDnsReplicas(source))
        this.unsubscribeDns = source.onDnsReplicas((replicas) => {
          this.discoveredReplicas = replicas;
          this.updateDns();
        });
    }
    await this.peerSource.start((peers) => this.onPeers(peers));
  }

  /** Reads the resolver configuration and fixes the names to look up. */
  private setUpDns(): void {
    const { config: cfg, log } = this.opts;
    let text = this.opts.resolvConf;
    if (text === undefined) {
      try {
        text = readFileSync(cfg.dns.resolvConf, 'utf8');
      } catch (e) {
        // Replicas can still be checked; the VIP and the search list can't.
        const detail = `cannot read ${cfg.dns.resolvConf}: ${(e as Error).message}`;
        log.warn({ path: cfg.dns.resolvConf }, `DNS checks of the resolver are off: ${detail}`);
        this.dnsState = { enabled: true, reason: 'error', detail };
      }
    }
    const resolver =
      text === undefined
        ? undefined
        : parseResolvConf(
            text,
            this.opts.resolvConf === undefined ? { hostname: hostname().toLowerCase() } : {},
          );
    this.resolver = resolver;
    if (resolver !== undefined) {
      if (resolver.warnings.length > 0)
        log.info({ warnings: resolver.warnings }, 'resolv.conf: odd lines');
      const ns = resolver.nameservers[0];
      if (ns !== undefined && isIPv4(ns)) {
        this.dnsService = {
          kind: 'service',
          name: 'service',
          address: ns,
          port: cfg.dns.port,
          tcpPort: cfg.dns.port,
        };
        this.dnsState = { enabled: true, reason: 'ok', detail: `nameserver ${ns}` };
      } else {
        const detail =
          ns === undefined ? 'resolv.conf has no nameserver' : `nameserver ${ns} is not IPv4`;
        log.warn(`DNS checks of the resolver are off: ${detail}`);
        this.dnsState = { enabled: true, reason: 'error', detail };
      }
    }
    const search = resolver ?? { ndots: 1, search: [] };
    const abs = (name: string): string[] =>
      name === '' ? [] : [name.endsWith('.') ? name : `${name}.`];
    this.dnsQueries = [
      {
        kind: 'service',
        name: cfg.dns.serviceName,
        candidates: abs(cfg.dns.serviceName),
        tcp: cfg.dns.tcp,
      },
      {
        kind: 'short',
        name: cfg.dns.shortName,
        candidates: cfg.dns.shortName === '' ? [] : expandName(cfg.dns.shortName, search),
        tcp: false,
      },
      { kind: 'pod', name: cfg.dns.podName, candidates: abs(cfg.dns.podName), tcp: false },
      {
        kind: 'external',
        name: cfg.dns.externalName,
        candidates: abs(cfg.dns.externalName),
        tcp: false,
      },
    ];
  }

  /** Recomputes the DNS servers and jobs (replicas come and go) and hands them to the engine. */
  private updateDns(): void {
    if (this.stopping || !this.dnsState.enabled) return;
    const cfg = this.opts.config;
    const replicas: ReplicaLike[] = [
      ...cfg.dns.replicas.map((r, i) => ({
        address: r.address,
        port: r.port,
        tcpPort: r.port,
        node: r.node,
        order: `static-${String(i).padStart(6, '0')}`,
      })),
      ...this.discoveredReplicas.map((r) => ({
        address: r.address,
        port: r.port,
        tcpPort: r.tcpPort,
        node: r.node,
        order: `pod-${r.pod}`,
      })),
    ];
    const before = new Set(this.dnsServers.filter((s) => s.kind === 'replica').map((s) => s.name));
    const servers = [
      ...(this.dnsService !== undefined ? [this.dnsService] : []),
      ...replicaTargets(replicas),
    ];
    const after = new Set(servers.filter((s) => s.kind === 'replica').map((s) => s.name));
    this.dnsServers = servers;
    this.dnsJobs = planDnsJobs(servers, this.dnsQueries);
    this.dnsJobKeys = new Set(this.dnsJobs.map((j) => j.key));
    this.dnsStore.retain(this.dnsJobKeys);
    this.metrics.setDnsJobs(this.dnsJobs);
    for (const e of this.engines)
      if (e.handle.status.families.includes('dns')) e.handle.reconcile('dns', this.dnsJobs);
    const arrived = [...after].filter((n) => !before.has(n));
    const departed = [...before].filter((n) => !after.has(n));
    if (arrived.length > 0 || departed.length > 0)
      this.opts.log.info(
        { replicas: after.size, arrived, departed, jobs: this.dnsJobs.length },
        'DNS replicas changed',
      );
  }

  private onPortResult(r: PortJobResult): void {
    if (!this.portJobKeys.has(r.key)) return;
    this.portStore.record(r);
    this.metrics.recordPort(r);
  }

  private onDnsResult(r: DnsJobResult): void {
    // A lookup of a job that is gone (a departed replica) is dropped: its series are gone too.
    if (!this.dnsJobKeys.has(r.key)) return;
    this.dnsStore.record(r);
    this.metrics.recordDns(r);
  }

  private onPeers(all: readonly Peer[]): void {
    if (this.stopping) return;
    const cfg = this.opts.config;
    if (cfg.zone === '' && this.self.zone === '') {
      // Nothing configured: learn this node's zone from discovery (the Node's topology label),
      // before any result is labelled with a scope.
      const me = all.find((p) => p.node === this.self.node && p.network === this.self.network);
      if (me !== undefined && me.zone !== '') this.self.zone = me.zone;
    }
    const next = selectPeers(this.self, all, cfg.peers.limit);
    // The one set difference of this change: store, metrics and engines all take it from here.
    const diff = diffPeers(this.selected, next);
    const departed = diff.departed.map((p) => p.id);
    this.selected = next;
    this.selectedIds = new Set(next.map((p) => p.id));
    this.store.forget(departed);
    this.metrics.setPeers(diff);
    const kinds = new Set<ProbeKind>();
    for (const e of this.engines) for (const k of e.handle.status.kinds) kinds.add(k);
    const jobs = planJobs(next, {
      kinds,
      mtu: cfg.probes.mtu,
      mtuBytes: this.mtuBytes,
      udpSmallBytes: this.udpSmallBytes,
    });
    for (const e of this.engines) e.handle.reconcile('peer', jobs, departed);
    if (!this.gotPeers || peersChanged(diff)) {
      this.opts.log.info(
        {
          peers: next.length,
          candidates: all.length,
          arrived: diff.arrived.map((p) => p.id),
          departed,
        },
        'peer set changed',
      );
    }
    this.gotPeers = true;
  }

  private onResult(r: ProbeResult, latenessMs: number): void {
    if (!this.selectedIds.has(r.peerId)) return;
    this.store.record(r);
    this.late.record(latenessMs);
    this.metrics.record(r, latenessMs);
  }

  /** For tests: kill the worker engine thread the way a crash would. */
  async crashEngineForTest(): Promise<void> {
    for (const e of this.engines)
      if (e.handle instanceof RemoteEngine) await e.handle.crashForTest();
  }

  isReady(): boolean {
    return this.gotPeers && !this.stopping;
  }

  notReadyReason(): string {
    return this.stopping ? 'shutting down' : 'waiting for the first peer list';
  }

  renderMetrics(): Promise<string> {
    for (const e of this.engines) {
      const h = e.handle.health();
      if (h !== undefined) this.metrics.setEngineHealth(h, e.name, e.worker);
      if (h?.loopDelay !== undefined && e.worker) this.lastEngineLoopP99 = h.loopDelay.p99;
    }
    const sync = this.peerSource?.syncStats?.();
    if (sync !== undefined) this.metrics.setDiscovery(sync);
    this.metrics.setMainLoopDelay(loopDelayQuantiles(this.mainDelay));
    this.mainDelay.reset();
    return this.metrics.render();
  }

  /** This agent's row of the matrix (format in docs/api.md). */
  results(): AgentResults {
    const cfg = this.opts.config;
    const windows = this.store.all();
    return {
      apiVersion: 'podmesh.io/v1',
      kind: 'AgentResults',
      source: {
        node: this.self.node,
        network: this.self.network,
        zone: this.self.zone,
        address: this.self.address,
      },
      generatedAt: new Date(this.clock.nowMs()).toISOString(),
      windowSeconds: cfg.window.seconds,
      intervalMs: cfg.probes.intervalMs,
      probes: {
        udp: { enabled: cfg.probes.udp, reason: cfg.probes.udp ? 'ok' : 'disabled' },
        tcp: { enabled: cfg.probes.tcp, reason: cfg.probes.tcp ? 'ok' : 'disabled' },
        icmp: {
          enabled: this.icmpState.enabled,
          reason: this.icmpState.reason,
          detail: this.icmpState.detail,
          thread: this.icmpState.thread,
        },
        mtuBytes: cfg.probes.mtu ? this.mtuBytes : null,
        timestamps: this.timestamps,
        dns: {
          enabled: this.dnsState.enabled,
          reason: this.dnsState.reason,
          detail: this.dnsState.detail,
          nameserver: this.dnsService?.address ?? null,
          search: this.resolver?.search ?? [],
          ndots: this.resolver?.ndots ?? null,
        },
      },
      peers: this.selected.map((p) => ({
        node: p.node,
        network: p.network,
        zone: p.zone,
        address: p.address,
        path: pathOf(this.self.network, p.network),
        scope: scopeOf(this.self, p),
        results: windows
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
      dns: this.dnsResults(),
      ports: this.portResults(),
      self: this.selfHealth(),
    };
  }

  private portResults(): AgentResults['ports'] {
    return this.portJobs.map((j) => {
      const w = this.portStore.get(j.key);
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
          w?.connect == null
            ? null
            : { p50: w.connect.p50, p99: w.connect.p99, max: w.connect.max },
      };
    });
  }

  private selfHealth(): AgentResults['self'] {
    const p = this.late.summary();
    const main = this.mainDelay.count > 0 ? loopDelaySeconds(this.mainDelay, 99) : null;
    let engine = this.lastEngineLoopP99;
    if (engine === null)
      for (const e of this.engines) {
        const d = e.worker ? e.handle.health()?.loopDelay : undefined;
        if (d !== undefined) engine = d.p99;
      }
    return {
      lateRatio: p.lateRatio,
      latenessP99Seconds: p.latenessP99Seconds,
      eventLoopP99Seconds: { main, engine },
    };
  }

  private dnsResults(): AgentResults['dns'] {
    const names = new Map(this.dnsQueries.map((q) => [q.kind, q.name]));
    return this.dnsJobs.map((j) => {
      const w = this.dnsStore.get(j.key);
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
          w?.latency == null
            ? null
            : { p50: w.latency.p50, p99: w.latency.p99, max: w.latency.max },
        answeredBy: w?.answeredBy ?? null,
        lastTried: w?.lastTried ?? 0,
        lastSuccess: w?.lastSuccessMs == null ? null : new Date(w.lastSuccessMs).toISOString(),
      };
    });
  }

  /**
   * Graceful stop: readiness off first (so a Service stops routing probes here), wait the drain
   * time, stop discovery and the probe loops, close the responders and the HTTP server.
   */
  stop(drainMs = 0): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.opts.log.info({ drainMs }, 'stopping: readiness off');
      if (drainMs > 0) await new Promise((r) => setTimeout(r, drainMs));
      this.unsubscribeDns?.();
      await this.peerSource?.stop();
      await Promise.all(this.engines.map((e) => e.handle.stop()));
      if (this.server !== undefined) await closeServer(this.server);
      this.mainDelay.disable();
      this.opts.log.info('agent stopped');
    })();
    return this.stopped;
  }
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
