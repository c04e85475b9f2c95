// Runs every (peer, probe kind, size) job on its own jittered loop, with a deadline per run and
// a bound on probes in flight. reconcile() turns a new job list into started and stopped loops,
// so discovery churn never restarts the loops of peers that stayed. Lateness (how far after its
// due time a probe actually started) is reported with each result: it is the prober's own
// health, and triage holds back latency findings from a starved prober.

import pLimit, { type LimitFunction } from 'p-limit';
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { ProbeKind, ProbeResult, ProbeTarget } from '../core/types.ts';
import type { Probe } from '../probes/probe.ts';

export interface Job {
  readonly key: string;
  readonly kind: ProbeKind;
  readonly target: ProbeTarget;
}

export function jobKey(peerId: string, kind: ProbeKind, size: string): string {
  return `${peerId}|${kind}|${size}`;
}

export interface SchedulerOptions {
  readonly clock: Clock;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Fraction of the interval each gap may vary by, in [0, 0.5]. */
  readonly jitter: number;
  readonly concurrency: number;
  readonly probes: ReadonlyMap<ProbeKind, Probe>;
  readonly onResult: (result: ProbeResult, latenessMs: number) => void;
  readonly random?: () => number;
}

export interface SchedulerStats {
  readonly jobs: number;
  readonly inFlight: number;
  /** Runs skipped because the previous run of the same job was still in flight. */
  readonly skipped: number;
  readonly started: number;
}

interface Loop {
  readonly job: Job;
  dueMs: number;
  timer: TimerHandle | undefined;
  running: Promise<void> | undefined;
  stopped: boolean;
}

/** Extra time past the probe's own timeout before the scheduler gives up on it. */
const DEADLINE_GRACE_MS = 1000;

export class Scheduler {
  private readonly loops = new Map<string, Loop>();
  private readonly limit: LimitFunction;
  private readonly random: () => number;
  private skipped = 0;
  private started = 0;
  private stopping = false;
  private readonly active = new Set<Promise<ProbeResult>>();

  constructor(private readonly opts: SchedulerOptions) {
    this.limit = pLimit(opts.concurrency);
    this.random = opts.random ?? Math.random;
  }

  /** Makes the running set equal to `jobs`. Returns the keys started and stopped. */
  reconcile(jobs: readonly Job[]): { added: string[]; removed: string[] } {
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
      if (existing !== undefined && sameTarget(existing.job, job)) continue;
      if (existing !== undefined) this.stopLoop(existing);
      if (!this.opts.probes.has(job.kind)) continue;
      // A random first phase spreads jobs over the interval instead of bursting at start.
      const loop: Loop = {
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
   * probes already on the wire (each settles by its deadline at the latest).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const loop of this.loops.values()) this.stopLoop(loop);
    this.loops.clear();
    this.limit.clearQueue();
    await Promise.all([...this.active]);
  }

  private stopLoop(loop: Loop): void {
    loop.stopped = true;
    if (loop.timer !== undefined) this.opts.clock.clearTimeout(loop.timer);
    loop.timer = undefined;
  }

  private arm(loop: Loop): void {
    const delay = loop.dueMs - this.opts.clock.nowMs();
    loop.timer = this.opts.clock.setTimeout(() => this.fire(loop), delay);
  }

  private fire(loop: Loop): void {
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

  private async runOnce(loop: Loop, dueMs: number): Promise<void> {
    if (loop.stopped) return;
    const probe = this.opts.probes.get(loop.job.kind);
    if (probe === undefined) return;
    const startMs = this.opts.clock.nowMs();
    this.started++;
    const pending = this.withDeadline(probe, loop.job, startMs);
    this.active.add(pending);
    const result = await pending;
    this.active.delete(pending);
    // A result for a job that was removed meanwhile is dropped: its series are already gone.
    if (!loop.stopped) this.opts.onResult(result, Math.max(0, startMs - dueMs));
  }

  private withDeadline(probe: Probe, job: Job, startMs: number): Promise<ProbeResult> {
    const { clock, timeoutMs } = this.opts;
    return new Promise<ProbeResult>((resolve) => {
      let done = false;
      const timer = clock.setTimeout(() => {
        if (done) return;
        done = true;
        resolve({
          ok: false,
          peerId: job.target.peer.id,
          kind: job.kind,
          size: job.target.size,
          sentAtMs: startMs,
          reason: 'error',
          detail: 'probe overran its deadline',
        });
      }, timeoutMs + DEADLINE_GRACE_MS);
      probe.run(job.target, timeoutMs).then(
        (r) => {
          if (done) return;
          done = true;
          clock.clearTimeout(timer);
          resolve(r);
        },
        (e: unknown) => {
          // Probes must not reject; if one does, it is a bug reported as a typed failure.
          if (done) return;
          done = true;
          clock.clearTimeout(timer);
          resolve({
            ok: false,
            peerId: job.target.peer.id,
            kind: job.kind,
            size: job.target.size,
            sentAtMs: startMs,
            reason: 'error',
            detail: `probe rejected: ${String(e)}`,
          });
        },
      );
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
