// Test and bench helper: the scenario generator. From a topology (n nodes, zones, a pod and a
// host agent per node) and a fault model (per-packet loss per direction between agents, by
// protocol and size; a latency factor on a pair's or a node's links), it draws a Matrix the way a
// real window fills one: every
// agent probes every other with udp (STAMP), icmp and tcp small probes and udp and icmp MTU-sized
// ones, `probes` times each (60 = a 60 s window at 1 probe/s), and each probe is lost at random
// with the probability the fault model gives its packets. The property tests and the bench run
// triage on thousands of these to measure how often it names a cause that isn't there.
//
// The packet model. A probe is a round trip of two packets, one each way, of its size (STAMP
// reflects the same size, an echo reply is the echo's size). A TCP connect probe is SYN out and
// SYN-ACK back (small), one try (the default 1 s timeout leaves no room for a SYN retransmit):
// so a TCP probe is lost as often as a small UDP one unless the agent's TCP port is faulted.
// STAMP's split counts a lost probe as forward when its request was lost, else reverse; with
// every probe lost nothing is attributed (the sender never hears back).
//
// The latency model. Every link has its own history (the snapshot's baselines: p50 0.4 ms and
// p99 1 ms with a MAD of 5%, 30 buckets, as the controller would hand over), and its cells'
// window quantiles now are drawn around it with up to ±10% noise, so the latency kinds are
// exercised in every scenario; a latency fault multiplies the round trips of the links it
// touches (both ways: a round trip can't tell where the delay sits) and loses nothing.

import type { AgentStatus, Cell, Matrix } from '../../src/api/matrix.ts';
import type { Baselines, FindingKind, LinkBaseline, Snapshot } from '../../src/analysis/types.ts';

type Net = 'pod' | 'host';
type Protocol = 'udp' | 'icmp' | 'tcp';
type Size = 'small' | 'mtu';

export interface Topology {
  readonly nodes: number;
  /** Zones, nodes assigned round-robin; 1 = every node in one zone. */
  readonly zones: number;
  /** Probes per cell in the window. */
  readonly probes: number;
  /** Per-packet loss everywhere (a healthy network's background). */
  readonly background: number;
}

export const DEFAULT_TOPOLOGY: Topology = { nodes: 4, zones: 1, probes: 60, background: 0.0005 };

/** One fault; `loss` is a per-packet loss probability (0..1) unless said otherwise. */
export type Fault =
  | { readonly type: 'healthy' }
  /** Packets from node a to node b lost (one way), or both ways; `pods`: pod-to-pod only. */
  | {
      readonly type: 'pair-loss';
      readonly a: number;
      readonly b: number;
      readonly loss: number;
      readonly oneWay: boolean;
      readonly pods: boolean;
    }
  /** Every packet between the node and any other node lost (its NIC, its link). */
  | { readonly type: 'node-loss'; readonly node: number; readonly loss: number }
  /** MTU-sized packets lost between a pair (both ways). */
  | { readonly type: 'mtu-pair'; readonly a: number; readonly b: number; readonly loss: number }
  /** MTU-sized packets lost between the node and every other node. */
  | { readonly type: 'mtu-node'; readonly node: number; readonly loss: number }
  /** TCP SYNs to one agent's probe port dropped (timeout) or rejected (ICMP unreachable). */
  | {
      readonly type: 'port';
      readonly node: number;
      readonly net: Net;
      readonly loss: number;
      readonly outcome: 'timeout' | 'unreachable' | 'refused';
    }
  /** Round trips between a pair (both ways) `factor` times their baseline; nothing lost. */
  | {
      readonly type: 'latency-pair';
      readonly a: number;
      readonly b: number;
      readonly factor: number;
    }
  /** Round trips between the node and every other node `factor` times their baseline. */
  | { readonly type: 'latency-node'; readonly node: number; readonly factor: number };

/** The history every link has: p50 0.4 ms and p99 1 ms, MAD 5%, 30 one-minute buckets. */
const BASE_P50 = 0.0004;
const BASE_P99 = 0.001;
const LINK_BASELINE: LinkBaseline = {
  p50: { median: BASE_P50, mad: BASE_P50 * 0.05, samples: 30 },
  p99: { median: BASE_P99, mad: BASE_P99 * 0.05, samples: 30 },
};

/** The factor a latency fault puts on the round trips between two agents (1: untouched). */
function rttFactor(f: Fault, from: Agent, to: Agent): number {
  if (from.node === to.node) return 1;
  if (f.type === 'latency-pair') {
    const between =
      (from.node === f.a && to.node === f.b) || (from.node === f.b && to.node === f.a);
    return between ? f.factor : 1;
  }
  if (f.type === 'latency-node') return from.node === f.node || to.node === f.node ? f.factor : 1;
  return 1;
}

