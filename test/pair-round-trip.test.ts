// The per-pair RTT histogram end to end, as Prometheus reads it: four agents' recorders
// (AgentMetrics, the code the agent runs) are fed round trips from known distributions for ten
// minutes and scraped every 15 s; their /metrics samples become promtool input series; promtool
// evaluates the shipped recording rules (alerts/podmesh-rules.yaml, podmesh.latency.rules) and
// raw histogram_quantile() queries over them. Each quantile Prometheus gives must lie in the
// bucket that holds the true quantile of the round trips recorded in the range: per pair, pooled
// toward a node, pooled per zone pair (through podmesh_agent_info's zones), and over a range
// the rules don't use. Needs promtool (Debian: prometheus); set PROMTOOL to use another binary.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { diffPeers } from '../src/core/peer-diff.ts';
import type { Peer, Self } from '../src/core/types.ts';
import { PAIR_RTT_BUCKETS } from '../src/metrics/catalogue.ts';
import { AgentMetrics } from '../src/metrics/recorder.ts';
import { PairWindowStore } from '../src/store/pair-window.ts';
import { FakeClock } from './support/fake-clock.ts';

const PROMTOOL = process.env.PROMTOOL ?? 'promtool';
const RULES = new URL('../alerts/podmesh-rules.yaml', import.meta.url).pathname;

const NODES = [
  ['node-1', 'zone-a'],
  ['node-2', 'zone-a'],
  ['node-3', 'zone-b'],
  ['node-4', 'zone-b'],
] as const;
type Node = (typeof NODES)[number][0];

/** Round trips per ordered pair, uniform in [lo, hi] seconds; log-uniform where marked. */
const RTT: Partial<Record<`${Node}>${Node}`, readonly [number, number, 'log'?]>> = {
  'node-1>node-2': [120e-6, 1.5e-3, 'log'],
  'node-1>node-3': [1.2e-3, 2e-3],
  'node-2>node-3': [6e-3, 9e-3],
  'node-4>node-3': [150e-6, 200e-6],
  'node-1>node-4': [1.2e-3, 2e-3],
  'node-2>node-4': [1.2e-3, 2e-3],
};
const OTHER = [200e-6, 400e-6] as const;

/** A small deterministic generator (mulberry32), so the test is the same every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const peerOf = (node: string, zone: string): Peer => ({
  id: `${node}/pod`,
  node,
  network: 'pod',
  zone,
  address: '198.18.0.1',
  stampPort: 9862,
  tcpPort: 9863,
  httpPort: 9860,
});

interface Observed {
  readonly pair: string;
  readonly atS: number;
  readonly rtt: number;
}

/** Ten minutes of probing, 1 probe a second per pair; /metrics of every agent every 15 s. */
async function run(): Promise<{ series: Map<string, number[]>; observed: Observed[] }> {
  const clock = new FakeClock(1_700_000_000_000);
  const rand = random(16);
  const agents = NODES.map(([node, zone]) => {
    const self: Self = { node, network: 'pod', zone, address: '198.18.0.1' };
    const m = new AgentMetrics(self, new PairWindowStore(clock, 60_000), 'test');
    const peers = NODES.filter(([n]) => n !== node).map(([n, z]) => peerOf(n, z));
    m.pairs.setPeers(diffPeers([], peers));
    return { node, m, peers };
  });
  const series = new Map<string, number[]>();
  const observed: Observed[] = [];
  for (let s = 0; s <= 600; s++) {
    if (s > 0)
      for (const a of agents)
        for (const p of a.peers) {
          const pair = `${a.node}>${p.node}`;
          const [lo, hi, log] = RTT[pair as keyof typeof RTT] ?? OTHER;
          const u = rand();
          const rtt = log === 'log' ? lo * (hi / lo) ** u : lo + (hi - lo) * u;
          observed.push({ pair, atS: s, rtt });
          a.m.pairs.record(
            {
              peerId: p.id,
              kind: 'udp',
              size: 'small',
              ok: true,
              rttSeconds: rtt,
              sentAtMs: clock.nowMs(),
            },
            0,
          );
        }
    if (s % 15 === 0)
      for (const a of agents) {
        const text = await a.m.render();
        for (const line of text.split('\n')) {
          if (!/^podmesh_(pair_round_trip_seconds_|agent_info)/.test(line)) continue;
          const at = line.lastIndexOf(' ');
          const name = line.slice(0, at);
          const values = series.get(name) ?? [];
          values.push(Number(line.slice(at + 1)));
          series.set(name, values);
        }
      }
    await clock.advance(1000);
  }
  return { series, observed };
}

