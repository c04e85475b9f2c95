// Scheduler on a fake clock: cadence, jitter bounds, bounded concurrency, deadlines, reconcile.

import test from 'ava';
import { type Clock } from '../core/clock.ts';
import { FakeClock } from '../../test/support/fake-clock.ts';
import type { Peer, ProbeKind, ProbeResult, ProbeTarget } from '../core/types.ts';
import type { Probe } from '../probes/probe.ts';
import { DEADLINE_GRACE_MS, DEADLINE_SWEEP_MS, Scheduler } from './scheduler.ts';
import { probeExecutor } from './families/peer.ts';
import type { PeerJob as Job } from '../probes/peer-job.ts';
import { pairKey } from '../core/pair-key.ts';

function peer(node: string): Peer {
  return {
    id: `${node}/pod`,
    node,
    network: 'pod',
    zone: '',
    address: '10.0.0.1',
    stampPort: 1,
    tcpPort: 2,
    httpPort: 3,
  };
}

function job(node: string, kind: ProbeKind = 'udp'): Job {
  const p = peer(node);
  return { key: pairKey(p.id, kind, 'small'), kind, target: { peer: p, size: 'small', bytes: 72 } };
}

/** A probe that answers after `latencyMs` of fake time (or never, if undefined). */
class FakeProbe implements Probe {
  readonly kind: ProbeKind = 'udp';
  readonly timestamps = { source: 'userspace', detail: 'fake clock' } as const;
  calls: { peer: string; at: number }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  constructor(
    private readonly clock: Clock,
    public latencyMs: number | undefined,
  ) {}
  run(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    const sentAtMs = this.clock.nowMs();
    this.calls.push({ peer: target.peer.id, at: sentAtMs });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const base = { peerId: target.peer.id, kind: this.kind, size: target.size, sentAtMs };
    return new Promise((resolve) => {
      const lat = this.latencyMs;
      if (lat === undefined) return; // never answers: the scheduler's deadline must catch it
      if (lat > timeoutMs) {
        this.clock.setTimeout(() => {
          this.inFlight--;
          resolve({ ...base, ok: false, reason: 'timeout' });
        }, timeoutMs);
      } else {
        this.clock.setTimeout(() => {
          this.inFlight--;
          resolve({ ...base, ok: true, rttSeconds: lat / 1000 });
        }, lat);
      }
    });
  }
  forget(): void {}
  async close(): Promise<void> {}
}

function setup(
  opts: {
    latencyMs?: number | undefined;
    concurrency?: number;
    jitter?: number;
    timeoutMs?: number;
  } = {},
) {
  const clock = new FakeClock();
  const probe = new FakeProbe(clock, 'latencyMs' in opts ? opts.latencyMs : 1);
  const results: { r: ProbeResult; late: number }[] = [];
  const sched = new Scheduler({
    clock,
    intervalMs: 1000,
    timeoutMs: opts.timeoutMs ?? 500,
    jitter: opts.jitter ?? 0.1,
    concurrency: opts.concurrency ?? 100,
    ...probeExecutor(new Map([['udp', probe]])),
    onResult: (r, late) => results.push({ r, late }),
  });
  return { clock, probe, results, sched };
}

test('each job runs once per interval, within the jitter bounds', async (t) => {
  const { clock, probe, sched } = setup({ jitter: 0.1 });
  sched.reconcile([job('a'), job('b')]);
  await clock.advance(60_000);
  for (const node of ['a/pod', 'b/pod']) {
    const times = probe.calls.filter((c) => c.peer === node).map((c) => c.at);
    t.true(times.length >= 55 && times.length <= 67, `${node}: ${times.length} runs in 60 s`);
    for (let i = 1; i < times.length; i++) {
      const gap = times[i]! - times[i - 1]!;
      t.true(gap >= 900 - 1e-6 && gap <= 1100 + 1e-6, `gap ${gap}`);
    }
  }
  await Promise.all([sched.stop(), clock.advance(5_000)]);
});

test('results carry lateness 0 when nothing is starved', async (t) => {
  const { clock, results, sched } = setup();
  sched.reconcile([job('a')]);
  await clock.advance(5_000);
  t.true(results.length >= 4);
  t.true(results.every((x) => x.late === 0 && x.r.ok));
  await Promise.all([sched.stop(), clock.advance(5_000)]);
});