const nodeName = (i: number): string => `node-${i + 1}`;

/** mulberry32: small, fast, seeded; good enough for drawing probe outcomes. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Binomial(n, p) by geometric skips: O(n·min(p, 1-p) + 1) draws. */
export function binomial(rand: () => number, n: number, p: number): number {
  if (p <= 0 || n <= 0) return 0;
  if (p >= 1) return n;
  if (p > 0.5) return n - binomial(rand, n, 1 - p);
  const logq = Math.log(1 - p);
  let k = 0;
  let i = 0;
  for (;;) {
    // Trials until the next success: 1 + floor(log(U) / log(1 - p)).
    i += 1 + Math.floor(Math.log(1 - rand()) / logq);
    if (i > n) return k;
    k++;
  }
}

interface Agent {
  readonly node: number;
  readonly net: Net;
}

/** The per-packet loss the fault gives a packet of this kind from one agent to another. */
function packetLoss(
  f: Fault,
  from: Agent,
  to: Agent,
  size: Size,
  tcpSyn: boolean,
): { p: number; outcome?: string } {
  const cross = from.node !== to.node;
  switch (f.type) {
    case 'healthy':
      return { p: 0 };
    case 'pair-loss': {
      if (!cross) return { p: 0 };
      if (f.pods && (from.net !== 'pod' || to.net !== 'pod')) return { p: 0 };
      const ab = from.node === f.a && to.node === f.b;
      const ba = from.node === f.b && to.node === f.a;
      return { p: ab || (ba && !f.oneWay) ? f.loss : 0 };
    }
    case 'node-loss':
      return { p: cross && (from.node === f.node || to.node === f.node) ? f.loss : 0 };
    case 'mtu-pair': {
      const between =
        (from.node === f.a && to.node === f.b) || (from.node === f.b && to.node === f.a);
      return { p: size === 'mtu' && between ? f.loss : 0 };
    }
    case 'mtu-node':
      return {
        p: size === 'mtu' && cross && (from.node === f.node || to.node === f.node) ? f.loss : 0,
      };
    case 'port':
      return tcpSyn && to.node === f.node && to.net === f.net
        ? { p: f.loss, outcome: f.outcome }
        : { p: 0 };
    case 'latency-pair':
    case 'latency-node':
      return { p: 0 };
  }
}

const combine = (a: number, b: number): number => 1 - (1 - a) * (1 - b);

/** A matrix drawn from the topology and the fault, with a snapshot around it. */
export function generate(topo: Topology, fault: Fault, seed: number): Snapshot {
  const rand = prng(seed);
  const agents: Agent[] = [];
  for (let i = 0; i < topo.nodes; i++)
    for (const net of ['pod', 'host'] as const) agents.push({ node: i, net });
  const zones: Record<string, string> = {};
  for (let i = 0; i < topo.nodes; i++) zones[nodeName(i)] = `zone-${(i % topo.zones) + 1}`;
  const cells: Cell[] = [];
  const links = new Map<string, LinkBaseline>();
  const n = topo.probes;
  for (const s of agents)
    for (const t of agents) {
      if (s === t) continue;
      links.set(`${nodeName(s.node)}/${s.net}>${nodeName(t.node)}/${t.net}`, LINK_BASELINE);
      const factor = rttFactor(fault, s, t);
      const shapes: [Protocol, Size][] = [
        ['udp', 'small'],
        ['udp', 'mtu'],
        ['icmp', 'small'],
        ['icmp', 'mtu'],
        ['tcp', 'small'],
      ];
      for (const [protocol, size] of shapes) {
        const out = packetLoss(fault, s, t, size, protocol === 'tcp');
        const back = packetLoss(fault, t, s, size, false);
        const f = combine(out.p, topo.background);
        const r = combine(back.p, topo.background);
        const lostF = binomial(rand, n, f);
        const lostR = binomial(rand, n - lostF, r);
        const lost = lostF + lostR;
        const attributed = protocol === 'udp' && lost < n;
        cells.push({
          sourceNode: nodeName(s.node),
          sourceNetwork: s.net,
          targetNode: nodeName(t.node),
          targetNetwork: t.net,
          path: `${s.net}-to-${t.net}`,
          scope:
            s.node === t.node
              ? 'same-node'
              : zones[nodeName(s.node)] === zones[nodeName(t.node)]
                ? 'same-zone'
                : 'cross-zone',
          protocol,
          size,
          sent: n,
          lost,
          lossRatio: lost / n,
          forwardLost: attributed ? lostF : 0,
          reverseLost: attributed ? lostR : 0,
          rttSeconds: lost === n ? null : rttOf(rand, factor),
          lastFailure:
            lost === 0
              ? null
              : lostF > 0 && out.outcome !== undefined && out.p > 0
                ? out.outcome
                : 'timeout',
        });
      }
    }
  const agentRows: AgentStatus[] = agents.map((a) => ({
    node: nodeName(a.node),
    network: a.net,
    url:
      a.net === 'host' ? `http://10.0.0.${a.node + 1}:9870` : `http://10.244.${a.node + 1}.2:9860`,
    state: 'ok',
    zone: zones[nodeName(a.node)]!,
    self: {
      lateRatio: 0,
      latenessP99Seconds: 0.002,
      eventLoopP99Seconds: { main: 0.01, engine: 0.01 },
    },
    lastSeen: '2026-01-01T00:00:00.000Z',
  }));
  const matrix: Matrix = {
    apiVersion: 'podmesh.io/v1',
    kind: 'Matrix',
    generatedAt: '2026-01-01T00:00:00.000Z',
    agents: agentRows,
    nodes: Array.from({ length: topo.nodes }, (_, i) => nodeName(i)),
    zones,
    cells,
    dns: [],
    ports: [],
    apiserver: [],
  };
  const baselines: Baselines = { minutes: 60, links };
  return { matrix, coverage: undefined, baselines };
}

