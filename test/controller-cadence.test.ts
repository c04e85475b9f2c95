// The controller's round cadence on a fake clock: a round starts every pullIntervalMs from the
// start of the last, not pullIntervalMs after it ended. A round waits out the pull timeout of an
// agent that can't be reached (a node cut off), and with the interval counted from the end a
// cut stretched the default 5 s rounds to 8 s, so a proof of the cut that just missed one round
// was named 11 s later instead of 8 (issue 17: a cut named within 10 s).

import test from 'ava';
import { Controller, StaticDirectory } from '../src/controller/controller.ts';
import { FakeClock } from './support/fake-clock.ts';

/** A controller over one agent whose every pull fails after `pullMs` of fake time. */
function controllerWithSlowAgent(pullMs: number) {
  const clock = new FakeClock();
  const t0 = clock.nowMs();
  const pulls: number[] = [];
  const c = new Controller({
    clock,
    directory: new StaticDirectory([{ node: 'n1', network: 'pod', url: 'http://agent' }]),
    pullIntervalMs: 5000,
    pullConcurrency: 1,
    pullTimeoutMs: 60_000,
    // What the pull timeout does to an agent behind a cut: no answer for a while, then a failure.
    pullFetch: () => {
      pulls.push(clock.nowMs() - t0);
      return new Promise((_, reject) =>
        clock.setTimeout(() => reject(new Error('connect ETIMEDOUT')), pullMs),
      );
    },
    version: 'test',
    log: () => undefined,
  });
  return { clock, c, pulls };
}

test('rounds start every pull interval even when each waits 3 s for an agent', async (t) => {
  const { clock, c, pulls } = controllerWithSlowAgent(3000);
  c.start();
  await clock.advance(20_500);
  t.deepEqual(pulls, [0, 5000, 10_000, 15_000, 20_000]);
  t.is(c.matrix()?.agents[0]?.state, 'unreachable');
  await Promise.all([c.stop(), clock.advance(5000)]);
});

test('a round longer than the interval is followed at once, never overlapped', async (t) => {
  const { clock, c, pulls } = controllerWithSlowAgent(7000);
  c.start();
  await clock.advance(21_500);
  t.deepEqual(pulls, [0, 7000, 14_000, 21_000]);
  await Promise.all([c.stop(), clock.advance(10_000)]);
});