test('concurrency is bounded by p-limit', async (t) => {
  const { clock, probe, sched } = setup({ concurrency: 3, latencyMs: 400 });
  sched.reconcile(Array.from({ length: 20 }, (_, i) => job(`n${i}`)));
  await clock.advance(5_000);
  t.is(probe.maxInFlight, 3);
  await Promise.all([sched.stop(), clock.advance(5_000)]);
});

test('queued probes report how late they started', async (t) => {
  const { clock, results, sched } = setup({ concurrency: 1, latencyMs: 300 });
  sched.reconcile(Array.from({ length: 6 }, (_, i) => job(`n${i}`)));
  await clock.advance(10_000);
  t.true(
    results.some((x) => x.late >= 300),
    'some probe waited behind another',
  );
  await Promise.all([sched.stop(), clock.advance(5_000)]);
});

test('a probe that never settles is cut off at timeout + grace as a typed failure', async (t) => {
  const { clock, probe, results, sched } = setup({ latencyMs: undefined, timeoutMs: 500 });
  sched.reconcile([job('a')]);
  await clock.advance(3_000);
  t.true(results.length >= 1);
  const r = results[0]!.r;
  t.false(r.ok);
  t.is(!r.ok ? r.reason : undefined, 'error');
  // Runs due while the stuck one was in flight wait for it to be cut off, not stacked.
  const times = probe.calls.map((c) => c.at);
  for (let i = 1; i < times.length; i++)
    t.true(times[i]! - times[i - 1]! >= 500 + DEADLINE_GRACE_MS - DEADLINE_SWEEP_MS, `gap ${i}`);
  await Promise.all([sched.stop(), clock.advance(5_000)]);
});

test('reconcile starts new jobs, stops departed ones, leaves the rest alone', async (t) => {
  const { clock, probe, results, sched } = setup();
  const first = sched.reconcile([job('a'), job('b')]);
  t.deepEqual(first.added.sort(), ['a/pod|udp|small', 'b/pod|udp|small']);
  await clock.advance(3_000);
  const aRunsBefore = probe.calls.filter((c) => c.peer === 'a/pod').length;
  const second = sched.reconcile([job('a'), job('c')]);
  t.deepEqual(second.added, ['c/pod|udp|small']);
  t.deepEqual(second.removed, ['b/pod|udp|small']);
  const mark = probe.calls.length;
  await clock.advance(5_000);
  const after = probe.calls.slice(mark);
  t.false(
    after.some((c) => c.peer === 'b/pod'),
    'departed peer no longer probed',
  );
  t.true(after.some((c) => c.peer === 'c/pod'));
  t.true(probe.calls.filter((c) => c.peer === 'a/pod').length > aRunsBefore);
  const lastB = results.filter((x) => x.r.peerId === 'b/pod').length;
  await clock.advance(2_000);
  t.is(results.filter((x) => x.r.peerId === 'b/pod').length, lastB);
  await Promise.all([sched.stop(), clock.advance(5_000)]);
});

test('a result that lands after its job was removed is dropped', async (t) => {
  const { clock, results, sched } = setup({ latencyMs: 400 });
  sched.reconcile([job('a')]);
  // Run until a probe is in flight, then remove the job before it answers.
  while (sched.stats().inFlight === 0) await clock.advance(10);
  sched.reconcile([]);
  await clock.advance(1_000);
  t.is(results.length, 0);
  await Promise.all([sched.stop(), clock.advance(5_000)]);
});

test('stop() clears every timer', async (t) => {
  const { clock, sched } = setup();
  sched.reconcile([job('a'), job('b')]);
  await clock.advance(2_500);
  await Promise.all([sched.stop(), clock.advance(2_000)]);
  await clock.advance(1_000);
  t.is(clock.pending(), 0);
});

// The tests below drive the generic Scheduler with a hand-held executor, so each run can be made
// to answer late, never, reject, or throw, and phases can be set exactly (random, jitter 0).

interface TestJob {
  readonly key: string;
}
interface TestResult {
  readonly key: string;
  readonly outcome: string;
  readonly startMs: number;
}

/** What one run does: settle after `ms` of fake time, never, reject, or throw. */
type Behaviour =
  | { readonly settleAfterMs: number }
  | { readonly never: true }
  | { readonly reject: string }
  | { readonly throws: string };