/** A cell's window quantiles: the baseline's, ±10% noise, times the fault's factor. */
function rttOf(rand: () => number, factor: number): NonNullable<Cell['rttSeconds']> {
  const k = factor * (0.9 + 0.2 * rand());
  return {
    min: 0.0002 * k,
    p50: BASE_P50 * k,
    p90: 0.0006 * k,
    p99: BASE_P99 * k,
    max: 0.002 * k,
    mean: BASE_P50 * k,
  };
}

/**
 * Probe loss from which random loss may read as the cut it nearly is: a link is failing when its
 * loss is significantly at or above failRatio (0.9), which loss from about 85% can reach.
 */
const CUT = 0.85;

/** The share of probes (round trips) the fault loses where it applies. */
export function probeLoss(f: Fault): number {
  if (!('loss' in f)) return 0;
  if (f.type === 'pair-loss' && f.oneWay) return f.loss;
  if (f.type === 'port') return f.loss;
  return 1 - (1 - f.loss) ** 2;
}

/**
 * The kinds a fault may be named as: its own, and for lower levels nothing at all (not
 * significant, or under the threshold: never a false finding). Heavy random loss (≥ CUT per
 * packet) may read as the cut it nearly is. Anything else is a false finding.
 */
export function allowedKinds(f: Fault, topo: Topology): ReadonlySet<FindingKind> {
  const cut = probeLoss(f) >= CUT;
  switch (f.type) {
    case 'healthy':
      return new Set();
    case 'pair-loss':
      return new Set<FindingKind>([
        'pair-loss',
        ...(cut
          ? ([
              f.pods ? 'overlay-broken' : 'host-network',
              ...(f.oneWay ? (['asymmetric-path'] as const) : []),
            ] as const)
          : []),
      ]);
    case 'node-loss':
      return new Set<FindingKind>([
        'pair-loss',
        // A node cut off; the pairs that reach significance first read as its node network
        // (with two nodes, always: which side is cut can't be told).
        ...(cut
          ? (['host-network', ...(topo.nodes > 2 ? (['node-isolated'] as const) : [])] as const)
          : []),
      ]);
    case 'mtu-pair':
    case 'mtu-node':
      // Partial MTU-sized loss below the contrast is "only MTU-sized probes lost" pair loss.
      return new Set<FindingKind>(['mtu-blackhole', 'pair-loss']);
    case 'port': {
      const own: FindingKind =
        f.outcome === 'unreachable'
          ? 'port-rejected'
          : f.outcome === 'refused'
            ? 'port-refused'
            : 'port-blocked';
      // TCP-only loss below the contrast is "only TCP connects fail" pair loss.
      return new Set<FindingKind>([own, 'pair-loss']);
    }
    case 'latency-pair':
    case 'latency-node':
      // Slow, not lossy: a latency kind or nothing, never a loss or reachability kind. Which
      // latency kind depends on the topology (two nodes in two zones are a zone pair; a node
      // with two peers is a pair and a hub alike), so any of the three is the fault's own.
      return new Set<FindingKind>(['latency-zone-pair', 'latency-node', 'latency-pair']);
  }
}

