// `npm run bench -- --only=series`: how many series one agent's /metrics holds, counted the way
// Prometheus would ingest them (one per sample line), for the budget of issue 18 (≤ 2,000 series
// per agent at 5,000 nodes) and issue 16 (the pair RTT histogram's share of it). No network and
// no probes: the agent's own recorder (AgentMetrics) is fed what a full minute of probing gives
// an agent at the shipped defaults, then rendered once.
//
// The agent: the pod agent of one node in a cluster of `nodes` nodes (2 agents a node, 3 zones),
// its core set planned by planPeers as the agent plans it (peers.limit 32, rotation off, the
// default; with peers.rotation the core set is smaller, 14, so this is the worst case), every job
// of planJobs (udp small + mtu, icmp small + mtu, tcp: 5 a peer) run 60 times with the pod
// network's RTTs, a few failures of each kind (so the failure-reason and STAMP counters exist,
// as they do on a real cluster within hours), and the default DNS checks against the Service and
// two CoreDNS replicas. Port targets are off by default and not counted.

import { Histogram, Registry } from 'prom-client';
import type { Peer, ProbeKind, Self } from '../src/core/types.ts';
import { diffPeers } from '../src/core/peer-diff.ts';
import { FakeClock } from '../test/support/fake-clock.ts';
import { asSelf, benchCluster } from '../test/support/cluster-fixture.ts';
import { planJobs } from '../src/mesh/families/peer.ts';
import { planPeers } from '../src/mesh/peer-plan.ts';
import { PAIR_RTT_BUCKETS } from '../src/metrics/catalogue.ts';
import { AgentMetrics } from '../src/metrics/recorder.ts';
import { SlotHistogram } from '../src/metrics/slot-histogram.ts';
import { dnsJobKey, type DnsJob } from '../src/probes/dns-job.ts';
import { DnsWindowStore } from '../src/store/dns-window.ts';
import { PairWindowStore } from '../src/store/pair-window.ts';

/** Issue 18's per-agent budget, and the nodes it is stated for. */
export const SERIES_TARGETS = { perAgent: 2000, nodes: 5000 } as const;

export interface SeriesReport {
  readonly nodes: number;
  readonly core: number;
  readonly peers: number;
  readonly jobs: number;
  /** Sample lines in the exposition. */
  readonly total: number;
  /** Sample lines per metric family (a histogram's _bucket, _sum and _count count as one). */
  readonly byFamily: Readonly<Record<string, number>>;
}

/** Sample lines per metric family in a Prometheus text exposition. */
export function seriesByFamily(text: string, families: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  // Longest first, so podmesh_pair_rtt_seconds_bucket is not counted as podmesh_pair_rtt_seconds'.
  const names = [...families].sort((a, b) => b.length - a.length);
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const metric = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? '';
    const family =
      names.find((n) => metric === n) ??
      names.find((n) => /^(.*)_(bucket|sum|count)$/.exec(metric)?.[1] === n) ??
      metric;
    out.set(family, (out.get(family) ?? 0) + 1);
  }
  return out;
}

/** RTTs of a pod network: same node ~50 µs, same zone ~300 µs, cross zone ~1 ms, with a tail. */
function rttFor(self: Self, p: Peer, i: number): number {
  const base = p.node === self.node ? 50e-6 : p.zone === self.zone ? 300e-6 : 1e-3;
  return base * (1 + (i % 10) / 10) * (i % 50 === 0 ? 5 : 1);
}

/**
 * `core`: the core set's size, 32 (peers.limit, rotation off: the default) or 14 (peers.core,
 * with peers.rotation once the cluster outgrows the limit, docs/scale.md).
 */