function harness(
  opts: {
    concurrency?: number;
    timeoutMs?: number;
    /** First phases as fractions of the interval, one per job in reconcile order. */
    phases?: number[];
    behave?: (key: string, call: number) => Behaviour;
  } = {},
) {
  const clock = new FakeClock();
  const phases = [...(opts.phases ?? [])];
  const calls: { key: string; at: number }[] = [];
  const perKey = new Map<string, number>();
  let inFlight = 0;
  let maxInFlight = 0;
  const stale: ((r: TestResult) => void)[] = [];
  const results: { r: TestResult; late: number; at: number }[] = [];
  const sched = new Scheduler<TestJob, TestResult>({
    clock,
    intervalMs: 1000,
    timeoutMs: opts.timeoutMs ?? 500,
    jitter: 0,
    concurrency: opts.concurrency ?? 100,
    random: () => phases.shift() ?? 0,
    execute: (job) => {
      const call = perKey.get(job.key) ?? 0;
      perKey.set(job.key, call + 1);
      const startMs = clock.nowMs();
      calls.push({ key: job.key, at: startMs });
      const b = opts.behave?.(job.key, call) ?? { settleAfterMs: 1 };
      if ('throws' in b) throw new Error(b.throws);
      if ('reject' in b) return Promise.reject(new Error(b.reject));
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return new Promise<TestResult>((resolve) => {
        const done = (r: TestResult): void => {
          inFlight--;
          resolve(r);
        };
        if ('never' in b) stale.push(done);
        else
          clock.setTimeout(() => done({ key: job.key, outcome: 'ok', startMs }), b.settleAfterMs);
      });
    },
    overran: (job, startMs, detail) => ({ key: job.key, outcome: detail, startMs }),
    onResult: (r, late) => results.push({ r, late, at: clock.nowMs() }),
  });
  return { clock, sched, calls, results, stale, maxInFlight: () => maxInFlight };
}

const jobs = (...keys: string[]): TestJob[] => keys.map((key) => ({ key }));

test('a stuck run is cut off by one sweep between timeout + grace - sweep and timeout + grace', async (t) => {
  // Phases spread over the interval so the runs start at every offset from the sweep's beat.
  const keys = Array.from({ length: 40 }, (_, i) => `j${i}`);
  const { clock, sched, results, calls } = harness({
    timeoutMs: 500,
    phases: keys.map((_, i) => i / 40 + 0.003 * (i % 7)),
    behave: () => ({ never: true }),
  });
  sched.reconcile(jobs(...keys));
  await clock.advance(10_000);
  t.true(results.length >= 4 * keys.length, `${results.length} cut-offs`);
  for (const { r, at } of results) {
    t.is(r.outcome, 'probe overran its deadline');
    const age = at - r.startMs;
    t.true(
      age >= 500 + DEADLINE_GRACE_MS - DEADLINE_SWEEP_MS && age <= 500 + DEADLINE_GRACE_MS,
      `cut off ${age} ms after it started`,
    );
  }
  // Each cut-off frees the job: it runs again at its next due time, not never.
  for (const key of keys) t.true(calls.filter((c) => c.key === key).length >= 4, key);
  t.true(sched.stats().skipped >= keys.length, 'runs due while stuck are skipped');
  await Promise.all([sched.stop(), clock.advance(5_000)]);
  t.is(clock.pending(), 0);
});

test('a cut-off run that settles later is ignored and does not end the next run', async (t) => {
  const { clock, sched, results, stale } = harness({
    timeoutMs: 500,
    phases: [0],
    behave: (_key, call) => (call === 0 ? { never: true } : { settleAfterMs: 300 }),
  });
  sched.reconcile(jobs('a'));
  // The first run is cut off at 1,250 (the sweep beat); the run owed since 1,000 starts then.
  await clock.advance(1_300);
  t.deepEqual(
    results.map((x) => x.r.outcome),
    ['probe overran its deadline'],
  );
  stale[0]!({ key: 'a', outcome: 'stale', startMs: 0 });
  await clock.advance(50);
  t.is(sched.stats().inFlight, 1, 'the second run is still in flight');
  t.is(results.length, 1);
  await clock.advance(200);
  t.deepEqual(
    results.map((x) => x.r.outcome),
    ['probe overran its deadline', 'ok'],
  );
  await Promise.all([sched.stop(), clock.advance(5_000)]);
});

