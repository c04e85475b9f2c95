// A Prometheus registry shaped like a big agent's (the catalogue's per-peer series for many
// peers), for the benchmarks that keep the main thread busy rendering /metrics: bench/run.ts
// (section 2, a registry of N peers) and bench/rtt-prober.ts (one of at least N bytes). Kept
// apart from lib.ts so the processes that measure their own memory don't load prom-client.

import { Registry } from 'prom-client';
import { createMetrics, type Metrics } from '../src/metrics/catalogue.ts';

const KINDS = [
  ['udp', 'small'],
  ['udp', 'mtu'],
  ['icmp', 'small'],
  ['icmp', 'mtu'],
  ['tcp', 'small'],
] as const;

/** Fills in peer `p`'s series (every kind and size); returns how many labelled series. */
function addPeer(m: Metrics, p: number): number {
  let series = 0;
  for (const [protocol, size] of KINDS) {
    const labels = {
      source_node: 'bench-self',
      target_node: `node-${p}`,
      path: 'pod-to-pod',
      protocol,
      size,
    };
    m.probesSent.inc(labels, 60);
    m.probesLost.inc(labels, p % 7);
    m.pairLossRatio.set(labels, (p % 7) / 60);
    m.pairWindowProbes.set(labels, 60);
    for (const quantile of ['0.5', '0.9', '0.99'])
      m.pairRtt.set({ ...labels, quantile }, 0.0001 * (1 + (p % 13)));
    m.pairLastSuccess.set(labels, Date.now() / 1000);
    series += 8;
    m.rtt.observe(
      {
        source_node: 'bench-self',
        path: 'pod-to-pod',
        protocol,
        size,
        scope: p % 2 === 0 ? 'same-zone' : 'cross-zone',
      },
      0.0001 * (1 + (p % 13)),
    );
  }
  return series;
}

/** A registry with `peers` peers: ~8 series per (peer, kind, size), plus the RTT histograms. */
export function agentRegistry(peers: number): { registry: Registry; series: number } {
  const registry = new Registry();
  const m = createMetrics(registry);
  let series = 0;
  for (let p = 0; p < peers; p++) series += addPeer(m, p);
  return { registry, series };
}

/** A registry grown 200 peers at a time until its exposition is at least `bytes` long. */
export async function registryOfAtLeast(
  bytes: number,
): Promise<{ registry: Registry; bytes: number }> {
  const registry = new Registry();
  const m = createMetrics(registry);
  for (let p = 0; ;) {
    for (const end = p + 200; p < end; p++) addPeer(m, p);
    const size = Buffer.byteLength(await registry.metrics());
    if (size >= bytes) return { registry, bytes: size };
  }
}
