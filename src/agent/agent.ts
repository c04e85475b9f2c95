// `podmesh agent`: wires discovery → selection → plan → engines → store → metrics/HTTP.
// Agents never depend on a controller: with nothing but peers they probe and export. This file is
// the wiring and the lifecycle (start, the peer-list and result paths, stop); its parts live
// beside it: engine placement (engines.ts), DNS setup (dns-setup.ts), the results row
// (results-row.ts) and readiness and self-health (health.ts).

import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { SystemClock, type Clock } from '../core/clock.ts';
import { loopDelayMonitor, loopDelayQuantiles, loopDelaySeconds } from '../core/loop-delay.ts';
import { defaultAdvertiseAddress, interfaceMtu } from '../core/netif.ts';
import { diffPeers, peersChanged } from '../core/peer-diff.ts';
import type { Peer, ProbeResult, Self } from '../core/types.ts';
import type { Config } from '../config/load.ts';
import { expectedPerWindow, windowProblems } from '../config/window-budget.ts';
import { createPeerSource } from '../discovery/create.ts';
import type { DnsReplica } from '../discovery/kubernetes.ts';
import type { PeerSource } from '../discovery/peer-source.ts';
import { planJobs, planLaneJobs, type PlanOptions } from '../mesh/families/peer.ts';
import { planApiServerJobs, type ApiServerAddress } from '../mesh/families/apiserver.ts';
import { planPortJobs } from '../mesh/families/port.ts';
import type { LogSink, ResultSinks } from '../mesh/family.ts';
import { planPeers } from '../mesh/peer-plan.ts';
import { AgentMetrics } from '../metrics/recorder.ts';
import type { ApiServerJob, ApiServerJobResult } from '../probes/apiserver-job.ts';
import type { DnsJobResult } from '../probes/dns-job.ts';
import type { PortJob, PortJobResult } from '../probes/port-job.ts';
import { baseLength } from '../probes/stamp-codec.ts';
import { closeServer, createApp, listen } from '../server/http.ts';
import { ApiServerWindowStore } from '../store/apiserver-window.ts';
import { DnsWindowStore } from '../store/dns-window.ts';
import { LateWindow } from '../store/late-window.ts';
import { PairWindowStore } from '../store/pair-window.ts';
import { PortWindowStore } from '../store/port-window.ts';
import { DNS_OFF, DnsChecks, setUpDns } from './dns-setup.ts';
import { Engines } from './engines.ts';
import { Readiness, selfHealth } from './health.ts';
import type { AgentRow } from '../api/agent-row.ts';
import { resultsRow } from './results-row.ts';

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
  /**
   * `podmesh demo` only (src/demo/demo.ts): the STAMP reflector takes faults from the demo
   * (src/responders/demo-faults.ts). Deliberately not a setting: no config reaches it.
   */
  readonly demoFaults?: boolean;
}

/** A peer source that also lists the cluster DNS replicas (Kubernetes discovery). */
type WithDnsReplicas = PeerSource & {
  onDnsReplicas(listener: (replicas: readonly DnsReplica[]) => void): () => void;
};

function hasDnsReplicas(s: PeerSource): s is WithDnsReplicas {
  return typeof (s as Partial<WithDnsReplicas>).onDnsReplicas === 'function';
}

/** A peer source that also watches the API server's endpoints (Kubernetes discovery). */
type WithApiServer = PeerSource & {
  onApiServerEndpoints(listener: (endpoints: readonly ApiServerAddress[]) => void): () => void;
};

function hasApiServer(s: PeerSource): s is WithApiServer {
  return typeof (s as Partial<WithApiServer>).onApiServerEndpoints === 'function';
}

const IPV4_UDP_HEADERS = 28;