/** Nearest-rank quantile. */
function quantile(xs: readonly number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

/** The bucket (lower bound exclusive, upper inclusive) that holds `x`. */
function bucketOf(x: number): [number, number] {
  const i = PAIR_RTT_BUCKETS.findIndex((b) => x <= b);
  if (i < 0) throw new Error(`${x} is above the last bucket`);
  return [i === 0 ? 0 : PAIR_RTT_BUCKETS[i - 1]!, PAIR_RTT_BUCKETS[i]!];
}

interface Check {
  readonly what: string;
  readonly expr: string;
  /** The labels of the result, as promtool prints them. */
  readonly labels: string;
  readonly pairs: readonly string[];
  readonly q: number;
  readonly rangeS: number;
}

const PAIR_LABELS = (s: string, t: string): string =>
  `{path="pod-to-pod", protocol="udp", source_node="${s}", target_node="${t}"}`;

const CHECKS: readonly Check[] = [
  {
    what: 'pair p50',
    expr: 'podmesh:pair_round_trip_seconds:p50_rate5m{source_node="node-1", target_node="node-2"}',
    labels: PAIR_LABELS('node-1', 'node-2'),
    pairs: ['node-1>node-2'],
    q: 0.5,
    rangeS: 300,
  },
  {
    what: 'pair p99',
    expr: 'podmesh:pair_round_trip_seconds:p99_rate5m{source_node="node-1", target_node="node-2"}',
    labels: PAIR_LABELS('node-1', 'node-2'),
    pairs: ['node-1>node-2'],
    q: 0.99,
    rangeS: 300,
  },
  {
    what: 'toward node-3 p50 (three sources pooled)',
    expr: 'podmesh:node_round_trip_seconds:p50_rate5m{target_node="node-3"}',
    labels: '{path="pod-to-pod", protocol="udp", target_node="node-3"}',
    pairs: ['node-1>node-3', 'node-2>node-3', 'node-4>node-3'],
    q: 0.5,
    rangeS: 300,
  },
  {
    what: 'toward node-3 p99 (three sources pooled)',
    expr: 'podmesh:node_round_trip_seconds:p99_rate5m{target_node="node-3"}',
    labels: '{path="pod-to-pod", protocol="udp", target_node="node-3"}',
    pairs: ['node-1>node-3', 'node-2>node-3', 'node-4>node-3'],
    q: 0.99,
    rangeS: 300,
  },
  {
    what: 'zone-a -> zone-b p50',
    expr: 'podmesh:zone_pair_round_trip_seconds:p50_rate5m{source_zone="zone-a", target_zone="zone-b"}',
    labels: '{path="pod-to-pod", protocol="udp", source_zone="zone-a", target_zone="zone-b"}',
    pairs: ['node-1>node-3', 'node-2>node-3', 'node-1>node-4', 'node-2>node-4'],
    q: 0.5,
    rangeS: 300,
  },
  {
    what: 'zone-a -> zone-b p99',
    expr: 'podmesh:zone_pair_round_trip_seconds:p99_rate5m{source_zone="zone-a", target_zone="zone-b"}',
    labels: '{path="pod-to-pod", protocol="udp", source_zone="zone-a", target_zone="zone-b"}',
    pairs: ['node-1>node-3', 'node-2>node-3', 'node-1>node-4', 'node-2>node-4'],
    q: 0.99,
    rangeS: 300,
  },
  {
    what: 'zone-b -> zone-a p50',
    expr: 'podmesh:zone_pair_round_trip_seconds:p50_rate5m{source_zone="zone-b", target_zone="zone-a"}',
    labels: '{path="pod-to-pod", protocol="udp", source_zone="zone-b", target_zone="zone-a"}',
    pairs: ['node-3>node-1', 'node-3>node-2', 'node-4>node-1', 'node-4>node-2'],
    q: 0.5,
    rangeS: 300,
  },
  {
    what: 'pair p90 over 10 minutes, straight from the buckets',
    expr: 'histogram_quantile(0.9, sum by (le) (rate(podmesh_pair_round_trip_seconds_bucket{source_node="node-1", target_node="node-2"}[10m])))',
    labels: '{}',
    pairs: ['node-1>node-2'],
    q: 0.9,
    rangeS: 600,
  },
];

test('histogram_quantile over the exported pair buckets lands in the bucket of the true quantile', async (t) => {
  const { series, observed } = await run();
  t.true(
    [...series.keys()].some((k) => k.startsWith('podmesh_pair_round_trip_seconds_bucket{')),
    'the agents export the pair RTT histogram',
  );
  const evalS = 600;
  const tests = CHECKS.map((c) => {
    const rtts = observed
      .filter((o) => c.pairs.includes(o.pair) && o.atS > evalS - c.rangeS)
      .map((o) => o.rtt);
    const truth = quantile(rtts, c.q);
    const [lo, hi] = bucketOf(truth);
    t.log(`${c.what}: true ${(truth * 1e3).toFixed(3)} ms, bucket (${lo}, ${hi}]`);
    return {
      expr: `(${c.expr} >= bool ${lo}) * (${c.expr} <= bool ${hi})`,
      eval_time: `${evalS}s`,
      exp_samples: [{ labels: c.labels, value: 1 }],
    };
  });
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-pair-rtt-'));
  try {
    const file = join(dir, 'pair-rtt.test.yaml');
    writeFileSync(
      file,
      stringify({
        rule_files: [RULES],
        evaluation_interval: '15s',
        tests: [
          {
            interval: '15s',
            input_series: [...series].map(([name, values]) => ({
              series: name,
              values: values.join(' '),
            })),
            promql_expr_test: tests,
          },
        ],
      }),
    );
    const r = spawnSync(PROMTOOL, ['test', 'rules', file], { encoding: 'utf8' });
    if (r.error !== undefined) {
      t.fail(`cannot run ${PROMTOOL} (${r.error.message}): install the Debian package prometheus`);
      return;
    }
    t.is(r.status, 0, `${r.stdout}${r.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