test('a run that throws synchronously becomes an overran result and frees its slot', async (t) => {
  const { clock, sched, results, calls } = harness({
    concurrency: 1,
    phases: [0, 0.001],
    behave: (key, call) => (key === 'a' && call === 0 ? { throws: 'boom' } : { settleAfterMs: 5 }),
  });
  sched.reconcile(jobs('a', 'b'));
  await clock.advance(20);
  t.deepEqual(
    results.map((x) => [x.r.key, x.r.outcome]),
    [
      ['a', 'probe rejected: Error: boom'],
      ['b', 'ok'],
    ],
  );
  t.deepEqual(
    calls.map((c) => [c.key, c.at - calls[0]!.at]),
    [
      ['a', 0],
      ['b', 1],
    ],
  );
  await clock.advance(1_000);
  t.is(results.filter((x) => x.r.key === 'a' && x.r.outcome === 'ok').length, 1, 'a runs again');
  await Promise.all([sched.stop(), clock.advance(5_000)]);
});

test('a run that rejects becomes an overran result and frees its slot', async (t) => {
  const { clock, sched, results } = harness({
    concurrency: 1,
    phases: [0, 0.001],
    behave: (key, call) => (key === 'a' && call === 0 ? { reject: 'nope' } : { settleAfterMs: 5 }),
  });
  sched.reconcile(jobs('a', 'b'));
  await clock.advance(20);
  t.deepEqual(
    results.map((x) => [x.r.key, x.r.outcome, x.late]),
    [
      ['a', 'probe rejected: Error: nope', 0],
      ['b', 'ok', 0],
    ],
  );
  await Promise.all([sched.stop(), clock.advance(5_000)]);
});

test('runs past the concurrency bound wait in due order and report how late they started', async (t) => {
  const keys = ['a', 'b', 'c', 'd', 'e'];
  const { clock, sched, results, calls, maxInFlight } = harness({
    concurrency: 2,
    // Due at 0, 10, 20, 30, 40 ms; each run takes 100 ms.
    phases: [0, 0.01, 0.02, 0.03, 0.04],
    behave: () => ({ settleAfterMs: 100 }),
  });
  const t0 = clock.nowMs();
  sched.reconcile(jobs(...keys));
  await clock.advance(500);
  t.is(maxInFlight(), 2);
  t.deepEqual(
    calls.map((c) => [c.key, c.at - t0]),
    [
      ['a', 0],
      ['b', 10],
      ['c', 100], // a's slot
      ['d', 110], // b's slot
      ['e', 200],
    ],
  );
  t.deepEqual(
    results.map((x) => [x.r.key, x.late]),
    [
      ['a', 0],
      ['b', 0],
      ['c', 80],
      ['d', 80],
      ['e', 160],
    ],
  );
  await Promise.all([sched.stop(), clock.advance(5_000)]);
});

test('a removed job waiting for a slot never runs and does not hold up the line', async (t) => {
  const { clock, sched, calls } = harness({
    concurrency: 1,
    phases: [0, 0.001, 0.002],
    behave: () => ({ settleAfterMs: 300 }),
  });
  sched.reconcile(jobs('a', 'b', 'c'));
  await clock.advance(5);
  t.is(sched.stats().inFlight, 3, 'one on the wire, two waiting');
  sched.reconcile(jobs('a', 'c'));
  await clock.advance(400);
  t.deepEqual(
    calls.map((c) => c.key),
    ['a', 'c'],
  );
  t.is(calls[1]!.at - calls[0]!.at, 300);
  await Promise.all([sched.stop(), clock.advance(5_000)]);
});

test('a stuck run of a removed job still frees its slot at the deadline', async (t) => {
  const { clock, sched, calls, results } = harness({
    concurrency: 1,
    timeoutMs: 500,
    phases: [0, 0],
    behave: (key) => (key === 'a' ? { never: true } : { settleAfterMs: 1 }),
  });
  sched.reconcile(jobs('a'));
  await clock.advance(10);
  sched.reconcile(jobs('b'));
  await clock.advance(3_000);
  t.true(calls.some((c) => c.key === 'b'));
  const firstB = calls.find((c) => c.key === 'b')!.at - calls[0]!.at;
  t.true(
    firstB >= 500 + DEADLINE_GRACE_MS - DEADLINE_SWEEP_MS && firstB <= 500 + DEADLINE_GRACE_MS,
  );
  t.false(
    results.some((x) => x.r.key === 'a'),
    'the removed job reports nothing',
  );
  await Promise.all([sched.stop(), clock.advance(5_000)]);
});