export class Agent {
  /** Mutable only in `zone`, which Kubernetes discovery may fill in from this node's labels. */
  readonly self: { -readonly [K in keyof Self]: Self[K] };
  private readonly clock: Clock;
  private readonly store: PairWindowStore;
  private readonly dnsStore: DnsWindowStore;
  private readonly portStore: PortWindowStore;
  private readonly late: LateWindow;
  private readonly metrics: AgentMetrics;
  private readonly portJobs: readonly PortJob[];
  private readonly portJobKeys: ReadonlySet<string>;
  private readonly apiStore: ApiServerWindowStore;
  /** The API server checks: the VIP and the endpoints known now (static or watched). */
  private apiJobs: readonly ApiServerJob[] = [];
  private apiJobKeys: ReadonlySet<string> = new Set();
  private readonly mainDelay = loopDelayMonitor();
  private readonly readiness = new Readiness();
  private readonly mtuBytes: number;
  private readonly udpSmallBytes: number;
  private engines: Engines | undefined;
  private dns: DnsChecks;
  private server: Server | undefined;
  private peerSource: PeerSource | undefined;
  /** The core set: probed all the time, with per-pair series. */
  private selected: readonly Peer[] = [];
  private selectedIds = new Set<string>();
  /** Peers visited by the rotation (peers.rotation): in the row, without per-pair series. */
  private rotating = new Map<string, Peer>();
  private discoveredReplicas: readonly DnsReplica[] = [];
  private unsubscribeDns: (() => void) | undefined;
  private unsubscribeApi: (() => void) | undefined;
  private stopped: Promise<void> | undefined;
  httpPort = 0;
  stampPort = 0;
  tcpPort = 0;

  private constructor(private readonly opts: AgentOptions) {
    const cfg = opts.config;
    this.clock = opts.clock ?? new SystemClock();
    const advertise =
      cfg.advertiseAddress ?? (cfg.address === '0.0.0.0' ? defaultAdvertiseAddress() : cfg.address);
    this.self = { node: cfg.node, network: cfg.network, zone: cfg.zone, address: advertise };
    const windowMs = cfg.window.seconds * 1000;
    this.store = new PairWindowStore(this.clock, windowMs);
    this.dnsStore = new DnsWindowStore(this.clock, windowMs);
    this.portStore = new PortWindowStore(this.clock, windowMs);
    this.apiStore = new ApiServerWindowStore(this.clock, windowMs);
    this.late = new LateWindow(this.clock, windowMs, cfg.probes.lateMs);
    this.portJobs = planPortJobs(cfg.ports.targets);
    this.portJobKeys = new Set(this.portJobs.map((j) => j.key));
    this.metrics = new AgentMetrics(this.self, this.store, opts.version, this.dnsStore, {
      ports: this.portStore,
      late: this.late,
      apiserver: this.apiStore,
    });
    this.metrics.ports.setJobs(this.portJobs);
    this.metrics.health.setWindowExpected(expectedPerWindow(cfg));
    this.dns = new DnsChecks(cfg, DNS_OFF);
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
    const logSink: LogSink = (level, msg, fields) => log[level](fields ?? {}, msg);
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
      apiserver: (r, late) => {
        this.late.record(late);
        this.onApiServerResult(r);
      },
    };
    if (cfg.dns.enabled) this.dns = new DnsChecks(cfg, setUpDns(cfg, log, this.opts.resolvConf));
    const dnsOn = this.dns.setup.state.enabled;
    const engines = await Engines.start(
      cfg,
      {
        ...(dnsOn ? { dns: { intervalMs: cfg.dns.intervalMs, timeoutMs: cfg.dns.timeoutMs } } : {}),
        ...(this.portJobs.length > 0
          ? { ports: { intervalMs: cfg.ports.intervalMs, timeoutMs: cfg.ports.timeoutMs } }
          : {}),
        ...(cfg.apiserver.enabled
          ? {
              apiserver: {
                intervalMs: cfg.apiserver.intervalMs,
                timeoutMs: cfg.apiserver.timeoutMs,
              },
            }
          : {}),
      },
      this.clock,
      sinks,
      logSink,
      this.opts.demoFaults === true ? cfg.node : undefined,
    );
    this.engines = engines;
    this.stampPort = engines.stampPort;
    this.tcpPort = engines.tcpPort;
    this.metrics.health.setIcmp(engines.icmp.enabled, engines.icmp.reason);
    // Optional checks under whose settings their alerts could never fire (the peer probes'
    // case is refused by the config loader).
    for (const w of windowProblems(cfg).warn) log.warn(w);
    this.metrics.health.setTimestampSources(engines.timestamps);
    // Once, at start: user-space times carry this process's scheduling noise in every RTT.
    for (const [kind, ts] of Object.entries(engines.timestamps))
      if (ts.source === 'userspace')
        log.warn(
          { protocol: kind, timestamps: ts.source, why: ts.detail },
          `${kind} RTTs use user-space timestamps: they include this agent's own scheduling delays`,
        );

