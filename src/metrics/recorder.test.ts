// AgentMetrics' per-pair window gauges: every render shows them fresh from the window store, and
// between renders prom-client holds none of them (at 200 peers they were ~6,000 series kept in
// memory only to be rebuilt at the next scrape).

import test from 'ava';
import { FakeClock } from '../../test/support/fake-clock.ts';
import { diffPeers } from '../core/peer-diff.ts';
import type { Peer, ProbeResult } from '../core/types.ts';
import { PairWindowStore } from '../store/pair-window.ts';
import { AgentMetrics } from './recorder.ts';

const peer: Peer = {
  id: 'node-b/pod',
  node: 'node-b',
  network: 'pod',
  zone: 'zone-a',
  address: '198.18.0.2',
  stampPort: 9862,
  tcpPort: 9863,
  httpPort: 9860,
};

const WINDOW_GAUGES = [
  'podmesh_pair_loss_ratio',
  'podmesh_pair_window_probes',
  'podmesh_pair_rtt_seconds',
  'podmesh_pair_last_success_timestamp_seconds',
];

test('window gauges appear in every render and are not kept between renders', async (t) => {
  const clock = new FakeClock(1_700_000_000_000);
  const store = new PairWindowStore(clock, 60_000);
  const self = { node: 'node-a', network: 'pod' as const, zone: 'zone-a', address: '198.18.0.1' };
  const m = new AgentMetrics(self, store, 'test');
  m.pairs.setPeers(diffPeers([], [peer]));
  const record = (r: ProbeResult): void => {
    store.record(r);
    m.pairs.record(r, 0);
  };
  const base = { peerId: peer.id, kind: 'udp' as const, size: 'small' as const };
  record({ ...base, ok: true, rttSeconds: 0.0004, sentAtMs: clock.nowMs() });
  record({ ...base, ok: false, reason: 'timeout', sentAtMs: clock.nowMs() });

  const first = await m.render();
  const labels = 'source_node="node-a",target_node="node-b",path="pod-to-pod",protocol="udp"';
  t.regex(first, new RegExp(`podmesh_pair_loss_ratio\\{${labels},size="small"\\} 0\\.5\\n`));
  t.regex(first, new RegExp(`podmesh_pair_window_probes\\{${labels},size="small"\\} 2\\n`));
  t.regex(first, /podmesh_pair_rtt_seconds\{[^}]*quantile="0.99"\} 0.0004\n/);

  for (const name of WINDOW_GAUGES) {
    const metric = m.registry.getSingleMetric(name);
    t.truthy(metric, name);
    t.deepEqual((await metric!.get()).values, [], `${name} holds no series between renders`);
  }
  // Counters are not window gauges: they stay.
  const sent = await m.registry.getSingleMetric('podmesh_probes_sent_total')!.get();
  t.is(sent.values.length, 1);

  record({ ...base, ok: true, rttSeconds: 0.0004, sentAtMs: clock.nowMs() });
  const second = await m.render();
  t.regex(second, new RegExp(`podmesh_pair_window_probes\\{${labels},size="small"\\} 3\\n`));
  t.regex(second, /podmesh_pair_loss_ratio\{[^}]*\} 0\.333/);
});

test("the reflector's counts reach podmesh_reflector_packets_total, one result label each", async (t) => {
  const clock = new FakeClock(1_700_000_000_000);
  const store = new PairWindowStore(clock, 60_000);
  const self = { node: 'node-a', network: 'pod' as const, zone: 'zone-a', address: '198.18.0.1' };
  const m = new AgentMetrics(self, store, 'test');
  const counts = {
    reflected: 7,
    malformed: 1,
    authFailed: 2,
    loop: 3,
    rateLimited: 4,
    verifyLimited: 5,
    stale: 6,
    replayed: 8,
    sessions: 2,
  };
  m.health.setEngineHealth({ reflector: counts }, 'worker', true);
  // Cumulative totals: a later report adds only the difference.
  m.health.setEngineHealth({ reflector: { ...counts, stale: 9 } }, 'worker', true);
  const text = await m.render();
  const expected: Record<string, number> = {
    reflected: 7,
    malformed: 1,
    auth_failed: 2,
    loop: 3,
    rate_limited: 4,
    verify_limited: 5,
    stale: 9,
    replayed: 8,
  };
  for (const [result, n] of Object.entries(expected))
    t.regex(
      text,
      new RegExp(`podmesh_reflector_packets_total\\{[^}]*result="${result}"\\} ${n}\\n`),
      result,
    );
});

test('the pair RTT histogram counts answered small probes of core peers, and goes with the peer', async (t) => {
  const clock = new FakeClock(1_700_000_000_000);
  const store = new PairWindowStore(clock, 60_000);
  const self = { node: 'node-a', network: 'pod' as const, zone: 'zone-a', address: '198.18.0.1' };
  const m = new AgentMetrics(self, store, 'test');
  m.pairs.setPeers(diffPeers([], [peer]));
  const at = clock.nowMs();
  const base = { peerId: peer.id, kind: 'udp' as const, sentAtMs: at };
  m.pairs.record({ ...base, size: 'small', ok: true, rttSeconds: 0.0003 }, 0);
  m.pairs.record({ ...base, size: 'small', ok: true, rttSeconds: 0.02 }, 0);
  m.pairs.record({ ...base, size: 'small', ok: false, reason: 'timeout' }, 0);
  m.pairs.record({ ...base, size: 'mtu', ok: true, rttSeconds: 0.0004 }, 0);
  // A rotating visit has no per-pair series.
  const other = { ...peer, id: 'node-c/pod', node: 'node-c' };
  m.pairs.recordRotating(
    { ...base, peerId: other.id, size: 'small', ok: true, rttSeconds: 0.001 },
    other,
    0,
  );

  const text = await m.render();
  const labels =
    'source_node="node-a",target_node="node-b",path="pod-to-pod",protocol="udp",size="small"';
  t.regex(text, new RegExp(`podmesh_pair_round_trip_seconds_count\\{${labels}\\} 2\\n`));
  t.regex(
    text,
    new RegExp(`podmesh_pair_round_trip_seconds_bucket\\{le="0.0005",${labels}\\} 1\\n`),
  );
  t.regex(
    text,
    new RegExp(`podmesh_pair_round_trip_seconds_bucket\\{le="0.025",${labels}\\} 2\\n`),
  );
  t.notRegex(text, /podmesh_pair_round_trip_seconds_count\{[^}]*size="mtu"/);
  t.notRegex(text, /podmesh_pair_round_trip_seconds_count\{[^}]*node-c/);
  t.regex(text, /podmesh_agent_info\{source_node="node-a",network="pod",zone="zone-a"\} 1\n/);

  m.pairs.setPeers(diffPeers([peer], []));
  t.notRegex(await m.render(), /podmesh_pair_round_trip_seconds_/);
});
