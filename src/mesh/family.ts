// The engine's vocabulary: a probe family is one scheduled job pipeline (peer probes, DNS
// lookups, port connects), declared once in its own file under families/ (its plan, its
// executor, what it opens in an engine and the health it counts) and listed in
// families/registry.ts. The engine, its worker protocol and the agent speak of families only
// through the maps below, so a family is added in one place instead of five classes.

import type { Clock } from '../core/clock.ts';
import type { EngineHealth } from '../core/engine-health.ts';
import type { ProbeKind, ProbeResult } from '../core/types.ts';
import type { DnsJob, DnsJobResult } from '../probes/dns-job.ts';
import type { PeerJob } from '../probes/peer-job.ts';
import type { PortJob, PortJobResult } from '../probes/port-job.ts';
import type { ApiServerJob, ApiServerJobResult } from '../probes/apiserver-job.ts';
import type { TimestampInfo } from '../probes/probe.ts';
import type { Executor } from './scheduler.ts';

export const FAMILY_NAMES = ['peer', 'dns', 'port', 'apiserver'] as const;
export type FamilyName = (typeof FAMILY_NAMES)[number];

/** Each family's job. */
export interface FamilyJobs {
  peer: PeerJob;
  dns: DnsJob;
  port: PortJob;
  apiserver: ApiServerJob;
}

/** Each family's result: what one run of one job resolves to. */
export interface FamilyResults {
  peer: ProbeResult;
  dns: DnsJobResult;
  port: PortJobResult;
  apiserver: ApiServerJobResult;
}

export type JobOf<F extends FamilyName> = FamilyJobs[F];
export type ResultOf<F extends FamilyName> = FamilyResults[F];

/** Where results go: one sink per family, each called with the run's lateness (ms). */
export type ResultSinks = {
  readonly [F in FamilyName]?: (result: ResultOf<F>, latenessMs: number) => void;
};

export type LogSink = (
  level: 'info' | 'warn' | 'error',
  msg: string,
  fields?: Record<string, unknown>,
) => void;

/** Everything an engine needs; plain data so it can cross to a worker thread. */
export interface EngineSpec {
  /** The peer probe kinds to open (see src/probes/registry.ts). */
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
    readonly maxRepliesPerSecondPerSource?: number;
    readonly reflectorPorts?: readonly number[];
    readonly maxClockSkewMs?: number;
    /**
     * `podmesh demo` only: this node's name, and the reflector takes faults from the demo's
     * channel (src/responders/demo-faults.ts). Set from AgentOptions.demoFaults, never a setting.
     */
    readonly demoFaultsFor?: string;
  };
  /** Run the dns family too, on its own schedule. */
  readonly dns?: {
    readonly intervalMs: number;
    readonly timeoutMs: number;
  };
  /** Run the port family too, on its own schedule. */
  readonly ports?: {
    readonly intervalMs: number;
    readonly timeoutMs: number;
  };
  /** Run the apiserver family too, on its own schedule. */
  readonly apiserver?: {
    readonly intervalMs: number;
    readonly timeoutMs: number;
  };
}

/** Whether a peer probe kind could open, and why not. */
export interface KindState {
  readonly enabled: boolean;
  readonly reason: 'ok' | 'permission' | 'error';
  readonly detail: string;
}

export interface EngineStatus {
  /** Kinds that actually run (icmp drops out without CAP_NET_RAW). */
  readonly kinds: ProbeKind[];
  readonly icmp?: KindState;
  /** Where each running kind's timestamps come from (kernel, or user space and why). */
  readonly timestamps: Partial<Record<ProbeKind, TimestampInfo>>;
  /** Bound ports of the responders (meaningful when 0 was asked for). */
  readonly stampPort?: number;
  readonly tcpPort?: number;
  /** The families this engine runs: reconcile() of any other family is ignored. */
  readonly families: readonly FamilyName[];
}

/** What a family gets to open its part of one engine. */
export interface FamilyContext {
  readonly spec: EngineSpec;
  /** Scheduler clock: slotted, starts rounded early (never counted late). */
  readonly clock: Clock;
  /** Timeout clock: slotted, rounded late (a timeout is never shortened). */
  readonly timeouts: Clock;
  readonly authKey: Buffer | undefined;
  readonly log: LogSink;
}

/** A family open in one engine: how to run its jobs and what it holds. */
export interface FamilyRun<J, R> {
  readonly executor: Executor<J & { readonly key: string }, R>;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** What it adds to the engine's status. */
  readonly status?: Pick<EngineStatus, 'kinds' | 'timestamps'> &
    Pick<Partial<EngineStatus>, 'icmp'>;
  /** Drops per-peer state of peers that left (ids from the agent's one diffPeers). */
  forget?(departed: readonly string[]): void;
  /** Its cumulative health counts. */
  health?(): EngineHealth;
  /** Closes what it opened; its scheduler is stopped first. */
  close(): Promise<void>;
}

export interface Family<F extends FamilyName> {
  readonly name: F;
  /**
   * Opens what the family needs in one engine, or undefined when the spec doesn't ask for it.
   * Throws (having closed what it opened) only if a bind fails.
   */
  open(ctx: FamilyContext): Promise<FamilyRun<JobOf<F>, ResultOf<F>> | undefined>;
}

/** The families other than peer: their results cross from a worker as plain data. */
export type PlainFamily = Exclude<FamilyName, 'peer'>;
export const PLAIN_FAMILIES = FAMILY_NAMES.filter((f): f is PlainFamily => f !== 'peer');

/** Results of the plain families held for one message from the worker. */
export type QueuedResults = { [F in PlainFamily]?: [ResultOf<F>, number][] };

/** Hands queued results to their family's sink. */
export function deliverQueued(queued: QueuedResults, sinks: ResultSinks): void {
  for (const f of PLAIN_FAMILIES) {
    // Each list goes to the sink of the same family (TypeScript can't follow that through f).
    const sink = sinks[f] as ((r: ResultOf<PlainFamily>, latenessMs: number) => void) | undefined;
    const list = queued[f];
    if (sink !== undefined && list !== undefined) for (const [r, late] of list) sink(r, late);
  }
}