    this.server = await listen(
      createApp(this),
      cfg.httpAddress,
      cfg.httpPort,
      cfg.http,
      cfg.web.security,
    );
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
        icmp: engines.icmp.reason,
        dns: dnsOn
          ? {
              nameserver: this.dns.setup.service?.address ?? null,
              replicas: cfg.dns.replicas.length,
            }
          : this.dns.setup.state.reason,
        worker: cfg.engine.worker,
        timestamps: Object.fromEntries(
          Object.entries(engines.timestamps).map(([k, t]) => [k, t.source]),
        ),
      },
      'agent started',
    );
    engines.reconcile('port', this.portJobs);
    if (cfg.apiserver.enabled) this.updateApiServer(cfg.apiserver.endpoints);
    this.peerSource ??= await createPeerSource(cfg, log);
    if (dnsOn) {
      this.updateDns();
      const source = this.peerSource;
      if (hasDnsReplicas(source))
        this.unsubscribeDns = source.onDnsReplicas((replicas) => {
          this.discoveredReplicas = replicas;
          this.updateDns();
        });
    }
    // Endpoints from the `kubernetes` EndpointSlice, unless apiserver.endpoints lists them.
    const source = this.peerSource;
    if (cfg.apiserver.enabled && cfg.apiserver.endpoints.length === 0 && hasApiServer(source))
      this.unsubscribeApi = source.onApiServerEndpoints((endpoints) => {
        this.updateApiServer(endpoints);
        this.opts.log.info(
          { endpoints: endpoints.map((e) => `${e.address}:${e.port}`) },
          'API server endpoints changed',
        );
      });
    await this.peerSource.start((peers) => this.onPeers(peers));
  }

  /** Recomputes the DNS servers and jobs (replicas come and go) and hands them to the engine. */
  private updateDns(): void {
    if (this.readiness.stopped || !this.dns.setup.state.enabled) return;
    const change = this.dns.update(this.discoveredReplicas);
    this.dnsStore.retain(this.dns.keys);
    this.metrics.dns.setJobs(this.dns.jobs);
    this.engines?.reconcile('dns', this.dns.jobs);
    if (change.arrived.length > 0 || change.departed.length > 0)
      this.opts.log.info({ ...change, jobs: this.dns.jobs.length }, 'DNS replicas changed');
  }

  /** The API server checks for these endpoints (and the VIP), handed to the engine. */
  private updateApiServer(endpoints: readonly ApiServerAddress[]): void {
    if (this.readiness.stopped) return;
    const { service, readyz } = this.opts.config.apiserver;
    this.apiJobs = planApiServerJobs(service, endpoints, readyz);
    this.apiJobKeys = new Set(this.apiJobs.map((j) => j.key));
    this.apiStore.retain(this.apiJobKeys);
    this.metrics.apiserver.setJobs(this.apiJobs);
    this.engines?.reconcile('apiserver', this.apiJobs);
  }

  private onApiServerResult(r: ApiServerJobResult): void {
    // A check of an endpoint that left is dropped: its series are gone too.
    if (!this.apiJobKeys.has(r.key)) return;
    this.apiStore.record(r);
    this.metrics.apiserver.record(r);
  }

  private onPortResult(r: PortJobResult): void {
    if (!this.portJobKeys.has(r.key)) return;
    this.portStore.record(r);
    this.metrics.ports.record(r);
  }

  private onDnsResult(r: DnsJobResult): void {
    // A lookup of a job that is gone (a departed replica) is dropped: its series are gone too.
    if (!this.dns.keys.has(r.key)) return;
    this.dnsStore.record(r);
    this.metrics.dns.record(r);
  }

  private onPeers(all: readonly Peer[]): void {
    if (this.readiness.stopped) return;
    const cfg = this.opts.config;
    if (cfg.zone === '' && this.self.zone === '') {
      // Nothing configured: learn this node's zone from discovery (the Node's topology label),
      // before any result is labelled with a scope.
      const me = all.find((p) => p.node === this.self.node && p.network === this.self.network);
      if (me !== undefined && me.zone !== '') this.self.zone = me.zone;
    }
    const engines = this.engines;
    const sizes: PlanOptions = {
      kinds: engines?.kinds() ?? new Set(),
      mtu: cfg.probes.mtu,
      mtuBytes: this.mtuBytes,
      udpSmallBytes: this.udpSmallBytes,
    };
    // What a core peer and a rotating visit cost, from the same plans the engines get.
    const probe = all[0];
    const jobsPerPeer = probe === undefined ? 0 : planJobs([probe], sizes).length;
    const plan = planPeers(this.self, all, {
      limit: cfg.peers.limit,
      core: cfg.peers.rotation ? cfg.peers.core : cfg.peers.limit,
      watchers: cfg.peers.watchers,
      jobsPerPeer,
      jobsPerVisit:
        probe === undefined
          ? 0
          : planLaneJobs({ lanes: [[probe]], periodSlots: 1 }, 1, sizes).length,
    });
    const next = plan.core;
    const rotating = new Map<string, Peer>();
    for (const lane of plan.rotation.lanes) for (const p of lane) rotating.set(p.id, p);
    // The one set difference of this change: store, metrics and engines all take it from here.
    // Per-pair series follow the core set; windows and probe state follow everyone probed.
    const diff = diffPeers(this.selected, next);
    const wasProbed = new Set([...this.selectedIds, ...this.rotating.keys()]);
    const nextIds = new Set(next.map((p) => p.id));
    const departed = [...wasProbed].filter((id) => !rotating.has(id) && !nextIds.has(id));
    this.selected = next;
    this.selectedIds = nextIds;
    this.rotating = rotating;
    this.store.forget(departed);
    this.metrics.pairs.setPeers(diff);
    const others = new Set(all.map((p) => p.id));
    others.delete(`${this.self.node}/${this.self.network}`);
    this.metrics.health.setCoveragePeriod(
      next.length >= others.size
        ? cfg.probes.intervalMs / 1000
        : plan.rotation.periodSlots > 0 && next.length + rotating.size >= others.size
          ? (plan.rotation.periodSlots * cfg.probes.intervalMs) / 1000
          : Infinity,
    );
    if (engines !== undefined) {
      const jobs = [
        ...planJobs(next, sizes),
        ...planLaneJobs(plan.rotation, cfg.probes.intervalMs, sizes),
      ];
      engines.reconcile('peer', jobs, departed);
    }
    if (this.readiness.peersArrived() || peersChanged(diff)) {
      this.opts.log.info(
        {
          peers: next.length,
          candidates: all.length,
          watched: plan.watched.length,
          rotating: rotating.size,
          lanes: plan.rotation.lanes.length,
          coveragePeriodSlots: plan.rotation.periodSlots,
          arrived: diff.arrived.map((p) => p.id),
          departed,
        },
        'peer set changed',
      );
    }
  }

  private onResult(r: ProbeResult, latenessMs: number): void {
    if (this.selectedIds.has(r.peerId)) {
      this.store.record(r);
      this.late.record(latenessMs);
      this.metrics.pairs.record(r, latenessMs);
      return;
    }
    // A rotating visit: into the window (so into the row) and the scope histograms, no
    // per-pair series.
    const peer = this.rotating.get(r.peerId);
    if (peer === undefined) return;
    this.store.record(r);
    this.late.record(latenessMs);
    this.metrics.pairs.recordRotating(r, peer, latenessMs);
  }

  /** For tests: kill the worker engine thread the way a crash would. */
  async crashEngineForTest(): Promise<void> {
    await this.engines?.crashForTest();
  }

  isReady(): boolean {
    return this.readiness.isReady();
  }

  notReadyReason(): string {
    return this.readiness.notReadyReason();
  }

  renderMetrics(): Promise<string> {
    for (const e of this.engines?.health() ?? [])
      this.metrics.health.setEngineHealth(e.health, e.name, e.worker);
    const sync = this.peerSource?.syncStats?.();
    if (sync !== undefined) this.metrics.health.setDiscovery(sync);
    this.metrics.health.setMainLoopDelay(loopDelayQuantiles(this.mainDelay));
    this.mainDelay.reset();
    return this.metrics.render();
  }

  /** This agent's row of the matrix (format in docs/api.md). */
  results(): AgentRow {
    const cfg = this.opts.config;
    const engines = this.engines;
    return resultsRow({
      self: this.self,
      nowMs: this.clock.nowMs(),
      windowSeconds: cfg.window.seconds,
      intervalMs: cfg.probes.intervalMs,
      udp: cfg.probes.udp,
      tcp: cfg.probes.tcp,
      icmp: engines?.icmp ?? {
        enabled: false,
        reason: 'disabled',
        detail: 'probes.icmp is false',
        thread: null,
      },
      mtuBytes: cfg.probes.mtu ? this.mtuBytes : null,
      timestamps: engines?.timestamps ?? {},
      dns: this.dns.setup,
      peers: this.rowPeers(),
      rotating: this.rotating,
      windows: this.store.all(),
      dnsJobs: this.dns.jobs,
      dnsWindow: (key) => this.dnsStore.get(key),
      portJobs: this.portJobs,
      portWindow: (key) => this.portStore.get(key),
      apiServerJobs: this.apiJobs,
      apiServerWindow: (key) => this.apiStore.get(key),
      selfHealth: selfHealth(
        this.late.summary(),
        this.mainDelay.count > 0 ? loopDelaySeconds(this.mainDelay, 99) : null,
        engines?.engineLoopP99() ?? null,
      ),
    });
  }

  /** The row's peers: the core set, then the rotating peers measured within the window. */
  private rowPeers(): readonly Peer[] {
    if (this.rotating.size === 0) return this.selected;
    const measured = new Set(this.store.peers());
    return [...this.selected, ...[...this.rotating.values()].filter((p) => measured.has(p.id))];
  }

  /**
   * Graceful stop: readiness off first (so a Service stops routing probes here), wait the drain
   * time, stop discovery and the probe loops, close the responders and the HTTP server.
   */
  stop(drainMs = 0): Promise<void> {
    this.stopped ??= (async () => {
      this.readiness.stop();
      this.opts.log.info({ drainMs }, 'stopping: readiness off');
      if (drainMs > 0) await new Promise((r) => setTimeout(r, drainMs));
      this.unsubscribeDns?.();
      this.unsubscribeApi?.();
      await this.peerSource?.stop();
      await this.engines?.stop();
      if (this.server !== undefined) await closeServer(this.server);
      this.mainDelay.disable();
      this.opts.log.info('agent stopped');
    })();
    return this.stopped;
  }
}
