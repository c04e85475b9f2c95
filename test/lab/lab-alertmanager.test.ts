// The alerting chain (alert-chain.ts: the lab's agents, a real Prometheus with the shipped
// rules and scrape job, a real Alertmanager with alerts/alertmanager-example.yaml, a webhook
// receiver) with the lab's agent defaults: window.seconds 10 with a probe every second, 10
// probes a window. That is a "short window" the rule pack's old fixed minimum of 20 probes shut
// out entirely (no node alert could fire); the rules now count a pair once its window holds
// half of podmesh_window_expected_probes. Side by side with the partition of node-3: 20% loss
// one direction node-1 -> node-2 and the DNS replica on node-1 down, each its own notification
// group (one lab, one Prometheus and Alertmanager: CI time is tight).

import { registerAlertChain } from './alert-chain.ts';

registerAlertChain({
  name: 'Alertmanager lab',
  settings: 'window 10 s, probes every 1 s',
  expectedPerWindow: 10,
  // Longer than NodeUnreachable's `for` (1m) plus its ramp.
  healthyMs: 90_000,
  // Window ramp (~5 s at 10 s) + `for: 1m` + evaluation and group_wait: well inside this.
  detectMs: 150_000,
  // PairLossHigh keeps firing 90 s after its condition goes (keep_firing_for).
  resolveMs: 150_000,
  sideBySide: true,
});
