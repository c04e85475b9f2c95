// The alerting chain (alert-chain.ts) with a slow probe interval: the default 60 s window with a
// probe every 5 s, 12 probes a window (a natural choice on a large cluster), which the rule
// pack's old fixed minimum of 20 probes shut out entirely. The agents export 12 as
// podmesh_window_expected_probes, a pair counts from 6, and the partitioned node still pages;
// side by side with it, 20% loss node-1 -> node-2 still pages (PairLossHigh, critical) within 3
// minutes and a DNS replica down still tickets (issue 16: the node and pair alerts fire on their
// faults with a slow probe interval, not only with the lab's fast one).

import { registerAlertChain } from './alert-chain.ts';

registerAlertChain({
  name: 'Alertmanager lab, slow interval',
  agentSettings: { probes: { intervalMs: 5000, timeoutMs: 1000 }, window: { seconds: 60 } },
  settings: 'window 60 s, probes every 5 s',
  expectedPerWindow: 12,
  // Windows fill to half (30 s) before a pair counts; then NodeUnreachable's whole `for`.
  healthyMs: 120_000,
  // Half the window lost (30 s) + `for: 1m` + evaluation and waits.
  detectMs: 180_000,
  // The window drops under half loss (30 s) + evaluation and group_interval; PairLossHigh's
  // window drains under 5% (~60 s) and it keeps firing 90 s more (keep_firing_for).
  resolveMs: 210_000,
  sideBySide: true,
  // The DNS window (60 s) half lost (30 s) + DNSReplicaFailing's `for: 3m` + evaluation: 213 s
  // measured, too close to the lab's 240 s.
  dnsDetectMs: 300_000,
});
