// Runs every job on its own jittered loop, with a deadline per run and a bound on runs in
// flight. What a run does is injected (execute), so one scheduler drives peer probes
// ((peer, probe kind, size) jobs) and another DNS lookups. reconcile() turns a new job list
// into started and stopped loops, so discovery churn never restarts the loops of jobs that
// stayed. Lateness (how far after its due time a run actually started) is reported with each
// result: it is the prober's own health, and triage holds back latency findings from a starved
// prober.

import pLimit, { type LimitFunction } from 'p-limit';
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { ProbeKind, ProbeResult, ProbeTarget } from '../core/types.ts';
import type { Probe } from '../probes/probe.ts';

/** What the scheduler needs of any job: a stable key. */
export interface ScheduledJob {
  readonly key: string;
}

/** A peer probe job: one (peer, probe kind, size). */
export interface Job extends ScheduledJob {
  readonly kind: ProbeKind;
  readonly target: ProbeTarget;
}

export function jobKey(peerId: string, kind: ProbeKind, size: string): string {
  return `${peerId}|${kind}|${size}`;
}

/** How the scheduler runs jobs of type J into results of type R. */
export interface Executor<J extends ScheduledJob, R> {
  /** One run; should settle within timeoutMs and never reject (a rejection becomes overran). */
  readonly execute: (job: J, timeoutMs: number) => Promise<R>;
  /** The result of a run cut off at its deadline (or that rejected), started at startMs. */
  readonly overran: (job: J, startMs: number, detail: string) => R;
  /** Whether a job with the same key changed enough to restart its loop; default: never. */
  readonly changed?: (before: J, after: J) => boolean;
  /** Jobs this scheduler can't run are left out of reconcile; default: all accepted. */
  readonly accepts?: (job: J) => boolean;
}

export interface SchedulerOptions<J extends ScheduledJob = Job, R = ProbeResult> extends Executor<
  J,
  R
> {
  readonly clock: Clock;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Fraction of the interval each gap may vary by, in [0, 0.5]. */
  readonly jitter: number;
  readonly concurrency: number;
  readonly onResult: (result: R, latenessMs: number, job: J) => void;
  readonly random?: () => number;
}

/** The executor for peer probes: runs each job through the probe of its kind. */
export function probeExecutor(probes: ReadonlyMap<ProbeKind, Probe>): Executor<Job, ProbeResult> {
  const failure = (job: Job, startMs: number, detail: string): ProbeResult => ({
    ok: false,
    peerId: job.target.peer.id,
    kind: job.kind,
    size: job.target.size,
    sentAtMs: startMs,
    reason: 'error',
    detail,
  });
  return {
    execute: (job, timeoutMs) => {
      const probe = probes.get(job.kind);
      if (probe === undefined) return Promise.reject(new Error(`no ${job.kind} probe`));
      return probe.run(job.target, timeoutMs);
    },
    overran: failure,
    changed: (a, b) => !sameTarget(a, b),
    accepts: (job) => probes.has(job.kind),
  };
}

export interface SchedulerStats {
  readonly jobs: number;
  readonly inFlight: number;
  /** Runs skipped because the previous run of the same job was still in flight. */
  readonly skipped: number;
  readonly started: number;
}

interface Loop<J> {
  readonly job: J;
  dueMs: number;
  timer: TimerHandle | undefined;
  running: Promise<void> | undefined;
  stopped: boolean;
}

/** Extra time past the run's own timeout before the scheduler gives up on it. */
const DEADLINE_GRACE_MS = 1000;

export class Scheduler<J extends ScheduledJob = Job, R = ProbeResult> {
  private readonly loops = new Map<string, Loop<J>>();
  private readonly limit: LimitFunction;
  private readonly random: () => number;
  private skipped = 0;
  private started = 0;
  private stopping = false;
  private readonly active = new Set<Promise<R>>();

  constructor(private readonly opts: SchedulerOptions<J, R>) {
    this.limit = pLimit(opts.concurrency);
    this.random = opts.random ?? Math.random;
  }

