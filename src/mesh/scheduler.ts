// Runs every job on its own jittered loop, with a deadline per run and a bound on runs in
// flight. At 1,000 runs a second the scheduler's own cost matters, so a run costs one timer on
// the (slotted) clock and the probe's own promise: deadlines are checked by one sweep per
// scheduler and a run only meets p-limit when it has to wait for a slot. What a run does is
// injected (an Executor, declared by each probe family under families/), so one scheduler
// drives peer probes ((peer, probe kind, size) jobs), another DNS lookups, another port
// connects. reconcile() turns a new job list into started and stopped loops, so discovery churn
// never restarts the loops of jobs that stayed. Lateness (how far after its due time a run
// actually started) is reported with each result: it is the prober's own health, and triage holds
// back latency findings from a starved prober.
//
// A job has one run on the wire at a time. A run that comes due while the job's last run is still
// out is owed, not skipped: it starts the moment that run ends. Otherwise a probe whose timeout is
// its interval (the default: both 1 s, with jitter) to a peer that stopped answering ran only
// every other interval, and the run of failures that proves a cut (analysis/fresh.ts) took twice
// as long. At most one run is owed per job (one more due meanwhile is skipped), and only behind a
// run on the wire, not one still waiting for a slot: a starved prober sheds its extra runs as
// before, so nothing piles up.

import pLimit, { type LimitFunction } from 'p-limit';
import type { Clock, TimerHandle } from '../core/clock.ts';

/** What the scheduler needs of any job: a stable key. */
export interface ScheduledJob {
  readonly key: string;
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

export interface SchedulerOptions<J extends ScheduledJob, R> extends Executor<J, R> {
  readonly clock: Clock;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Fraction of the interval each gap may vary by, in [0, 0.5]. */
  readonly jitter: number;
  readonly concurrency: number;
  readonly onResult: (result: R, latenessMs: number, job: J) => void;
  readonly random?: () => number;
}

export interface SchedulerStats {
  readonly jobs: number;
  /** Jobs with a run on the wire or waiting for a slot. */
  readonly inFlight: number;
  /**
   * Runs skipped because the previous run of the same job was still in flight (waiting for a
   * slot, or on the wire with another run already owed behind it).
   */
  readonly skipped: number;
  readonly started: number;
}

/**
 * Extra time past the run's own timeout before the scheduler gives up on it: a run that has not
 * settled by then (or rejected, or threw) becomes an `overran` result, at timeout + grace at the
 * latest (as far as the event loop keeps time).
 */
export const DEADLINE_GRACE_MS = 1000;

/**
 * How often one sweep per scheduler looks for runs past their deadline, instead of a timer per
 * run. A run is cut off at the first sweep once it is timeout + grace - sweep old, so between
 * that and timeout + grace.
 */
export const DEADLINE_SWEEP_MS = 250;

/**
 * A sweep that runs more than a sweep period late (the event loop was held) cuts nothing off,
 * at most this many times in a row: the runs' own timeouts, which read the sockets first, judge
 * them (see sweep()).
 */
const MAX_HELD_SWEEPS = 4;

/**
 * One job's loop. It is also the record of its run: a job has at most one run at a time (a run
 * due while the last is on the wire is owed and starts when it ends; see the header), so the hot
 * path allocates nothing per run.
 */
interface Loop<J, R> {
  readonly job: J;
  /** When the next run is due. */
  dueMs: number;
  timer: TimerHandle | undefined;
  /** The timer callback, made once per loop rather than once per run. */
  readonly fire: () => void;
  state: 'idle' | 'waiting' | 'running';
  /** A run came due while this one was on the wire: it starts as soon as this one ends. */
  owed: boolean;
  stopped: boolean;
  /** When the current run was due and when it started (its lateness and its deadline). */
  runDueMs: number;
  startMs: number;
  /**
   * Settlement handlers for the current run. A run cut off at its deadline may still settle
   * later: cutting it off replaces these, and the old ones then find the epoch moved on.
   */
  epoch: number;
  onValue: (r: R) => void;
  onError: (e: unknown) => void;
  /** Running loops form a list in start order, so the deadline sweep reads only its head. */
  prev: Loop<J, R> | undefined;
  next: Loop<J, R> | undefined;
}

export class Scheduler<J extends ScheduledJob, R> {
  private readonly loops = new Map<string, Loop<J, R>>();
  private readonly random: () => number;
  /**
   * The line of runs that must wait for a slot, in FIFO order; clearQueue() drops it on stop.
   * A run that finds a free slot and nobody waiting starts at once without it (that is every run
   * of an unsaturated prober), which spares p-limit's promises and microtask hops on the hot
   * path. It admits one waiter at a time; the bound itself is inFlight.
   */
  private readonly line: LimitFunction = pLimit(1);
  /** Runs in the line (queued in p-limit or at its head); once stopped, never read again. */
  private waiting = 0;
  /** Wakes the waiter at the head of the line when a slot frees. */
  private wake: (() => void) | undefined;
  private inFlight = 0;
  private oldest: Loop<J, R> | undefined;
  private newest: Loop<J, R> | undefined;
  private sweepTimer: TimerHandle | undefined;
  /** When the armed sweep is due: one that runs much later than that finds the loop was held. */
  private sweepDueMs = 0;
  /** Sweeps in a row put off because the loop was held; bounded, so a stuck run is still cut. */
  private heldSweeps = 0;
  private skipped = 0;
  private started = 0;
  private stopping = false;
  private drained: { promise: Promise<void>; resolve: () => void } | undefined;