/**
 * A fault clearly there, which triage must name (for the miss rate): losing at least half the
 * probes where it applies, or round trips at least 4 times their baseline (well past the 2×,
 * +0.5 ms and 3 MAD floors: 0.4 ms → 1.6 ms).
 */
export function isStrong(f: Fault): boolean {
  if (f.type === 'latency-pair' || f.type === 'latency-node') return f.factor >= 4;
  return mainKind(f) !== undefined && probeLoss(f) >= 0.5;
}

/** The kind a fault should be named as when it is clearly there (for the miss rate). */
export function mainKind(f: Fault): FindingKind | undefined {
  switch (f.type) {
    case 'healthy':
      return undefined;
    case 'pair-loss':
    case 'node-loss':
      return 'pair-loss';
    case 'mtu-pair':
    case 'mtu-node':
      return 'mtu-blackhole';
    case 'port':
      return f.outcome === 'unreachable'
        ? 'port-rejected'
        : f.outcome === 'refused'
          ? 'port-refused'
          : 'port-blocked';
    case 'latency-pair':
      return 'latency-pair';
    case 'latency-node':
      return 'latency-node';
  }
}

/** Describes a fault for logs: "pair-loss node-1→node-2 30% one-way pods". */
export function describeFault(f: Fault): string {
  const pc = (x: number): string => `${Math.round(x * 1000) / 10}%`;
  switch (f.type) {
    case 'healthy':
      return 'healthy';
    case 'pair-loss':
      return `pair-loss ${nodeName(f.a)}${f.oneWay ? '→' : '↔'}${nodeName(f.b)} ${pc(f.loss)}${f.pods ? ' pods' : ''}`;
    case 'node-loss':
      return `node-loss ${nodeName(f.node)} ${pc(f.loss)}`;
    case 'mtu-pair':
      return `mtu ${nodeName(f.a)}↔${nodeName(f.b)} ${pc(f.loss)}`;
    case 'mtu-node':
      return `mtu ${nodeName(f.node)} ${pc(f.loss)}`;
    case 'port':
      return `port ${nodeName(f.node)}/${f.net} ${f.outcome} ${pc(f.loss)}`;
    case 'latency-pair':
      return `latency ${nodeName(f.a)}↔${nodeName(f.b)} ×${f.factor.toFixed(2)}`;
    case 'latency-node':
      return `latency ${nodeName(f.node)} ×${f.factor.toFixed(2)}`;
  }
}

/** A random single fault on a random topology, from one seed (for the bench's big run). */
export function randomScenario(seed: number): { topo: Topology; fault: Fault } {
  const rand = prng(seed ^ 0x9e3779b9);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const nodes = pick([2, 3, 4, 5, 6]);
  const topo: Topology = {
    nodes,
    zones: pick([1, 1, 2]),
    probes: pick([20, 60, 60, 120]),
    background: 0.0005,
  };
  // Loss levels 1%..100%, log-uniform below 10% so low levels get their share.
  const level = (): number => {
    const u = rand();
    return u < 0.4
      ? Math.exp(Math.log(0.01) + (u / 0.4) * Math.log(10))
      : 0.1 + ((u - 0.4) / 0.6) * 0.9;
  };
  const a = Math.floor(rand() * nodes);
  const b = (a + 1 + Math.floor(rand() * (nodes - 1))) % nodes;
  const kinds = [
    'healthy',
    'pair-loss',
    'node-loss',
    'mtu-pair',
    'mtu-node',
    'port',
    'latency-pair',
    'latency-node',
  ] as const;
  // Latency factors 1.05×..20×, log-uniform: as many near the floors as far past them.
  const factor = (): number => Math.exp(Math.log(1.05) + rand() * Math.log(20 / 1.05));
  const kind = pick(kinds);
  const fault: Fault =
    kind === 'healthy'
      ? { type: 'healthy' }
      : kind === 'pair-loss'
        ? { type: 'pair-loss', a, b, loss: level(), oneWay: rand() < 0.5, pods: rand() < 0.5 }
        : kind === 'node-loss'
          ? { type: 'node-loss', node: a, loss: level() }
          : kind === 'mtu-pair'
            ? { type: 'mtu-pair', a, b, loss: level() }
            : kind === 'mtu-node'
              ? { type: 'mtu-node', node: a, loss: level() }
              : kind === 'latency-pair'
                ? { type: 'latency-pair', a, b, factor: factor() }
                : kind === 'latency-node'
                  ? { type: 'latency-node', node: a, factor: factor() }
                  : {
                      type: 'port',
                      node: a,
                      net: rand() < 0.5 ? 'pod' : 'host',
                      loss: level(),
                      outcome: pick(['timeout', 'unreachable', 'refused'] as const),
                    };
  return { topo, fault };
}
