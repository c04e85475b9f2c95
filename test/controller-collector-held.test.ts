// The collector does not hold a round for an agent that did not answer the round before either
// (issue 17: a round waiting out the pull timeout of a cut node's agents delayed triage by 3 s in
// every round of the cut). Pulls are driven by hand: each one answers, fails or hangs when the
// test says, so "the round did not wait" is shown by a round ending while a pull is still out.

import test from 'ava';
import { SystemClock } from '../src/core/clock.ts';
import { MatrixCollector } from '../src/controller/collector.ts';
import type { AgentEndpoint } from '../src/controller/matrix.ts';

/** A row that passes the schema, as agent `node` on the pod network would send it. */
function validRow(node: string): Response {
  return new Response(
    JSON.stringify({
      apiVersion: 'podmesh.io/v1',
      kind: 'AgentResults',
      source: { node, network: 'pod', zone: '', address: '127.0.0.1' },
      generatedAt: '',
      windowSeconds: 60,
      intervalMs: 1000,
      probes: {},
      peers: [],
    }),
  );
}

const endpoints: AgentEndpoint[] = [
  { node: 'a', network: 'pod', url: 'http://a' },
  { node: 'b', network: 'pod', url: 'http://b' },
];

/** Agent a always answers; agent b's pulls wait for the test (answer or fail), one at a time. */
function setup() {
  const bPulls: { answer: () => void; fail: () => void }[] = [];
  /** When set, b's next pulls answer at once and a's take 30 ms. */
  const instant = { b: false };
  const collector = new MatrixCollector({
    clock: new SystemClock(),
    concurrency: 4,
    // Far longer than the test: a round that waited for b's pull would time the test out.
    timeoutMs: 60_000,
    fetch: (url) => {
      if (url.startsWith('http://a'))
        return instant.b
          ? new Promise((r) => setTimeout(() => r(validRow('a')), 30))
          : Promise.resolve(validRow('a'));
      if (instant.b) return Promise.resolve(validRow('b'));
      return new Promise((resolve, reject) =>
        bPulls.push({
          answer: () => resolve(validRow('b')),
          fail: () => reject(new TypeError('fetch failed', { cause: { code: 'EHOSTUNREACH' } })),
        }),
      );
    },
  });
  const states = async (): Promise<string> =>
    (await collector.collect(endpoints)).agents.map((x) => `${x.node}:${x.state}`).join(' ');
  return { collector, bPulls, states, instant };
}

test('an agent that failed the round before is not waited for; its late answer is the next round’s', async (t) => {
  const { bPulls, states } = setup();
  // Round 1: b was fine before, so the round waits for it; it fails.
  const r1 = states();
  await until(() => bPulls.length === 1);
  bPulls[0]!.fail();
  t.is(await r1, 'a:ok b:unreachable');
  // Round 2: b failed the round before: the round ends once a answered, b's pull still out.
  t.is(await states(), 'a:ok b:timeout');
  t.is(bPulls.length, 2);
  // Round 3: b's pull from round 2 is still out: no second pull, not waited for.
  t.is(await states(), 'a:ok b:timeout');
  t.is(bPulls.length, 2, 'one pull per agent at a time');
  // b answers after its round ended: the next round takes that answer.
  bPulls[1]!.answer();
  await new Promise((r) => setImmediate(r));
  t.is(await states(), 'a:ok b:ok');
  t.is(bPulls.length, 2, 'the late answer is the row; no new pull that round');
  // b answered: the round after waits for it again.
  const r5 = states();
  await until(() => bPulls.length === 3);
  let ended = false;
  void r5.then(() => (ended = true));
  await new Promise((r) => setTimeout(r, 50));
  t.false(ended, 'held for b again');
  bPulls[2]!.answer();
  t.is(await r5, 'a:ok b:ok');
});

test('an agent that failed the round before and answers at once is read in the round', async (t) => {
  const { bPulls, states, instant } = setup();
  const r1 = states();
  await until(() => bPulls.length === 1);
  bPulls[0]!.fail();
  t.is(await r1, 'a:ok b:unreachable');
  // Round 2: b answers before a does: not waited for, but read.
  instant.b = true;
  t.is(await states(), 'a:ok b:ok');
});

test('when every agent failed the round before, the round waits for them all', async (t) => {
  const bPulls: (() => void)[] = [];
  const collector = new MatrixCollector({
    clock: new SystemClock(),
    concurrency: 4,
    timeoutMs: 60_000,
    fetch: () =>
      new Promise((resolve, reject) => {
        bPulls.push(() =>
          reject(new TypeError('fetch failed', { cause: { code: 'EHOSTUNREACH' } })),
        );
        void resolve;
      }),
  });
  const round = async (): Promise<string> => {
    const r = collector.collect(endpoints);
    await until(() => bPulls.length % 2 === 0 && bPulls.length > 0);
    for (const f of bPulls.splice(0)) f();
    return (await r).agents.map((x) => `${x.node}:${x.state}`).join(' ');
  };
  t.is(await round(), 'a:unreachable b:unreachable');
  t.is(await round(), 'a:unreachable b:unreachable', 'waited for both, not marked unwaited');
});

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  if (!cond()) throw new Error('condition not met');
}