test('stop() drops waiting runs and resolves once the run on the wire settles', async (t) => {
  const { clock, sched, calls, results } = harness({
    concurrency: 1,
    phases: [0, 0.001, 0.002, 0.003],
    behave: () => ({ settleAfterMs: 300 }),
  });
  sched.reconcile(jobs('a', 'b', 'c', 'd'));
  await clock.advance(5);
  t.is(sched.stats().inFlight, 4);
  let stopped = false;
  const stopping = sched.stop().then(() => {
    stopped = true;
  });
  await clock.advance(200);
  t.false(stopped, 'still waiting for the run on the wire');
  await clock.advance(200);
  await stopping;
  t.true(stopped);
  t.deepEqual(
    calls.map((c) => c.key),
    ['a'],
    'the waiting runs never started',
  );
  t.is(results.length, 0, 'results after stop are dropped');
  t.is(clock.pending(), 0);
});

test('stop() with a stuck run resolves by timeout + grace', async (t) => {
  const { clock, sched } = harness({
    timeoutMs: 500,
    phases: [0],
    behave: () => ({ never: true }),
  });
  sched.reconcile(jobs('a'));
  await clock.advance(1);
  let stopped = false;
  const stopping = sched.stop().then(() => {
    stopped = true;
  });
  await clock.advance(500 + DEADLINE_GRACE_MS - DEADLINE_SWEEP_MS - 10);
  t.false(stopped);
  await clock.advance(DEADLINE_SWEEP_MS + 10);
  await stopping;
  t.true(stopped);
  t.is(clock.pending(), 0);
});

test('a concurrency that is not a positive whole number is refused', (t) => {
  for (const concurrency of [0, -1, 1.5, Number.NaN])
    t.throws(() => harness({ concurrency }), { instanceOf: TypeError }, String(concurrency));
});

/**
 * A clock whose event loop can be held: time jumps, and only then do the timers that fell due
 * meanwhile run, all late, at the new time (as libuv runs expired timers, before it polls).
 */
class HeldClock implements Clock {
  private current = 1_700_000_000_000;
  private readonly timers: { id: number; at: number; fn: () => void }[] = [];
  private nextId = 1;

  nowMs(): number {
    return this.current;
  }

  monoNs(): bigint {
    return BigInt(Math.round(this.current * 1e6));
  }

  setTimeout(fn: () => void, ms: number): { id: number } {
    const id = this.nextId++;
    this.timers.push({ id, at: this.current + Math.max(0, ms), fn });
    return { id };
  }

  clearTimeout(handle: { id: number }): void {
    const i = this.timers.findIndex((t) => t.id === handle.id);
    if (i >= 0) this.timers.splice(i, 1);
  }

  /** Runs the timers due within `ms`, each at its own time (the loop not held). */
  async advance(ms: number): Promise<void> {
    const end = this.current + ms;
    for (;;) {
      await flush();
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.timers.splice(this.timers.indexOf(due), 1);
      this.current = Math.max(this.current, due.at);
      due.fn();
    }
    this.current = end;
    await flush();
  }

