// The controller's round schedule on a FakeClock, with agents answered by a fake fetch whose
// delays run on the same clock: rounds start one pull interval apart whatever they take (a
// round longer than the interval is followed as it ends, never overlapped, and counted), and a
// round never waits on an agent whose last pull failed beyond a short grace: its pull goes on
// in the background and the round carries its last failure. Without both, a node cut off costs each round the pull
// timeout plus the interval before triage sees the proof (docs/triage.md, "How long a finding
// outlives its cause").

import test from 'ava';
import { API_VERSION } from '../src/api/agent-row.ts';
import type { Matrix } from '../src/api/matrix.ts';
import { MatrixCollector } from '../src/controller/collector.ts';
import { Controller, StaticDirectory } from '../src/controller/controller.ts';
import type { PullFetch } from '../src/controller/pull-client.ts';
import { FakeClock } from './support/fake-clock.ts';
import { parseMetrics } from './support/agents.ts';

const INTERVAL = 2000;
const TIMEOUT = 3000;

function row(node: string): string {
  return JSON.stringify({
    apiVersion: API_VERSION,
    kind: 'AgentResults',
    source: { node, network: 'pod', zone: '', address: '198.18.0.1' },
    generatedAt: '',
    windowSeconds: 60,
    intervalMs: 1000,
    probes: {},
    peers: [],
  });
}

/**
 * Agents a and c: a answers at once; c answers at once unless cut, and while cut a pull of it
 * fails as a timed-out fetch does, the pull timeout after it started (on the fake clock).
 * Every pull's start time is logged per agent.
 */
function agents(clock: FakeClock): {
  fetch: PullFetch;
  pulls: Map<string, number[]>;
  cut: { on: boolean };
} {
  const pulls = new Map<string, number[]>([
    ['a', []],
    ['c', []],
  ]);
  const cut = { on: false };
  const fetch: PullFetch = (url) => {
    const node = new URL(url).hostname.split('.')[0]!;
    pulls.get(node)!.push(clock.nowMs());
    if (node === 'c' && cut.on)
      return new Promise((_, reject) =>
        clock.setTimeout(
          () => reject(new DOMException(`timed out after ${TIMEOUT} ms`, 'TimeoutError')),
          TIMEOUT,
        ),
      );
    return Promise.resolve(new Response(row(node)));
  };
  return { fetch, pulls, cut };
}

/** Moves the fake clock in small steps, letting the rounds' promise chains settle between. */
async function run(clock: FakeClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 100) {
    await clock.advance(100);
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  }
}

function controller(clock: FakeClock, fetch: PullFetch): Controller {
  return new Controller({
    clock,
    directory: new StaticDirectory([
      { node: 'a', network: 'pod', url: 'http://a.example:9' },
      { node: 'c', network: 'pod', url: 'http://c.example:9' },
    ]),
    pullIntervalMs: INTERVAL,
    pullConcurrency: 4,
    pullTimeoutMs: TIMEOUT,
    pullFetch: fetch,
    version: 'test',
    triage: () => [],
    log: () => undefined,
  });
}

test('rounds start one interval apart; none waits on an agent whose last pull failed', async (t) => {
  const clock = new FakeClock(0);
  const { fetch, pulls, cut } = agents(clock);
  const c = controller(clock, fetch);
  c.start();
  await run(clock, 1000);
  cut.on = true;
  await run(clock, 9500);
  // The round at 2000 is the first to find c cut: it waits its pull timeout and ends at 5000,
  // after the next round was due, so the next starts then. From then on c's last pull failed:
  // rounds end at once and keep the interval.
  t.deepEqual(pulls.get('a'), [0, 2000, 5000, 7000, 9000]);
  // c's pulls: a new one each round (the one of 5000 still out at 7000 is not waited for).
  t.deepEqual(pulls.get('c'), [0, 2000, 5000, 7000, 9000]);
  const m = c.matrix()!;
  t.is(
    m.generatedAt,
    new Date(9250).toISOString(),
    "the round at 9000 was published after c's grace (250 ms), not its pull timeout",
  );
  const agentC = m.agents.find((x) => x.node === 'c')!;
  t.is(agentC.state, 'timeout');
  t.regex(agentC.detail ?? '', /no answer within 3000 ms .*still out/);
  t.is(m.agents.find((x) => x.node === 'a')!.state, 'ok');
  const late = parseMetrics(await c.registry.metrics()).find(
    (s) => s.name === 'podmesh_controller_rounds_late_total',
  );
  t.is(late?.value, 1, 'the one round longer than the interval is counted');

  // Healed at 10500: the pulls out since 7000 and 9000 were sent into the cut and fail at
  // 10000 and 12000, but the round at 11000 pulls c anew, reads its answer within the grace,
  // and from then on waits for it again; the older failure ending later changes nothing.
  cut.on = false;
  await run(clock, 1000);
  t.is(c.matrix()!.generatedAt, new Date(11_000).toISOString());
  t.is(c.matrix()!.agents.find((x) => x.node === 'c')!.state, 'ok');
  await run(clock, 5000);
  t.is(c.matrix()!.agents.find((x) => x.node === 'c')!.state, 'ok');
  t.deepEqual(pulls.get('a'), [0, 2000, 5000, 7000, 9000, 11_000, 13_000, 15_000]);
  await c.stop();
});

