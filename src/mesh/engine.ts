// The probe engine: the probes of some kinds, the scheduler that drives them, (optionally) the
// responders peers probe, and (optionally) the DNS probe and port connects, each on its own
// scheduler. Thread-agnostic: the agent runs every kind on one worker thread (so a busy main
// thread can't skew their timestamps). Only when podmesh's timestamping addon can't load does
// icmp go to a second engine on the main thread: its fallback, the raw-socket package, polls
// on the main thread's event loop and can't live in a worker.

import { SlottedClock, type Clock } from '../core/clock.ts';
import {
  loopDelayMonitor,
  loopDelayQuantiles,
  timerLateness,
  type LoopDelayQuantiles,
  type TimerLateness,
} from '../core/loop-delay.ts';
import type { ProbeKind, ProbeResult } from '../core/types.ts';
import type { EngineHealth } from '../core/engine-health.ts';
import type { TimestampInfo } from '../native/timestamping.ts';
import { DnsProbe } from '../probes/dns.ts';
import { IcmpProbe } from '../probes/icmp.ts';
import type { Probe } from '../probes/probe.ts';
import { StampReflector } from '../responders/stamp-reflector.ts';
import { TcpListener } from '../responders/tcp-listener.ts';
import { TcpProbe } from '../probes/tcp.ts';
import { SizedUdpProbe } from '../probes/udp.ts';
import type { DnsJob, DnsJobResult } from '../probes/dns-job.ts';
import type { PortJob, PortJobResult } from '../probes/port-job.ts';
import { dnsExecutor } from './dns-plan.ts';
import { portExecutor } from './port-plan.ts';
import { Scheduler, probeExecutor, type Job } from './scheduler.ts';

/** Everything an engine needs; plain data so it can cross to a worker thread. */
export interface EngineSpec {
  readonly kinds: readonly ProbeKind[];
  readonly bindAddress: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly jitter: number;
  readonly concurrency: number;
  /**
   * Round probe and scheduler timers to this many milliseconds (see SlottedClock): far fewer
   * event-loop wake-ups at a thousand probes a second. 0 keeps exact timers. Default
   * timerSlotFor(intervalMs).
   */
  readonly timerSlotMs?: number;
  /** Raw bytes of the STAMP key, when authenticated mode is on. */
  readonly authKey?: Uint8Array | undefined;
  readonly responders?: {
    readonly stampPort: number;
    readonly tcpPort: number;
    readonly maxSessions: number;
    readonly maxRepliesPerSecond: number;
  };
  /** Run DNS lookups too (see reconcileDns), on their own schedule. */
  readonly dns?: {
    readonly intervalMs: number;
    readonly timeoutMs: number;
  };
  /** Connect to port targets too (see reconcilePorts), on their own schedule. */
  readonly ports?: {
    readonly intervalMs: number;
    readonly timeoutMs: number;
  };
}

export interface EngineStatus {
  /** Kinds that actually run (icmp drops out without CAP_NET_RAW). */
  readonly kinds: ProbeKind[];
  readonly icmp?: {
    readonly enabled: boolean;
    readonly reason: 'ok' | 'permission' | 'error';
    readonly detail: string;
  };
  /** Where each running kind's timestamps come from (kernel, or user space and why). */
  readonly timestamps: Partial<Record<ProbeKind, TimestampInfo>>;
  /** Bound ports of the responders (meaningful when 0 was asked for). */
  readonly stampPort?: number;
  readonly tcpPort?: number;
  /** True when this engine runs DNS lookups. */
  readonly dns?: boolean;
  /** True when this engine connects to port targets. */
  readonly ports?: boolean;
}

/**
 * Timers within this many milliseconds share one wake-up. Probes start up to one slot early
 * (never late) and time out up to one slot late (never early): both far below what a probe
 * interval or timeout means. 50 ms rather than 20 took the agent from ~12% to ~10% of a core at
 * 1,000 probes/s (docs/benchmarks.md); a slot's probes leave together, some 50 at that rate.
 */
export const DEFAULT_TIMER_SLOT_MS = 50;

/**
 * The slot for a probe interval: DEFAULT_TIMER_SLOT_MS at the default 1 s, a twentieth of the
 * interval when that is shorter (at least 5 ms), so a fast schedule keeps its precision.
 */
export function timerSlotFor(intervalMs: number): number {
  return Math.min(DEFAULT_TIMER_SLOT_MS, Math.max(5, Math.floor(intervalMs / 20)));
}

/**
 * How long the engine thread may hold results before sending them to the main thread: 200 ms at
 * the default 1 s interval, a fifth of the interval when that is shorter (at least 20 ms), so
 * loss shows in the metrics within the same number of intervals at any cadence.
 */
export function resultFlushFor(intervalMs: number): number {
  return Math.min(200, Math.max(20, Math.floor(intervalMs / 5)));
}

