// The collector holds a round only briefly for an agent that did not answer the round before
// either (issue 17: a round waiting out the pull timeout of a cut node's agents delayed triage by
// 3 s in every round of the cut). Agent b's pulls are driven by hand (answer, fail, or hang until
// aborted) with a pull timeout far longer than the test, so a round that waited for a hanging
// pull would time the test out: "the round did not wait" is a round that ended.

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

interface HandPull {
  readonly signal: AbortSignal | undefined;
  answer(): void;
  fail(): void;
}

/** Agent a answers at once (every agent, with `all`); b's pulls wait for the test. */
function setup(o: { all?: boolean } = {}) {
  const pulls: HandPull[] = [];
  const collector = new MatrixCollector({
    clock: new SystemClock(),
    concurrency: 4,
    timeoutMs: 60_000,
    fetch: (url, init) => {
      if (url.startsWith('http://a') && o.all !== true) return Promise.resolve(validRow('a'));
      const signal = init?.signal ?? undefined;
      return new Promise((resolve, reject) => {
        signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
        pulls.push({
          signal,
          answer: () => resolve(validRow(url.slice('http://'.length, 'http://'.length + 1))),
          fail: () => reject(new TypeError('fetch failed', { cause: { code: 'EHOSTUNREACH' } })),
        });
      });
    },
  });
  const round = async (): Promise<string> =>
    (await collector.collect(endpoints)).agents
      .map((x) => `${x.node}:${x.state}${x.detail !== undefined ? ` (${x.detail})` : ''}`)
      .join(', ');
  return { pulls, round };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  if (!cond()) throw new Error('condition not met');
}

/** Round 1, in which b (fine before) is waited for and fails. */
async function bFailsOnce(pulls: HandPull[], round: () => Promise<string>): Promise<string> {
  const r1 = round();
  await until(() => pulls.length === 1);
  pulls[0]!.fail();
  return r1;
}

test('an agent that failed the round before is waited for only briefly', async (t) => {
  const { pulls, round } = setup();
  t.is(await bFailsOnce(pulls, round), 'a:ok, b:unreachable (EHOSTUNREACH)');
  // Round 2: b's pull hangs; the round ends after the grace, that pull still out.
  t.is(
    await round(),
    'a:ok, b:timeout (no answer within 500 ms (not waited for longer: no answer the round before either))',
  );
  t.is(pulls.length, 2);
  t.false(pulls[1]!.signal?.aborted ?? true, "round 2's pull is still out");
  // Round 3: pulled afresh (round 2's pull aborted: one per agent), b back and answering.
  const r3 = round();
  await until(() => pulls.length === 3);
  t.true(pulls[1]!.signal?.aborted);
  pulls[2]!.answer();
  t.is(await r3, 'a:ok, b:ok');
});

test('an answer after its round ended makes the next round hold for the agent again', async (t) => {
  const { pulls, round } = setup();
  await bFailsOnce(pulls, round);
  t.regex(await round(), /b:timeout/);
  // b answers round 2's pull late (a slow agent, back): round 3 waits for b's pull.
  pulls[1]!.answer();
  await new Promise((r) => setTimeout(r, 50)); // its row read and parsed
  const r3 = round();
  await until(() => pulls.length === 3);
  let ended = false;
  void r3.then(() => (ended = true));
  await new Promise((r) => setTimeout(r, 700));
  t.false(ended, 'held past the grace');
  pulls[2]!.answer();
  t.is(await r3, 'a:ok, b:ok');
});

test('when every agent failed the round before, the round waits for them all', async (t) => {
  const { pulls, round } = setup({ all: true });
  const r1 = round();
  await until(() => pulls.length === 2);
  for (const p of pulls) p.fail();
  t.regex(await r1, /a:unreachable.*b:unreachable/);
  const r2 = round();
  await until(() => pulls.length === 4);
  let ended = false;
  void r2.then(() => (ended = true));
  await new Promise((r) => setTimeout(r, 700));
  t.false(ended, 'held past the grace');
  for (const p of pulls.slice(2)) p.fail();
  t.regex(await r2, /a:unreachable.*b:unreachable/);
});
