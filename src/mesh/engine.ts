// The probe engine: the probe families' schedulers (peer probes, DNS lookups, port connects,
// each on its own; see families/registry.ts) and (optionally) the responders peers probe.
// Thread-agnostic: the agent runs every family on one worker thread (so a busy main thread can't
// skew their timestamps). Only when podmesh's timestamping addon can't load does icmp go to a
// second engine on the main thread: its fallback, the raw-socket package, polls on the main
// thread's event loop and can't live in a worker.

import { SlottedClock, type Clock } from '../core/clock.ts';
import type { EngineHealth } from '../core/engine-health.ts';
import {
  loopDelayMonitor,
  loopDelayQuantiles,
  timerLateness,
  type LoopDelayQuantiles,
  type TimerLateness,
} from '../core/loop-delay.ts';
import type { ProbeResult } from '../core/types.ts';
import { socketReopens } from '../probes/probe.ts';
import { BroadcastChannel } from 'node:worker_threads';
import { DEMO_FAULT_CHANNEL, faultFor } from '../responders/demo-faults.ts';
import { StampReflector } from '../responders/stamp-reflector.ts';
import { TcpListener } from '../responders/tcp-listener.ts';
import {
  FAMILY_NAMES,
  type EngineSpec,
  type EngineStatus,
  type Family,
  type FamilyContext,
  type FamilyName,
  type FamilyRun,
  type JobOf,
  type LogSink,
  type ResultOf,
  type ResultSinks,
} from './family.ts';
import { FAMILIES } from './families/registry.ts';
import { Scheduler, type SchedulerStats } from './scheduler.ts';

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

/** Where peer probe results go (the peer family's sink). */
export type ResultSink = (result: ProbeResult, latenessMs: number) => void;

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

/** One family running in this engine: its scheduler and what it opened, types erased. */
interface Running {
  readonly run: FamilyRun<unknown, unknown>;
  reconcile(jobs: readonly unknown[]): void;
  stats(): SchedulerStats;
  stop(): Promise<void>;
}

/** Starts `family`'s scheduler over what it opened, delivering results to its sink. */
function runFamily<F extends FamilyName>(
  run: FamilyRun<JobOf<F>, ResultOf<F>>,
  ctx: FamilyContext,
  sink: ((r: ResultOf<F>, latenessMs: number) => void) | undefined,
): Running {
  const scheduler = new Scheduler<JobOf<F>, ResultOf<F>>({
    clock: ctx.clock,
    intervalMs: run.intervalMs,
    timeoutMs: run.timeoutMs,
    jitter: ctx.spec.jitter,
    concurrency: ctx.spec.concurrency,
    ...run.executor,
    // The sink itself, not a wrapper: nothing is allocated per result.
    onResult: sink ?? noop,
  });
  return {
    run: run as FamilyRun<unknown, unknown>,
    reconcile: (jobs) => void scheduler.reconcile(jobs as readonly JobOf<F>[]),
    stats: () => scheduler.stats(),
    stop: () => scheduler.stop(),
  };
}

function noop(): void {}

export class ProbeEngine {
  private constructor(
    private readonly families: ReadonlyMap<FamilyName, Running>,
    private readonly reflector: StampReflector | undefined,
    private readonly listener: TcpListener | undefined,
    readonly status: EngineStatus,
    private readonly delay: LoopDelayReader,
    private readonly log: LogSink,
    /**
     * The engine's timers, rounded late to its slots: a timer set here (the worker's result
     * flush) shares the probes' wake-ups instead of adding its own.
     */
    readonly timers: Clock,
    /** `podmesh demo` only: where the reflector's faults arrive (demo-faults.ts). */
    private readonly faults: BroadcastChannel | undefined,
  ) {}