export async function measureSeries(nodes: number, core: number): Promise<SeriesReport> {
  const all = benchCluster(nodes);
  const me = all[0]!;
  const self = asSelf(me);
  const sizes = { kinds: new Set<ProbeKind>(['udp', 'icmp', 'tcp']), mtu: true, mtuBytes: 1450 };
  const opts = { ...sizes, udpSmallBytes: 72 };
  const jobsPerPeer = planJobs([me], opts).length;
  const plan = planPeers(self, all, {
    limit: 32,
    core,
    watchers: 8,
    jobsPerPeer,
    jobsPerVisit: 3,
  });
  const clock = new FakeClock(1_700_000_000_000);
  const store = new PairWindowStore(clock, 60_000);
  const dnsStore = new DnsWindowStore(clock, 60_000);
  const m = new AgentMetrics(self, store, 'bench', dnsStore);
  m.pairs.setPeers(diffPeers([], plan.core));
  const jobs = planJobs(plan.core, opts);
  for (let i = 0; i < 60; i++) {
    for (const j of jobs) {
      const base = { peerId: j.target.peer.id, kind: j.kind, size: j.target.size };
      const r =
        i === 7
          ? { ...base, ok: false as const, reason: 'timeout' as const, sentAtMs: clock.nowMs() }
          : {
              ...base,
              ok: true as const,
              rttSeconds: rttFor(self, j.target.peer, i),
              sentAtMs: clock.nowMs(),
              ...(j.kind === 'udp'
                ? {
                    stamp: {
                      forwardLost: i === 8 ? 1 : 0,
                      reverseLost: 0,
                      duplicates: 0,
                      reordered: 0,
                      reflectorDwellSeconds: 1e-5,
                    },
                  }
                : {}),
            };
      store.record(r);
      m.pairs.record(r, 0.2);
    }
    await clock.advance(1000);
  }
  // Rotating visits (peers.rotation): no per-pair series, but the scope histograms count them.
  for (const lane of plan.rotation.lanes)
    for (const p of lane)
      for (const kind of ['udp', 'icmp', 'tcp'] as const) {
        const r = {
          peerId: p.id,
          kind,
          size: 'small' as const,
          ok: true as const,
          rttSeconds: rttFor(self, p, 1),
          sentAtMs: clock.nowMs(),
        };
        m.pairs.recordRotating(r, p, 0.2);
      }
  // The default DNS checks (docs/metrics.md, "DNS load"): service FQDN over udp and tcp, short
  // name and external name over udp, against the Service VIP and two replicas.
  const checks = [
    ['service', 'udp'],
    ['service', 'tcp'],
    ['short', 'udp'],
    ['external', 'udp'],
  ] as const;
  const dnsJobs: DnsJob[] = [];
  for (const [serverKind, server] of [
    ['service', 'service'],
    ['replica', all[2]!.node],
    ['replica', all[4]!.node],
  ] as const)
    for (const [query, transport] of checks) {
      dnsJobs.push({
        key: dnsJobKey(serverKind, server, query, transport),
        serverKind,
        server,
        address: '10.96.0.10',
        port: 53,
        query,
        candidates: ['kubernetes.default.svc.cluster.local.'],
        transport,
      });
    }
  m.dns.setJobs(dnsJobs);
  for (const j of dnsJobs)
    for (let i = 0; i < 12; i++) {
      const r = {
        key: j.key,
        outcome: 'noerror' as const,
        answered: true,
        seconds: 0.0008,
        sentAtMs: clock.nowMs(),
        tried: 1,
        answeredBy: j.candidates[0],
        truncatedRetried: false,
      };
      dnsStore.record(r);
      m.dns.record(r);
    }
  m.health.setIcmp(true, 'ok');
  m.health.setCoveragePeriod(1);
  m.health.setMainLoopDelay({ p50: 0.001, p90: 0.002, p99: 0.004 });
  const text = await m.render();
  const families = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
  const byFamily = seriesByFamily(text, families);
  return {
    nodes,
    core,
    peers: plan.core.length,
    jobs: jobs.length,
    total: [...byFamily.values()].reduce((a, b) => a + b, 0),
    byFamily: Object.fromEntries([...byFamily].sort((a, b) => b[1] - a[1])),
  };
}

/**
 * The hot path's cost of one pair RTT observation: a slot of SlotHistogram (what the agent
 * does) next to a prom-client Histogram child (what it would do otherwise), ns each, over 96
 * children (the small-probe pairs of 32 peers), best of 3 rounds.
 */
export function measureObserve(n: number): { slotNs: number; promClientNs: number } {
  const labels = (
    p: number,
  ): Record<'source_node' | 'target_node' | 'path' | 'protocol' | 'size', string> => ({
    source_node: 'ip-10-0-0-0.ec2.internal',
    target_node: `ip-10-0-1-${p}.ec2.internal`,
    path: 'pod-to-pod',
    protocol: 'udp',
    size: 'small',
  });
  const names = ['source_node', 'target_node', 'path', 'protocol', 'size'] as const;
  const slots = new SlotHistogram('bench_slot', 'b', names, PAIR_RTT_BUCKETS);
  const prom = new Histogram({
    name: 'bench_prom',
    help: 'b',
    labelNames: names,
    buckets: PAIR_RTT_BUCKETS,
    registers: [new Registry()],
  });
  const s = Array.from({ length: 96 }, (_, p) => slots.slot(String(p), labels(p)));
  const c = Array.from({ length: 96 }, (_, p) => prom.labels(labels(p)));
  const time = (f: (i: number) => void): number => {
    let best = Infinity;
    for (let round = 0; round < 3; round++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) f(i);
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
    }
    return best;
  };
  // RTTs from 50 µs to 2 ms: the buckets a pod network fills.
  const rtt = (i: number): number => 5e-5 * (1 + (i % 40));
  return {
    slotNs: time((i) => s[i % 96]!.observe(rtt(i))),
    promClientNs: time((i) => c[i % 96]!.observe(rtt(i))),
  };
}
