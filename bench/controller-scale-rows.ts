// The simulated agents' rows of the controller scale section (bench/controller-scale.ts): what
// one agent of a cluster of `nodes` nodes (2 agents a node, pod and host network, 3 zones) would
// answer on /api/v1/results, built to the row's one declaration (src/api/agent-row.ts, type
// AgentRow) with the numbers a healthy minute of probing leaves in it. A pure function of the
// cluster size and the agent's index, so the bench's agents process and its checks agree on
// every byte without passing rows around.
//
// What a row holds (the shipped defaults, rotation off): `peers` core peers (32 by default:
// the other agent on the same node first, then others picked by a hash), each with 5 results
// (udp small + mtu, icmp small + mtu, tcp small), 12 DNS checks (the Service and 2 replicas ×
// 2 queries × udp and tcp) and 3 port targets. About 68 KB of JSON at 32 peers, as the issue
// measured.

import type { AgentRow, DnsCheck, PeerResult, PortCheck } from '../src/api/agent-row.ts';

export const ZONES = ['zone-a', 'zone-b', 'zone-c'] as const;

/** Agent `i` of a cluster: node `i >> 1`, pod network for even i, host for odd. */
export interface SimAgent {
  readonly index: number;
  readonly node: string;
  readonly network: 'pod' | 'host';
  readonly zone: string;
  /** Where the bench's agents process serves this agent's row (127.1.0.0/16, one each). */
  readonly address: string;
}

export function nodeName(n: number): string {
  return `node-${String(n).padStart(5, '0')}`;
}

export function simAgent(i: number): SimAgent {
  const n = i >> 1;
  return {
    index: i,
    node: nodeName(n),
    network: i % 2 === 0 ? 'pod' : 'host',
    zone: ZONES[n % ZONES.length]!,
    // 127.1.x.y with y in 1..250: up to 64,000 agents, each its own address as in a cluster.
    address: `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`,
  };
}