  constructor(private readonly opts: SchedulerOptions<J, R>) {
    if (!(Number.isInteger(opts.concurrency) || opts.concurrency === Infinity))
      throw new TypeError(`concurrency must be a whole number, got ${opts.concurrency}`);
    if (opts.concurrency < 1)
      throw new TypeError(`concurrency must be at least 1, got ${opts.concurrency}`);
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
      if (this.opts.accepts !== undefined && !this.opts.accepts(job)) {
        // A changed job this scheduler no longer takes is gone, not left as a dead loop.
        if (existing !== undefined) {
          this.loops.delete(key);
          removed.push(key);
        }
        continue;
      }
      // A random first phase spreads jobs over the interval instead of bursting at start.
      const now = this.opts.clock.nowMs();
      const loop = this.newLoop(job, now + this.random() * this.opts.intervalMs);
      this.loops.set(key, loop);
      this.arm(loop, now);
      if (existing === undefined) added.push(key);
    }
    return { added, removed };
  }

  stats(): SchedulerStats {
    let inFlight = 0;
    for (const l of this.loops.values()) if (l.state !== 'idle') inFlight++;
    return { jobs: this.loops.size, inFlight, skipped: this.skipped, started: this.started };
  }

  /**
   * Stops every loop, drops runs still waiting for a slot, and waits for the runs already on
   * the wire (each settles, or is cut off, by timeout + grace at the latest).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const loop of this.loops.values()) this.stopLoop(loop);
    this.loops.clear();
    // The run at the head of the line, if any, waits for a slot: it is let go, unstarted, when
    // the runs on the wire finish.
    this.line.clearQueue();
    if (this.inFlight === 0) {
      this.stopSweep();
      return;
    }
    if (this.drained === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.drained = { promise, resolve };
    }
    await this.drained.promise;
  }

  private newLoop(job: J, dueMs: number): Loop<J, R> {
    const loop: Loop<J, R> = {
      job,
      dueMs,
      timer: undefined,
      fire: () => this.fire(loop),
      state: 'idle',
      owed: false,
      stopped: false,
      runDueMs: 0,
      startMs: 0,
      epoch: 0,
      onValue: noop,
      onError: noop,
      prev: undefined,
      next: undefined,
    };
    this.newHandlers(loop);
    return loop;
  }

  private newHandlers(loop: Loop<J, R>): void {
    const epoch = ++loop.epoch;
    loop.onValue = (r) => {
      if (loop.epoch === epoch) this.finish(loop, r);
    };
    loop.onError = (e) => {
      // Runs must not reject; if one does, it is a bug reported as a typed result.
      if (loop.epoch === epoch)
        this.finish(
          loop,
          this.opts.overran(loop.job, loop.startMs, `probe rejected: ${String(e)}`),
        );
    };
  }

  private stopLoop(loop: Loop<J, R>): void {
    loop.stopped = true;
    if (loop.timer !== undefined) this.opts.clock.clearTimeout(loop.timer);
    loop.timer = undefined;
  }

  private arm(loop: Loop<J, R>, nowMs: number): void {
    loop.timer = this.opts.clock.setTimeout(loop.fire, loop.dueMs - nowMs);
  }

  private fire(loop: Loop<J, R>): void {
    loop.timer = undefined;
    if (loop.stopped || this.stopping) return;
    const due = loop.dueMs;
    const { intervalMs, jitter } = this.opts;
    let next = due + intervalMs * (1 + jitter * (2 * this.random() - 1));
    const now = this.opts.clock.nowMs();
    // After a long stall, resume on the interval rather than firing a burst of missed runs.
    if (next < now) next = now + intervalMs * this.random();
    loop.dueMs = next;
    if (loop.state === 'idle') {
      loop.runDueMs = due;
      this.enqueue(loop, now);
    } else if (loop.state === 'running' && !loop.owed) {
      loop.owed = true;
    } else {
      this.skipped++;
    }
    this.arm(loop, now);
  }

  /** Starts an idle loop's run now if a slot is free and nobody waits, else puts it in line. */
  private enqueue(loop: Loop<J, R>, nowMs: number): void {
    if (this.inFlight < this.opts.concurrency && this.waiting === 0) {
      this.begin(loop, nowMs);
    } else {
      loop.state = 'waiting';
      this.waiting++;
      void this.line(() => this.admit(loop));
    }
  }

