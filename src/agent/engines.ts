// Engine placement: which engine runs which probe kinds and families, and the agent's one handle
// on all of them. Every kind the config turns on (probes.<kind>) and every family runs on one
// worker thread, but a kind whose fallback needs the main thread (icmp: raw-socket polls on the
// main thread's event loop) runs there, in a second engine, when the timestamping addon can't
// load. With engine.worker off, everything runs in one main-thread engine.

import type { Clock } from '../core/clock.ts';
import type { EngineHealth } from '../core/engine-health.ts';
import { PROBE_KINDS, type ProbeKind } from '../core/types.ts';
import type { Config } from '../config/load.ts';
import { LocalEngine, RemoteEngine, type EngineHandle } from '../mesh/engine-client.ts';
import type {
  EngineSpec,
  FamilyName,
  JobOf,
  KindState,
  LogSink,
  ResultSinks,
} from '../mesh/family.ts';
import { loadTimestamping, type TimestampInfo } from '../native/timestamping.ts';
import { PROBE_REGISTRY } from '../probes/registry.ts';

/** Whether icmp runs and where: the engine thread, or the main thread for the raw-socket fallback. */
export interface IcmpState {
  readonly enabled: boolean;
  readonly reason: 'ok' | 'permission' | 'disabled' | 'error';
  readonly detail: string;
  readonly thread: 'engine' | 'main' | null;
}

interface Placed {
  readonly name: 'worker' | 'main';
  readonly handle: EngineHandle;
  readonly worker: boolean;
}

/** The families' own settings for this config: a family the config turns off is left out. */
export interface FamilySettings {
  readonly dns?: EngineSpec['dns'];
  readonly ports?: EngineSpec['ports'];
  readonly apiserver?: EngineSpec['apiserver'];
}

export class Engines {
  /** Bound responder ports (meaningful when 0 was asked for). */
  readonly stampPort: number;
  readonly tcpPort: number;
  readonly icmp: IcmpState;
  /** Where each running kind's timestamps come from. */
  readonly timestamps: Partial<Record<ProbeKind, TimestampInfo>>;
  /** The last engine-thread event-loop p99 seen at a health read, seconds. */
  private lastEngineLoopP99: number | null = null;

  private constructor(private readonly placed: readonly Placed[]) {
    let stampPort = 0;
    let tcpPort = 0;
    let icmp: IcmpState = {
      enabled: false,
      reason: 'disabled',
      detail: 'probes.icmp is false',
      thread: null,
    };
    const timestamps: Partial<Record<ProbeKind, TimestampInfo>> = {};
    for (const e of placed) {
      const st = e.handle.status;
      if (st.stampPort !== undefined) stampPort = st.stampPort;
      if (st.tcpPort !== undefined) tcpPort = st.tcpPort;
      if (st.icmp !== undefined) icmp = icmpState(st.icmp, e.worker);
      Object.assign(timestamps, st.timestamps);
    }
    this.stampPort = stampPort;
    this.tcpPort = tcpPort;
    this.icmp = icmp;
    this.timestamps = timestamps;
  }

  /** Starts the engines this config asks for; on failure stops those already started. */
  static async start(
    cfg: Config,
    families: FamilySettings,
    clock: Clock,
    sinks: ResultSinks,
    log: LogSink,
    /** `podmesh demo` only: the node whose reflector takes the demo's faults. */
    demoFaultsFor?: string,
  ): Promise<Engines> {
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
      maxRepliesPerSecondPerSource: cfg.stamp.maxRepliesPerSecondPerSource,
      reflectorPorts: cfg.stamp.reflectorPorts,
      maxClockSkewMs: cfg.stamp.maxClockSkewMs,
      ...(demoFaultsFor !== undefined ? { demoFaultsFor } : {}),
    };
    const wanted = PROBE_KINDS.filter((k) => cfg.probes[k]);
    const anywhere = wanted.filter((k) => PROBE_REGISTRY[k].mainThreadWithoutAddon !== true);
    // With the timestamping addon, these run on the worker too (icmp: ping or raw socket, kernel
    // times); without it, their fallback only works on the main thread.
    const mainOnly = wanted.filter((k) => PROBE_REGISTRY[k].mainThreadWithoutAddon === true);
    const kinds = [...anywhere, ...mainOnly];
    const placed: Placed[] = [];
    try {
      const addon = loadTimestamping().ok;
      if (cfg.engine.worker) {
        const spec: EngineSpec = {
          ...base,
          kinds: addon ? kinds : anywhere,
          responders,
          ...families,
        };
        placed.push({
          name: 'worker',
          handle: await RemoteEngine.start(spec, sinks, log),
          worker: true,
        });
        if (!addon && mainOnly.length > 0)
          placed.push({
            name: 'main',
            handle: await LocalEngine.start(
              { ...base, kinds: mainOnly },
              clock,
              { peer: sinks.peer },
              log,
            ),
            worker: false,
          });
      } else {
        placed.push({
          name: 'main',
          handle: await LocalEngine.start(
            { ...base, kinds, responders, ...families },
            clock,
            sinks,
            log,
          ),
          worker: false,
        });
      }
    } catch (e) {
      await Promise.all(placed.map((p) => p.handle.stop()));
      throw e;
    }
    return new Engines(placed);
  }

  /** The kinds that actually run, over every engine. */
  kinds(): Set<ProbeKind> {
    const kinds = new Set<ProbeKind>();
    for (const e of this.placed) for (const k of e.handle.status.kinds) kinds.add(k);
    return kinds;
  }

  /** Hands one family's jobs to every engine that runs the family. */
  reconcile<F extends FamilyName>(
    family: F,
    jobs: readonly JobOf<F>[],
    departed?: readonly string[],
  ): void {
    for (const e of this.placed)
      if (e.handle.status.families.includes(family)) e.handle.reconcile(family, jobs, departed);
  }

  /** Each engine's latest health, for the metrics (read at every scrape). */
  health(): { name: string; worker: boolean; health: EngineHealth }[] {
    const out: { name: string; worker: boolean; health: EngineHealth }[] = [];
    for (const e of this.placed) {
      const h = e.handle.health();
      if (h === undefined) continue;
      if (h.loopDelay !== undefined && e.worker) this.lastEngineLoopP99 = h.loopDelay.p99;
      out.push({ name: e.name, worker: e.worker, health: h });
    }
    return out;
  }

  /** The engine thread's event-loop p99, seconds: from the last scrape, else read now. */
  engineLoopP99(): number | null {
    let p99 = this.lastEngineLoopP99;
    if (p99 === null)
      for (const e of this.placed) {
        const d = e.worker ? e.handle.health()?.loopDelay : undefined;
        if (d !== undefined) p99 = d.p99;
      }
    return p99;
  }

  /** For tests: kill the worker engine thread the way a crash would. */
  async crashForTest(): Promise<void> {
    for (const e of this.placed)
      if (e.handle instanceof RemoteEngine) await e.handle.crashForTest();
  }

  stop(): Promise<void> {
    return Promise.all(this.placed.map((e) => e.handle.stop())).then(() => undefined);
  }
}

function icmpState(st: KindState, onWorker: boolean): IcmpState {
  return {
    enabled: st.enabled,
    reason: st.reason,
    detail: st.detail,
    thread: onWorker ? 'engine' : 'main',
  };
}