  /** Makes the running set equal to `jobs`. Returns the keys started and stopped. */
  reconcile(jobs: readonly J[]): { added: string[]; removed: string[] } {
    const wanted = new Map(jobs.map((j) => [j.key, j]));
    const removed: string[] = [];
    for (const [key, loop] of this.loops) {
      if (!wanted.has(key)) {
        this.stopLoop(loop);
        this.loops.delete(key);
        removed.push(key);
      }
    }
    const added: string[] = [];
    for (const [key, job] of wanted) {
      const existing = this.loops.get(key);
      if (existing !== undefined && !(this.opts.changed?.(existing.job, job) ?? false)) continue;
      if (existing !== undefined) this.stopLoop(existing);
      if (this.opts.accepts !== undefined && !this.opts.accepts(job)) continue;
      // A random first phase spreads jobs over the interval instead of bursting at start.
      const loop: Loop<J> = {
        job,
        dueMs: this.opts.clock.nowMs() + this.random() * this.opts.intervalMs,
        timer: undefined,
        running: undefined,
        stopped: false,
      };
      this.loops.set(key, loop);
      this.arm(loop);
      if (existing === undefined) added.push(key);
    }
    return { added, removed };
  }

  stats(): SchedulerStats {
    let inFlight = 0;
    for (const l of this.loops.values()) if (l.running !== undefined) inFlight++;
    return { jobs: this.loops.size, inFlight, skipped: this.skipped, started: this.started };
  }

  /**
   * Stops every loop, drops runs still queued behind the concurrency bound, and waits for the
   * runs already on the wire (each settles by its deadline at the latest).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const loop of this.loops.values()) this.stopLoop(loop);
    this.loops.clear();
    this.limit.clearQueue();
    await Promise.all([...this.active]);
  }

  private stopLoop(loop: Loop<J>): void {
    loop.stopped = true;
    if (loop.timer !== undefined) this.opts.clock.clearTimeout(loop.timer);
    loop.timer = undefined;
  }

  private arm(loop: Loop<J>): void {
    const delay = loop.dueMs - this.opts.clock.nowMs();
    loop.timer = this.opts.clock.setTimeout(() => this.fire(loop), delay);
  }

  private fire(loop: Loop<J>): void {
    loop.timer = undefined;
    if (loop.stopped || this.stopping) return;
    const due = loop.dueMs;
    const { intervalMs, jitter } = this.opts;
    let next = due + intervalMs * (1 + jitter * (2 * this.random() - 1));
    const now = this.opts.clock.nowMs();
    // After a long stall, resume on the interval rather than firing a burst of missed runs.
    if (next < now) next = now + intervalMs * this.random();
    loop.dueMs = next;
    if (loop.running !== undefined) {
      this.skipped++;
    } else {
      loop.running = this.limit(() => this.runOnce(loop, due)).finally(() => {
        loop.running = undefined;
      });
    }
    this.arm(loop);
  }

  private async runOnce(loop: Loop<J>, dueMs: number): Promise<void> {
    if (loop.stopped) return;
    const startMs = this.opts.clock.nowMs();
    this.started++;
    const pending = this.withDeadline(loop.job, startMs);
    this.active.add(pending);
    const result = await pending;
    this.active.delete(pending);
    // A result for a job that was removed meanwhile is dropped: its series are already gone.
    if (!loop.stopped) this.opts.onResult(result, Math.max(0, startMs - dueMs), loop.job);
  }

  private withDeadline(job: J, startMs: number): Promise<R> {
    const { clock, timeoutMs, execute, overran } = this.opts;
    return new Promise<R>((resolve) => {
      let done = false;
      const timer = clock.setTimeout(() => {
        if (done) return;
        done = true;
        resolve(overran(job, startMs, 'probe overran its deadline'));
      }, timeoutMs + DEADLINE_GRACE_MS);
      const settle = (r: R): void => {
        if (done) return;
        done = true;
        clock.clearTimeout(timer);
        resolve(r);
      };
      let running: Promise<R>;
      try {
        running = execute(job, timeoutMs);
      } catch (e) {
        running = Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
      running.then(settle, (e: unknown) => {
        // Runs must not reject; if one does, it is a bug reported as a typed result.
        settle(overran(job, startMs, `probe rejected: ${String(e)}`));
      });
    });
  }
}

function sameTarget(a: Job, b: Job): boolean {
  const pa = a.target.peer;
  const pb = b.target.peer;
  return (
    a.target.bytes === b.target.bytes &&
    pa.address === pb.address &&
    pa.stampPort === pb.stampPort &&
    pa.tcpPort === pb.tcpPort &&
    pa.zone === pb.zone
  );
}
