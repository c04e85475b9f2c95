// Scheduler on a fake clock: cadence, jitter bounds, bounded concurrency, deadlines, reconcile.

import test from 'ava';
import { FakeClock, type Clock } from '../core/clock.ts';
import type { Peer, ProbeKind, ProbeResult, ProbeTarget } from '../core/types.ts';
import type { Probe } from '../probes/probe.ts';
import { Scheduler, jobKey, probeExecutor, type Job } from './scheduler.ts';

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
  return { key: jobKey(p.id, kind, 'small'), kind, target: { peer: p, size: 'small', bytes: 72 } };
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
  const { clock, results, sched } = setup({ latencyMs: undefined, timeoutMs: 500 });
  sched.reconcile([job('a')]);
  await clock.advance(3_000);
  t.true(results.length >= 1);
  const r = results[0]!.r;
  t.false(r.ok);
  t.is(!r.ok ? r.reason : undefined, 'error');
  t.true(
    sched.stats().skipped >= 1,
    'runs due while the stuck one was in flight are skipped, not stacked',
  );
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