export type ResultSink = (result: ProbeResult, latenessMs: number) => void;
export type DnsResultSink = (result: DnsJobResult, latenessMs: number) => void;
export type PortResultSink = (result: PortJobResult, latenessMs: number) => void;
export type LogSink = (
  level: 'info' | 'warn' | 'error',
  msg: string,
  fields?: Record<string, unknown>,
) => void;

/** The engine's event-loop delay, read and reset at each health report. */
interface LoopDelayReader {
  quantiles(): LoopDelayQuantiles;
  reset(): void;
  stop(): void;
}

/**
 * With slotted timers, the delay is their lateness: the engine wakes every slot while it probes
 * anyway, and a monitor's own 20 wake-ups a second would cost about as much CPU as the slots'
 * (docs/benchmarks.md). Exact timers (timerSlotMs 0) keep a monitor.
 */
function loopDelayReader(lateness: TimerLateness | undefined): LoopDelayReader {
  if (lateness !== undefined)
    return {
      quantiles: () => loopDelayQuantiles(lateness.histogram, 0),
      reset: () => lateness.histogram.reset(),
      stop: () => undefined,
    };
  const h = loopDelayMonitor();
  h.enable();
  return {
    quantiles: () => loopDelayQuantiles(h),
    reset: () => h.reset(),
    stop: () => h.disable(),
  };
}

export class ProbeEngine {
  private constructor(
    private readonly scheduler: Scheduler,
    private readonly probes: ReadonlyMap<ProbeKind, Probe>,
    private readonly reflector: StampReflector | undefined,
    private readonly listener: TcpListener | undefined,
    private readonly dns:
      { probe: DnsProbe; scheduler: Scheduler<DnsJob, DnsJobResult> } | undefined,
    private readonly ports: Scheduler<PortJob, PortJobResult> | undefined,
    readonly status: EngineStatus,
    private readonly delay: LoopDelayReader,
    /**
     * The engine's timers, rounded late to its slots: a timer set here (the worker's result
     * flush) shares the probes' wake-ups instead of adding its own.
     */
    readonly timers: Clock,
  ) {}

  /** Opens sockets and responders; throws (with the address and port) only if a bind fails. */
  static async start(
    spec: EngineSpec,
    exactClock: Clock,
    onResult: ResultSink,
    log: LogSink,
    onDnsResult?: DnsResultSink,
    onPortResult?: PortResultSink,
  ): Promise<ProbeEngine> {
    const slot = spec.timerSlotMs ?? timerSlotFor(spec.intervalMs);
    // Starts are rounded early (never counted late), probes' timeouts late (never shortened).
    const lateness = slot > 0 ? timerLateness() : undefined;
    const clock =
      slot > 0 ? new SlottedClock(exactClock, slot, 'early', lateness?.record) : exactClock;
    const timeouts = clock instanceof SlottedClock ? clock.withRound('late') : exactClock;
    const probes = new Map<ProbeKind, Probe>();
    const authKey = spec.authKey === undefined ? undefined : Buffer.from(spec.authKey);
    let icmp: EngineStatus['icmp'];
    let reflector: StampReflector | undefined;
    let listener: TcpListener | undefined;
    let dnsProbe: DnsProbe | undefined;
    try {
      if (spec.responders !== undefined) {
        const r = spec.responders;
        reflector = await StampReflector.start({
          clock,
          address: spec.bindAddress,
          port: r.stampPort,
          authKey,
          maxSessions: r.maxSessions,
          maxRepliesPerSecond: r.maxRepliesPerSecond,
        });
        listener = await TcpListener.start({ address: spec.bindAddress, port: r.tcpPort });
      }
      for (const kind of spec.kinds) {
        if (kind === 'udp')
          probes.set(
            'udp',
            await SizedUdpProbe.open({ clock: timeouts, bindAddress: spec.bindAddress, authKey }),
          );
        if (kind === 'tcp')
          probes.set('tcp', new TcpProbe({ clock: timeouts, bindAddress: spec.bindAddress }));
        if (kind === 'icmp') {
          const opened = await IcmpProbe.open({ clock: timeouts, log: (m) => log('info', m) });
          if (opened instanceof IcmpProbe) {
            probes.set('icmp', opened);
            icmp = {
              enabled: true,
              reason: 'ok',
              detail:
                opened.mode === 'ping'
                  ? 'unprivileged ICMP ping socket open'
                  : `raw ICMP socket open (${opened.mode})`,
            };
          } else {
            icmp = { enabled: false, reason: opened.reason, detail: opened.detail };
            log('warn', `ICMP probes are off: ${opened.detail}`, { reason: opened.reason });
          }
        }
      }
      if (spec.dns !== undefined)
        dnsProbe = await DnsProbe.open({
          clock: timeouts,
          ...(spec.bindAddress !== '0.0.0.0' ? { bindAddress: spec.bindAddress } : {}),
        });
    } catch (e) {
      await Promise.all([...probes.values()].map((p) => p.close()));
      await dnsProbe?.close();
      await reflector?.close();
      await listener?.close();
      throw e;
    }
    const scheduler = new Scheduler({
      clock,
      intervalMs: spec.intervalMs,
      timeoutMs: spec.timeoutMs,
      jitter: spec.jitter,
      concurrency: spec.concurrency,
      ...probeExecutor(probes),
      onResult,
    });
    let dns: { probe: DnsProbe; scheduler: Scheduler<DnsJob, DnsJobResult> } | undefined;
    if (dnsProbe !== undefined && spec.dns !== undefined) {
      const sink = onDnsResult ?? (() => undefined);
      dns = {
        probe: dnsProbe,
        scheduler: new Scheduler<DnsJob, DnsJobResult>({
          clock,
          intervalMs: spec.dns.intervalMs,
          timeoutMs: spec.dns.timeoutMs,
          jitter: spec.jitter,
          concurrency: spec.concurrency,
          ...dnsExecutor(dnsProbe, clock),
          onResult: (r, late) => sink(r, late),
        }),
      };
    }
    let ports: Scheduler<PortJob, PortJobResult> | undefined;
    if (spec.ports !== undefined) {
      const sink = onPortResult ?? (() => undefined);
      ports = new Scheduler<PortJob, PortJobResult>({
        clock,
        intervalMs: spec.ports.intervalMs,
        timeoutMs: spec.ports.timeoutMs,
        jitter: spec.jitter,
        concurrency: spec.concurrency,
        ...portExecutor(timeouts, spec.bindAddress !== '0.0.0.0' ? spec.bindAddress : undefined),
        onResult: (r, late) => sink(r, late),
      });
    }
    const status: EngineStatus = {
      kinds: [...probes.keys()],
      timestamps: Object.fromEntries([...probes].map(([k, p]) => [k, p.timestamps])),
      ...(icmp !== undefined ? { icmp } : {}),
      ...(reflector !== undefined ? { stampPort: reflector.port } : {}),
      ...(listener !== undefined ? { tcpPort: listener.port } : {}),
      ...(dns !== undefined ? { dns: true } : {}),
      ...(ports !== undefined ? { ports: true } : {}),
    };
    return new ProbeEngine(
      scheduler,
      probes,
      reflector,
      listener,
      dns,
      ports,
      status,
      loopDelayReader(lateness),
      timeouts,
    );
  }