/** A 32-bit mix (murmur3's finaliser): a cheap deterministic "random" for the numbers. */
function mix(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The agent indices agent `i` probes: its node's other agent, then distinct others by hash. */
export function peerIndices(i: number, agents: number, peers: number): number[] {
  const want = Math.min(peers, agents - 1);
  const out: number[] = [];
  const seen = new Set<number>([i]);
  const sibling = i ^ 1;
  if (sibling < agents && want > 0) {
    out.push(sibling);
    seen.add(sibling);
  }
  for (let k = 1; out.length < want; k++) {
    const j = mix(i * 7919 + k) % agents;
    if (seen.has(j)) continue;
    seen.add(j);
    out.push(j);
  }
  return out;
}

const RESULT_KINDS: readonly (readonly [PeerResult['protocol'], PeerResult['size']])[] = [
  ['udp', 'small'],
  ['udp', 'mtu'],
  ['icmp', 'small'],
  ['icmp', 'mtu'],
  ['tcp', 'small'],
];

function result(
  protocol: PeerResult['protocol'],
  size: PeerResult['size'],
  seed: number,
  nowIso: string,
): PeerResult {
  const r = mix(seed);
  // 60 probes a minute; now and then one lost (about 1 result in 20), as on a healthy cluster.
  const lost = r % 20 === 0 ? 1 : 0;
  const base = 0.00015 + (r % 1000) * 4e-7 + (size === 'mtu' ? 0.00005 : 0);
  const rtt = {
    min: base * 0.7,
    p50: base,
    p90: base * 1.4,
    p99: base * 2.3,
    max: base * 3.1,
    mean: base * 1.08,
  };
  return {
    protocol,
    size,
    sent: 60,
    lost,
    lossRatio: lost / 60,
    forwardLost: lost,
    reverseLost: 0,
    duplicates: 0,
    reordered: 0,
    rttSeconds: rtt,
    lastSuccess: nowIso,
    lastFailure: lost > 0 ? 'timeout' : null,
    run: { ok: true, length: lost > 0 ? 17 + (r % 40) : 60, previous: lost > 0 ? 1 : 0 },
    measuredAt: nowIso,
  };
}

function dnsChecks(nowIso: string, seed: number): DnsCheck[] {
  const servers = [
    { serverKind: 'service' as const, server: 'kube-dns', address: '10.96.0.10' },
    { serverKind: 'replica' as const, server: 'coredns-7db6d8ff4d-8xk2p', address: '10.244.1.3' },
    { serverKind: 'replica' as const, server: 'coredns-7db6d8ff4d-q9wzn', address: '10.244.2.7' },
  ];
  const queries = [
    { query: 'cluster', name: 'kubernetes.default' },
    { query: 'external', name: 'example.com' },
  ];
  const out: DnsCheck[] = [];
  for (const s of servers)
    for (const q of queries)
      for (const transport of ['udp', 'tcp'] as const) {
        const r = mix(seed + out.length);
        const lat = 0.0004 + (r % 500) * 1e-6;
        const candidates =
          q.query === 'cluster'
            ? [
                'kubernetes.default.podmesh.svc.cluster.local.',
                'kubernetes.default.svc.cluster.local.',
              ]
            : ['example.com.'];
        out.push({
          ...s,
          port: 53,
          query: q.query,
          name: q.name,
          candidates,
          transport,
          sent: 12,
          failed: 0,
          answeredRatio: 1,
          outcomes: { noerror: 12 },
          lastOutcome: 'noerror',
          lastDetail: null,
          latencySeconds: { p50: lat, p99: lat * 2.5, max: lat * 3 },
          answeredBy: candidates[candidates.length - 1]!,
          lastTried: candidates.length,
          lastSuccess: nowIso,
          run: { ok: true, length: 12, previous: 0 },
        });
      }
  return out;
}

function ports(nowSeed: number): PortCheck[] {
  const targets = [
    { target: 'apiserver', address: '10.96.0.1', port: 443, expected: 'open' as const },
    { target: 'metrics-server', address: '10.96.41.12', port: 443, expected: 'open' as const },
    { target: 'etcd-blocked', address: '10.0.0.10', port: 2379, expected: 'closed' as const },
  ];
  return targets.map((t, k) => {
    const open = t.expected === 'open';
    const c = 0.0003 + (mix(nowSeed + k) % 300) * 1e-6;
    return {
      ...t,
      sent: 12,
      open: open ? 12 : 0,
      openRatio: open ? 1 : 0,
      outcomes: { [open ? 'open' : 'refused']: 12 },
      lastOutcome: open ? 'open' : 'refused',
      lastDetail: open ? null : 'ECONNREFUSED',
      connectSeconds: { p50: c, p99: c * 2, max: c * 3 },
      run: { ok: open, length: 12, previous: 0 },
    };
  });
}

function scopeOf(a: SimAgent, b: SimAgent): string {
  return a.node === b.node ? 'same-node' : a.zone === b.zone ? 'same-zone' : 'cross-zone';
}

/** Agent `i`'s row in a cluster of `agents` agents, probing `peers` core peers. */
export function simRow(i: number, agents: number, peers: number, nowMs: number): AgentRow {
  const self = simAgent(i);
  const nowIso = new Date(nowMs).toISOString();
  return {
    apiVersion: 'podmesh.io/v1',
    kind: 'AgentResults',
    source: { node: self.node, network: self.network, zone: self.zone, address: self.address },
    generatedAt: nowIso,
    windowSeconds: 60,
    intervalMs: 1000,
    probes: {
      udp: { enabled: true, reason: 'ok' },
      tcp: { enabled: true, reason: 'ok' },
      icmp: { enabled: true, reason: 'ok', detail: 'raw socket', thread: 'engine' },
      mtuBytes: 1500,
      timestamps: {
        udp: { source: 'kernel', detail: 'SO_TIMESTAMPING rx software' },
        icmp: { source: 'kernel', detail: 'SO_TIMESTAMPING rx software' },
        tcp: { source: 'userspace', detail: 'connect() has no packet timestamps' },
      },
      dns: {
        enabled: true,
        reason: 'ok',
        detail: 'nameserver 10.96.0.10 from /etc/resolv.conf',
        nameserver: '10.96.0.10',
        search: ['podmesh.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
        ndots: 5,
      },
    },
    peers: peerIndices(i, agents, peers).map((j) => {
      const p = simAgent(j);
      return {
        node: p.node,
        network: p.network,
        zone: p.zone,
        address: p.address,
        path: `${self.network}-to-${p.network}`,
        scope: scopeOf(self, p),
        rotating: false,
        results: RESULT_KINDS.map(([protocol, size], k) =>
          result(protocol, size, i * 1_000_003 + j * 31 + k, nowIso),
        ),
      };
    }),
    dns: dnsChecks(nowIso, i * 13),
    ports: ports(i * 17),
    // The kubernetes Service VIP and three API server endpoints, all answering (apiserver family).
    apiserver: ['service', '10.0.0.11:6443', '10.0.0.12:6443', '10.0.0.13:6443'].map((target) => ({
      target,
      kind: target === 'service' ? ('service' as const) : ('endpoint' as const),
      address: target === 'service' ? '10.96.0.1' : target.split(':')[0]!,
      port: target === 'service' ? 443 : 6443,
      sent: 6,
      failed: 0,
      okRatio: 1,
      outcomes: { ok: 6 },
      lastOutcome: 'ok',
      lastDetail: null,
      readyz: 200,
      connectSeconds: { p50: 0.0004, p99: 0.0011, max: 0.0013 },
      tlsSeconds: { p50: 0.0031, p99: 0.0062, max: 0.0071 },
      run: { ok: true, length: 6, previous: 0 },
    })),
    self: {
      lateRatio: 0.001,
      latenessP99Seconds: 0.0021,
      eventLoopP99Seconds: { main: 0.0118, engine: 0.0104 },
    },
  };
}