  /** Called by the line for the waiter at its head; resolves once that waiter got a slot. */
  private admit(loop: Loop<J, R>): Promise<void> | undefined {
    if (this.inFlight < this.opts.concurrency || loop.stopped || this.stopping) {
      this.begin(loop, this.opts.clock.nowMs());
      return undefined;
    }
    return new Promise<void>((resolve) => {
      this.wake = resolve;
    }).then(() => this.begin(loop, this.opts.clock.nowMs()));
  }

  private begin(loop: Loop<J, R>, nowMs: number): void {
    if (loop.state === 'waiting') this.waiting--;
    if (loop.stopped || this.stopping) {
      loop.state = 'idle';
      return;
    }
    const { execute, timeoutMs } = this.opts;
    loop.state = 'running';
    loop.startMs = nowMs;
    this.started++;
    this.inFlight++;
    loop.prev = this.newest;
    loop.next = undefined;
    if (this.newest !== undefined) this.newest.next = loop;
    else this.oldest = loop;
    this.newest = loop;
    if (this.sweepTimer === undefined) this.armSweep(nowMs);
    // The probe's own promise carries the run: no wrapper, no per-run closure.
    try {
      execute(loop.job, timeoutMs).then(loop.onValue, loop.onError);
    } catch (e) {
      // A synchronous throw (or something that is not a promise) is reported like a rejection,
      // and asynchronously like every other result.
      const onError = loop.onError;
      queueMicrotask(() => onError(e));
    }
  }

  /** The run of `loop` is over (settled, rejected or cut off): free its slot, report it. */
  private finish(loop: Loop<J, R>, result: R): void {
    if (loop.state !== 'running') return;
    loop.state = 'idle';
    if (loop.prev !== undefined) loop.prev.next = loop.next;
    else this.oldest = loop.next;
    if (loop.next !== undefined) loop.next.prev = loop.prev;
    else this.newest = loop.prev;
    loop.prev = loop.next = undefined;
    this.inFlight--;
    const wake = this.wake;
    if (wake !== undefined) {
      this.wake = undefined;
      wake();
    }
    if (this.inFlight === 0 && this.drained !== undefined) {
      this.stopSweep();
      this.drained.resolve();
    }
    // A result for a job that was removed meanwhile is dropped: its series are already gone.
    if (!loop.stopped)
      this.opts.onResult(result, Math.max(0, loop.startMs - loop.runDueMs), loop.job);
    if (loop.owed && loop.state === 'idle') {
      loop.owed = false;
      if (loop.stopped || this.stopping) return;
      // Its lateness counts from now: waiting for the job's own last run is not the prober's
      // starvation (a peer that stopped answering would otherwise read as a late prober).
      const now = this.opts.clock.nowMs();
      loop.runDueMs = now;
      this.enqueue(loop, now);
    }
  }

  private armSweep(nowMs: number): void {
    this.sweepDueMs = nowMs + DEADLINE_SWEEP_MS;
    this.sweepTimer = this.opts.clock.setTimeout(this.sweep, DEADLINE_SWEEP_MS);
  }

  private readonly sweep = (): void => {
    this.sweepTimer = undefined;
    const { clock, timeoutMs, overran } = this.opts;
    const now = clock.nowMs();
    if (now - this.sweepDueMs > DEADLINE_SWEEP_MS && this.heldSweeps < MAX_HELD_SWEEPS) {
      // The event loop was held past this sweep: its timers run before the sockets are read,
      // so runs whose answers wait unread would be cut off. Their own timeouts judge them
      // first (after the sockets are drained); a sweep on time cuts off what is still out.
      this.heldSweeps++;
      this.armSweep(now);
      return;
    }
    this.heldSweeps = 0;
    const cutoff = now - (timeoutMs + DEADLINE_GRACE_MS - DEADLINE_SWEEP_MS);
    for (let l = this.oldest; l !== undefined && l.startMs <= cutoff; l = this.oldest) {
      // Whatever the cut-off run does later lands on the old handlers and is ignored.
      this.newHandlers(l);
      this.finish(l, overran(l.job, l.startMs, 'probe overran its deadline'));
    }
    // An owed run started by a cut-off (finish) may have armed the next sweep already.
    if (this.inFlight > 0 && this.sweepTimer === undefined) this.armSweep(now);
  };

  private stopSweep(): void {
    if (this.sweepTimer !== undefined) this.opts.clock.clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
  }
}

function noop(): void {}