test('a round slower than the interval is followed as it ends, never overlapped', async (t) => {
  const clock = new FakeClock(0);
  const starts: number[] = [];
  let inFlight = 0;
  let most = 0;
  // Every agent answers after 2500 ms, longer than the interval: every round is late.
  const fetch: PullFetch = (url) => {
    starts.push(clock.nowMs());
    inFlight++;
    most = Math.max(most, inFlight);
    const node = new URL(url).hostname.split('.')[0]!;
    return new Promise((resolve) =>
      clock.setTimeout(() => {
        inFlight--;
        resolve(new Response(row(node)));
      }, 2500),
    );
  };
  const logs: string[] = [];
  const c = new Controller({
    clock,
    directory: new StaticDirectory([{ node: 'a', network: 'pod', url: 'http://a.example:9' }]),
    pullIntervalMs: INTERVAL,
    pullConcurrency: 4,
    pullTimeoutMs: TIMEOUT,
    pullFetch: fetch,
    version: 'test',
    log: (_l, msg) => logs.push(msg),
  });
  c.start();
  await run(clock, 8000);
  t.deepEqual(starts, [0, 2500, 5000, 7500]);
  t.is(most, 1, 'one round at a time');
  t.deepEqual(
    logs.filter((l) => l.includes('pull interval')),
    ['a round took longer than the pull interval: the next starts as it ends'],
    'logged once when rounds fall behind, not every round',
  );
  // The round out at the end ends on the fake clock too.
  const stopped = c.stop();
  await run(clock, 3000);
  await stopped;
});

test("an unreachable agent's pulls never take the slots of agents that answer", async (t) => {
  const clock = new FakeClock(0);
  const { fetch, pulls, cut } = agents(clock);
  cut.on = true;
  // One slot: c's pull, listed first, would hold it for the pull timeout.
  const collector = new MatrixCollector({ clock, concurrency: 1, timeoutMs: TIMEOUT, fetch });
  const endpoints = [
    { node: 'c', network: 'pod' as const, url: 'http://c.example:9' },
    { node: 'a', network: 'pod' as const, url: 'http://a.example:9' },
  ];
  let first: Matrix | undefined;
  void collector.collect(endpoints).then((m) => (first = m));
  await run(clock, 3500);
  t.is(first?.agents.find((x) => x.node === 'c')?.state, 'timeout');
  t.deepEqual(pulls.get('a'), [3000], 'the first round: a waited behind c, as c had answered');
  let second: Matrix | undefined;
  void collector.collect(endpoints).then((m) => (second = m));
  await run(clock, 500);
  t.deepEqual(pulls.get('a'), [3000, 3500], 'the second: a is pulled at once, c in the background');
  t.is(second?.generatedAt, new Date(3750).toISOString(), "and the round ends after c's grace");
  t.is(second?.agents.find((x) => x.node === 'a')?.state, 'ok');
  // Rounds faster than c's pulls end: at most two of them out (here one on the wire, one
  // waiting for the only slot), then the newest is shared. Without the bound, each of these
  // rounds would queue one more, started as the one before fails.
  for (let i = 0; i < 3; i++) {
    void collector.collect(endpoints);
    await run(clock, 300);
  }
  await run(clock, 10_000);
  t.deepEqual(pulls.get('c'), [0, 3500, 6500], 'never more than two pulls of c out');
});