  /**
   * Makes the running peer probes equal to `jobs`; `departed` (peer ids, from the agent's one
   * diffPeers of this change) lets the probes drop those peers' sessions and sequence numbers.
   */
  reconcile(jobs: readonly Job[], departed: readonly string[] = []): void {
    this.scheduler.reconcile(jobs.filter((j) => this.probes.has(j.kind)));
    for (const id of departed) for (const p of this.probes.values()) p.forget(id);
  }

  /** Makes the running DNS lookups equal to `jobs` (ignored by an engine without DNS). */
  reconcileDns(jobs: readonly DnsJob[]): void {
    this.dns?.scheduler.reconcile(jobs);
  }

  /** Makes the running port connects equal to `jobs` (ignored by an engine without ports). */
  reconcilePorts(jobs: readonly PortJob[]): void {
    this.ports?.reconcile(jobs);
  }

  health(): EngineHealth {
    const r = this.reflector?.stats();
    const h: EngineHealth = {
      ...(r !== undefined
        ? {
            reflector: {
              reflected: r.reflected,
              malformed: r.malformed,
              authFailed: r.authFailed,
              loop: r.loop,
              rateLimited: r.rateLimited,
              sessions: r.sessions,
            },
          }
        : {}),
      ...(this.listener !== undefined ? { tcpAccepted: this.listener.stats().accepted } : {}),
      skipped:
        this.scheduler.stats().skipped +
        (this.dns?.scheduler.stats().skipped ?? 0) +
        (this.ports?.stats().skipped ?? 0),
      ...(this.dns !== undefined
        ? {
            dns: {
              malformed: this.dns.probe.stats().malformed,
              mismatched: this.dns.probe.stats().mismatched,
            },
          }
        : {}),
      loopDelay: this.delay.quantiles(),
    };
    this.delay.reset();
    return h;
  }

  /** Stops probing first, then closes the responders (peers see us go only at the end). */
  async stop(): Promise<void> {
    await Promise.all([this.scheduler.stop(), this.dns?.scheduler.stop(), this.ports?.stop()]);
    await Promise.all([...this.probes.values()].map((p) => p.close()));
    await this.dns?.probe.close();
    await this.reflector?.close();
    await this.listener?.close();
    this.delay.stop();
  }
}
