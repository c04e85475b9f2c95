// The agent's own health as metrics: ICMP availability, timestamp sources, event-loop delay of
// the main and engine threads, the engines' cumulative counts (reflector, TCP listener,
// scheduler skips, restarts, discarded DNS answers, reopened sockets) as counter increments,
// discovery syncs, the late-run ratio from the lateness window at scrape time, what a full
// window is expected to hold, and the agent's zone (podmesh_agent_info).

import { SOCKET_KINDS, type EngineHealth } from '../core/engine-health.ts';
import type { ProbeKind } from '../core/types.ts';
import type { TimestampInfo } from '../probes/probe.ts';
import type { LateWindow } from '../store/late-window.ts';
import { QUANTILES, type RecorderContext } from './recorder-context.ts';

export class HealthRecorder {
  /** The last cumulative total seen per counter, to turn totals into increments. */
  private readonly last = new Map<string, number>();

  constructor(
    private readonly ctx: RecorderContext,
    private readonly late: LateWindow | undefined,
  ) {}

  setIcmp(enabled: boolean, reason: 'ok' | 'permission' | 'disabled' | 'error'): void {
    const { m, selfLabels } = this.ctx;
    m.icmpEnabled.reset();
    m.icmpEnabled.set({ ...selfLabels, reason }, enabled ? 1 : 0);
  }

  setTimestampSources(sources: Partial<Record<ProbeKind, TimestampInfo>>): void {
    const { m, selfLabels } = this.ctx;
    m.timestampSource.reset();
    for (const [protocol, t] of Object.entries(sources))
      m.timestampSource.set({ ...selfLabels, protocol, source: t.source }, 1);
  }

  /** Seconds in which every other agent is probed at least once (+Inf: some never are). */
  setCoveragePeriod(seconds: number): void {
    this.ctx.m.coveragePeriod.set(this.ctx.selfLabels, seconds);
  }

  setMainLoopDelay(q: { p50: number; p90: number; p99: number }): void {
    const { m, selfLabels } = this.ctx;
    for (const [label, k] of QUANTILES)
      m.eventLoopDelay.set({ ...selfLabels, thread: 'main', quantile: label }, q[k]);
  }

  /**
   * Applies cumulative counts from one probe engine as counter increments. `engine` keeps the
   * running totals of the worker and main-thread engines apart; only a worker engine's loop
   * delay is reported as the engine thread's.
   */
  setEngineHealth(h: EngineHealth, engine: string, isWorker: boolean): void {
    const { m, selfLabels } = this.ctx;
    const bump = (name: string, total: number, child: () => { inc(n: number): void }): void =>
      this.bump(`${engine}/${name}`, total, child);
    const r = h.reflector;
    if (r !== undefined) {
      bump('reflected', r.reflected, () =>
        m.reflectorPackets.labels({ ...selfLabels, result: 'reflected' }),
      );
      bump('malformed', r.malformed, () =>
        m.reflectorPackets.labels({ ...selfLabels, result: 'malformed' }),
      );
      bump('auth_failed', r.authFailed, () =>
        m.reflectorPackets.labels({ ...selfLabels, result: 'auth_failed' }),
      );
      bump('loop', r.loop, () => m.reflectorPackets.labels({ ...selfLabels, result: 'loop' }));
      bump('rate_limited', r.rateLimited, () =>
        m.reflectorPackets.labels({ ...selfLabels, result: 'rate_limited' }),
      );
      bump('verify_limited', r.verifyLimited, () =>
        m.reflectorPackets.labels({ ...selfLabels, result: 'verify_limited' }),
      );
      bump('stale', r.stale, () => m.reflectorPackets.labels({ ...selfLabels, result: 'stale' }));
      bump('replayed', r.replayed, () =>
        m.reflectorPackets.labels({ ...selfLabels, result: 'replayed' }),
      );
      m.reflectorSessions.set(selfLabels, r.sessions);
    }
    if (h.tcpAccepted !== undefined)
      bump('tcp', h.tcpAccepted, () => m.tcpAccepted.labels(selfLabels));
    if (h.restarts !== undefined)
      bump('restarts', h.restarts, () => m.engineRestarts.labels(selfLabels));
    if (h.skipped !== undefined)
      bump('skipped', h.skipped, () => m.schedulerSkipped.labels(selfLabels));
    if (h.dns !== undefined) {
      bump('dns_malformed', h.dns.malformed, () =>
        m.dnsDiscarded.labels({ ...selfLabels, reason: 'malformed' }),
      );
      bump('dns_mismatched', h.dns.mismatched, () =>
        m.dnsDiscarded.labels({ ...selfLabels, reason: 'mismatched' }),
      );
    }
    if (h.socketReopens !== undefined) {
      for (const kind of SOCKET_KINDS)
        bump(`socket_reopens/${kind}`, h.socketReopens[kind], () =>
          m.socketReopens.labels({ ...selfLabels, kind }),
        );
    }
    if (isWorker && h.loopDelay !== undefined) {
      for (const [label, k] of QUANTILES)
        m.eventLoopDelay.set({ ...selfLabels, thread: 'engine', quantile: label }, h.loopDelay[k]);
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
    const { m, selfLabels } = this.ctx;
    for (const st of stats) {
      const labels = { ...selfLabels, resource: st.resource };
      if (st.lastSyncMs !== undefined) m.discoveryLastSync.set(labels, st.lastSyncMs / 1000);
      this.bump(`discovery/${st.resource}/error`, st.errorRestarts, () =>
        m.discoveryRestarts.labels({ ...labels, reason: 'error' }),
      );
      this.bump(`discovery/${st.resource}/watchdog`, st.watchdogRestarts, () =>
        m.discoveryRestarts.labels({ ...labels, reason: 'watchdog' }),
      );
    }
  }

  /**
   * What a full window holds per series, by kind (pair, dns, port): set once at start, from
   * window.seconds and the intervals. The alert rules derive their minimum sample size from it.
   */
  setWindowExpected(expected: Readonly<Record<string, number>>): void {
    const { m, selfLabels } = this.ctx;
    for (const [kind, n] of Object.entries(expected))
      m.windowExpected.set({ ...selfLabels, kind }, n);
  }

  /**
   * Sets the late-run ratio from the lateness window and the agent's zone, for one render: the
   * zone can be learnt from discovery after start (src/agent/agent.ts), so it is read each time.
   */
  refresh(): void {
    const { m, self, selfLabels } = this.ctx;
    m.agentInfo.reset();
    m.agentInfo.set({ ...selfLabels, zone: self.zone }, 1);
    const late = this.late?.summary();
    if (late?.lateRatio != null) this.ctx.m.lateRatio.set(this.ctx.selfLabels, late.lateRatio);
  }

  private bump(name: string, total: number, child: () => { inc(n: number): void }): void {
    const prev = this.last.get(name) ?? 0;
    // A restarted engine starts its counts at 0 again: count from there, never decrease.
    const delta = total >= prev ? total - prev : total;
    if (delta > 0) child().inc(delta);
    this.last.set(name, total);
  }
}