  /** The loop is held for `ms`: then every timer that fell due runs, late, before anything else. */
  hold(ms: number): void {
    this.current += ms;
    const due = this.timers.filter((t) => t.at <= this.current).sort((a, b) => a.at - b.at);
    for (const t of due) {
      this.timers.splice(this.timers.indexOf(t), 1);
      t.fn();
    }
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

test('a held event loop: the deadline sweep leaves runs to their own timeouts, then cuts what is still out (issue 14.3)', async (t) => {
  const clock = new HeldClock();
  const settle: ((r: TestResult) => void)[] = [];
  const results: TestResult[] = [];
  const sched = new Scheduler<TestJob, TestResult>({
    clock,
    intervalMs: 10_000,
    timeoutMs: 100,
    jitter: 0,
    concurrency: 10,
    random: () => 0,
    execute: (job) =>
      new Promise<TestResult>((resolve) => settle.push(resolve)).then((r) => ({
        ...r,
        key: job.key,
      })),
    overran: (job, startMs, detail) => ({ key: job.key, outcome: detail, startMs }),
    onResult: (r) => results.push(r),
  });
  t.teardown(() => void sched.stop());
  sched.reconcile([{ key: 'a' }, { key: 'b' }]);
  await clock.advance(0);
  t.is(settle.length, 2);
  // The loop is held far past timeout + grace. The sweep's timer runs first, late; the answer
  // of run a sat in its socket all along and is read right after the timers.
  clock.hold(5000);
  settle[0]!({ key: '', outcome: 'ok', startMs: 0 });
  await flush();
  t.deepEqual(
    results.map((r) => [r.key, r.outcome]),
    [['a', 'ok']],
  );
  // Run b never settles: once the loop runs on time again, the sweep cuts it off.
  await clock.advance(DEADLINE_SWEEP_MS * 2);
  t.deepEqual(
    results.map((r) => [r.key, r.outcome]),
    [
      ['a', 'ok'],
      ['b', 'probe overran its deadline'],
    ],
  );
});

// Issue 17: a run due while the job's last run is still on the wire is owed, not skipped.

test('a job whose probes all time out at timeout = interval is still probed about once per interval', async (t) => {
  // The default settings: 1 s interval, 1 s timeout, 10% jitter. Every probe times out (a cut
  // peer), so most runs come due while the last is still out; skipping them halved the rate.
  const { clock, probe, results, sched } = setup({ jitter: 0.1, timeoutMs: 1000, latencyMs: 5000 });
  sched.reconcile([job('a')]);
  await clock.advance(60_000);
  const times = probe.calls.map((c) => c.at);
  t.true(times.length >= 55, `${times.length} runs in 60 s`);
  t.is(probe.maxInFlight, 1, 'never two runs of one job on the wire');
  // The owed run starts as its predecessor ends, never before.
  for (let i = 1; i < times.length; i++) t.true(times[i]! - times[i - 1]! >= 1000, `gap ${i}`);
  t.true(
    results.every((x) => !x.r.ok && x.late === 0),
    'waiting for its own last run is not lateness',
  );
  await Promise.all([sched.stop(), clock.advance(5_000)]);
});

test('a stuck run owes one run, started when it is cut off; more runs due meanwhile are skipped', async (t) => {
  // Timeout 1 s: a run that never settles is cut off 1,750 ms after it started (the sweep beat
  // from the start at 0). Due at 1,000 (owed) and 2,000, 3,000, ...
  const { clock, sched, calls, results } = harness({
    timeoutMs: 1000,
    phases: [0],
    behave: () => ({ never: true }),
  });
  const t0 = clock.nowMs();
  sched.reconcile(jobs('a'));
  await clock.advance(5_400);
  t.deepEqual(
    calls.map((c) => c.at - t0),
    [0, 1750, 3500, 5250],
    'each cut-off starts the one owed run at once; no burst',
  );
  t.is(results.length, 3);
  t.true(results.every((x) => x.late === 0));
  // Due at 1,000 (owed, ran at 1,750), 2,000 (owed, ran at 3,500), 3,000 (skipped: one already
  // owed), 4,000 (owed, ran at 5,250), 5,000 (skipped).
  t.is(sched.stats().skipped, 2);
  await Promise.all([sched.stop(), clock.advance(5_000)]);
  t.is(clock.pending(), 0);
});

test('a run still waiting for a slot when the next comes due sheds that run, as before', async (t) => {
  // One slot, two jobs taking 1.5 s each: the prober is starved. Runs due while their last run
  // waits in line are skipped, so the line never holds more than one run per job.
  const { clock, sched, calls } = harness({
    concurrency: 1,
    timeoutMs: 1000,
    phases: [0, 0.001],
    behave: () => ({ settleAfterMs: 900 }),
  });
  sched.reconcile(jobs('a', 'b'));
  await clock.advance(10_000);
  const stats = sched.stats();
  t.true(stats.skipped > 0, 'the starved prober sheds runs');
  t.true(stats.inFlight <= 2);
  // One slot at 900 ms a run: at most 10,000 / 900 runs, whatever was owed.
  t.true(calls.length <= Math.ceil(10_000 / 900), `${calls.length} runs`);
  await Promise.all([sched.stop(), clock.advance(5_000)]);
});