  /** Opens sockets and responders; throws (with the address and port) only if a bind fails. */
  static async start(
    spec: EngineSpec,
    exactClock: Clock,
    sinks: ResultSinks,
    log: LogSink,
  ): Promise<ProbeEngine> {
    const slot = spec.timerSlotMs ?? timerSlotFor(spec.intervalMs);
    // Starts are rounded early (never counted late), probes' timeouts late (never shortened).
    const lateness = slot > 0 ? timerLateness() : undefined;
    const clock =
      slot > 0 ? new SlottedClock(exactClock, slot, 'early', lateness?.record) : exactClock;
    const timeouts = clock instanceof SlottedClock ? clock.withRound('late') : exactClock;
    const authKey = spec.authKey === undefined ? undefined : Buffer.from(spec.authKey);
    const ctx: FamilyContext = { spec, clock, timeouts, authKey, log };
    let reflector: StampReflector | undefined;
    let listener: TcpListener | undefined;
    const opened: [FamilyName, FamilyRun<unknown, unknown>][] = [];
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
          maxRepliesPerSecondPerSource: r.maxRepliesPerSecondPerSource,
          reflectorPorts: r.reflectorPorts,
          maxClockSkewMs: r.maxClockSkewMs,
        });
        listener = await TcpListener.start({ address: spec.bindAddress, port: r.tcpPort });
      }
      for (const name of FAMILY_NAMES) {
        const run = await (FAMILIES[name] as Family<FamilyName>).open(ctx);
        if (run !== undefined) opened.push([name, run as FamilyRun<unknown, unknown>]);
      }
    } catch (e) {
      await Promise.all(opened.map(([, run]) => run.close()));
      await reflector?.close();
      await listener?.close();
      throw e;
    }
    const families = new Map<FamilyName, Running>();
    for (const [name, run] of opened)
      families.set(
        name,
        runFamily(
          run as FamilyRun<JobOf<FamilyName>, ResultOf<FamilyName>>,
          ctx,
          sinkOf(sinks, name),
        ),
      );
    let status: EngineStatus = {
      kinds: [],
      timestamps: {},
      ...(reflector !== undefined ? { stampPort: reflector.port } : {}),
      ...(listener !== undefined ? { tcpPort: listener.port } : {}),
      families: opened.map(([name]) => name),
    };
    for (const [, run] of opened)
      if (run.status !== undefined) status = { ...status, ...run.status };
    const faultNode = spec.responders?.demoFaultsFor;
    let faults: BroadcastChannel | undefined;
    if (faultNode !== undefined && reflector !== undefined) {
      const r = reflector;
      faults = new BroadcastChannel(DEMO_FAULT_CHANNEL);
      faults.onmessage = (e) => r.setFault(faultFor((e as { data: unknown }).data, faultNode));
      // The channel must not keep the engine's thread alive.
      faults.unref();
    }
    return new ProbeEngine(
      families,
      reflector,
      listener,
      status,
      loopDelayReader(lateness),
      log,
      timeouts,
      faults,
    );
  }

  /**
   * Makes the running jobs of `family` equal to `jobs` (ignored by an engine without that
   * family). `departed` (peer ids, from the agent's one diffPeers of this change) lets the
   * family drop those peers' state (probe sessions, sequence numbers).
   */
  reconcile<F extends FamilyName>(
    family: F,
    jobs: readonly JobOf<F>[],
    departed: readonly string[] = [],
  ): void {
    const f = this.families.get(family);
    if (f === undefined) return;
    f.reconcile(jobs);
    if (departed.length > 0) f.run.forget?.(departed);
  }

  /** Socket reopens already logged (the thread's tally is cumulative). */
  private reopensLogged = 0;

  health(): EngineHealth {
    const r = this.reflector?.stats();
    const reopens = socketReopens.totals();
    const reopened = reopens.stamp_sender + reopens.stamp_reflector + reopens.icmp;
    if (reopened > this.reopensLogged) {
      // A socket libuv stopped polling would otherwise go deaf without a word.
      this.log(
        'warn',
        `${reopened - this.reopensLogged} probe socket(s) failed and were reopened`,
        {
          last: socketReopens.lastFailure(),
          total: reopened,
        },
      );
      this.reopensLogged = reopened;
    }
    let skipped = 0;
    let counts: EngineHealth = {};
    for (const f of this.families.values()) {
      skipped += f.stats().skipped;
      const h = f.run.health?.();
      if (h !== undefined) counts = { ...counts, ...h };
    }
    const h: EngineHealth = {
      ...(r !== undefined
        ? {
            reflector: {
              reflected: r.reflected,
              malformed: r.malformed,
              authFailed: r.authFailed,
              loop: r.loop,
              rateLimited: r.rateLimited,
              verifyLimited: r.verifyLimited,
              stale: r.stale,
              replayed: r.replayed,
              sessions: r.sessions,
            },
          }
        : {}),
      ...(this.listener !== undefined ? { tcpAccepted: this.listener.stats().accepted } : {}),
      skipped,
      ...counts,
      socketReopens: reopens,
      loopDelay: this.delay.quantiles(),
    };
    this.delay.reset();
    return h;
  }

  /** Stops probing first, then closes the responders (peers see us go only at the end). */
  async stop(): Promise<void> {
    const families = [...this.families.values()];
    await Promise.all(families.map((f) => f.stop()));
    await Promise.all(families.map((f) => f.run.close()));
    this.faults?.close();
    await this.reflector?.close();
    await this.listener?.close();
    this.delay.stop();
  }
}

/** The sink of one family, typed for it. */
function sinkOf<F extends FamilyName>(
  sinks: ResultSinks,
  family: F,
): ((r: ResultOf<F>, latenessMs: number) => void) | undefined {
  return sinks[family];
}
