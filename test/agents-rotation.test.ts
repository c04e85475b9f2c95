// Loopback integration of coverage by rotation (docs/scale.md): with more peers than
// peers.limit, an agent's core set gets per-pair series and every other peer is visited in turn,
// its results in the row (the controller's matrix) but not in /metrics; the agent states its
// coverage period.

import test from 'ava';
import { acceptedAgentRowSchema, agentRowSchema, type AgentRow } from '../src/api/agent-row.ts';
import { assembleMatrix } from '../src/controller/matrix.ts';
import { connect, scrape, startAgent, until, type Running } from './support/agents.ts';

const INTERVAL = 200;
const settings = {
  'probes.intervalMs': INTERVAL,
  'probes.timeoutMs': 150,
  'probes.icmp': false,
  'window.seconds': 10,
  // 5 peers each, room for 2: a core of 1 and one lane ((2 - 1) × 3 jobs / 2 a visit).
  'peers.limit': 2,
  'peers.core': 1,
  'peers.watchers': 0,
};

async function rowFor(url: string): Promise<AgentRow> {
  return (await (await fetch(`${url}/api/v1/results`)).json()) as AgentRow;
}

async function sixAgents(
  t: { teardown(f: () => Promise<unknown>): void },
  octet: number,
  rotation: boolean,
): Promise<Running[]> {
  const agents: Running[] = [];
  t.teardown(() => Promise.all(agents.map((a) => a.agent.stop())));
  for (let i = 1; i <= 6; i++)
    agents.push(
      await startAgent(
        { node: `n${i}`, address: `127.42.${octet}.${i}` },
        { ...settings, 'peers.rotation': rotation },
      ),
    );
  connect(agents);
  return agents;
}

test('with peers.rotation every peer reaches the row within the period; only the core set has per-pair series', async (t) => {
  const agents = await sixAgents(t, 19, true);
  const a = agents[0]!;
  // 4 rotating peers on one lane: a period of 4 slots (0.8 s).
  const row = await until(
    'n1 has answered probes from all 5 peers in its row',
    async () => {
      const r = await rowFor(a.url);
      const ok = r.peers.filter((p) =>
        p.results.some((c) => c.protocol === 'udp' && c.sent - c.lost > 0),
      );
      return ok.length === 5 ? r : false;
    },
    10_000,
  );
  t.deepEqual(row.peers.map((p) => p.node).sort(), ['n2', 'n3', 'n4', 'n5', 'n6']);
  // Visits are one probe of each kind at its small size.
  const rotatingCells = row.peers.slice(1).flatMap((p) => p.results);
  t.true(rotatingCells.every((c) => c.size === 'small'));
  // The row says which peer is the core one and which are visited, and when each cell was last
  // measured: within the window, never after the row was made.
  t.true(agentRowSchema.safeParse(row).success);
  t.deepEqual(
    row.peers.map((p) => p.rotating),
    [false, true, true, true, true],
  );
  const made = Date.parse(row.generatedAt);
  for (const c of row.peers.flatMap((p) => p.results)) {
    const at = Date.parse(c.measuredAt);
    t.true(
      at <= made && at > made - row.windowSeconds * 1000,
      `${c.measuredAt} vs ${row.generatedAt}`,
    );
  }
  // ... and the controller's matrix carries both into its cells.
  const matrix = assembleMatrix(
    [
      {
        endpoint: { node: 'n1', network: 'pod', url: a.url },
        state: 'ok',
        row: acceptedAgentRowSchema.parse(row),
      },
    ],
    made,
    new Map(),
  );
  const core = row.peers[0]!.node;
  t.true(matrix.cells.length > 0);
  for (const c of matrix.cells) {
    t.is(c.rotating, c.targetNode !== core);
    t.is(typeof c.measuredAt, 'string');
  }
  const samples = await scrape(a.url);
  const targets = new Set(
    samples
      .filter((s) => s.name === 'podmesh_probes_sent_total')
      .map((s) => s.labels['target_node']),
  );
  t.is(targets.size, 1, 'per-pair series for the one core peer only');
  // The RTT histogram by scope counts every answered probe, the rotating ones too.
  const rttCount = samples
    .filter((s) => s.name === 'podmesh_rtt_seconds_count' && s.labels['protocol'] === 'udp')
    .reduce((sum, s) => sum + s.value, 0);
  const coreUdp = samples
    .filter((s) => s.name === 'podmesh_probes_sent_total' && s.labels['protocol'] === 'udp')
    .reduce((sum, s) => sum + s.value, 0);
  t.true(rttCount > coreUdp, `${rttCount} udp RTTs observed, ${coreUdp} udp probes to the core`);
  t.is(samples.find((s) => s.name === 'podmesh_peers')?.value, 1);
  t.is(
    samples.find((s) => s.name === 'podmesh_coverage_period_seconds')?.value,
    (4 * INTERVAL) / 1000,
  );
});

test('without peers.rotation the peers outside the limit are never probed, and the coverage period says so', async (t) => {
  const agents = await sixAgents(t, 29, false);
  const a = agents[0]!;
  await until(
    'n1 has probed its 2 peers',
    async () =>
      (await rowFor(a.url)).peers.filter((p) => p.results.some((c) => c.sent > 2)).length === 2,
    10_000,
  );
  await new Promise((r) => setTimeout(r, 6 * INTERVAL));
  t.is((await rowFor(a.url)).peers.length, 2);
  // prom-client writes +Inf, which the test's parser reads as NaN: read the line itself.
  const text = await (await fetch(`${a.url}/metrics`)).text();
  t.regex(text, /^podmesh_coverage_period_seconds\{[^}]*\} \+Inf$/m);
});
