// Turns what one agent measured into its Prometheus metrics. Owns the agent's one explicit
// Registry (its metrics created from the catalogue) and holds one small recorder per concern,
// all writing to it: the peer family's (pair-recorder.ts), DNS (dns-recorder.ts), port targets
// (port-recorder.ts), the API server checks (apiserver-recorder.ts) and the agent's own health
// (health-recorder.ts). A render refreshes their
// windowed gauges from the stores first.

import { Registry } from 'prom-client';
import type { Self } from '../core/types.ts';
import type { ApiServerWindowStore } from '../store/apiserver-window.ts';
import type { DnsWindowStore } from '../store/dns-window.ts';
import type { LateWindow } from '../store/late-window.ts';
import type { PairWindowStore } from '../store/pair-window.ts';
import type { PortWindowStore } from '../store/port-window.ts';
import { ApiServerRecorder } from './apiserver-recorder.ts';
import { createMetrics, type Metrics } from './catalogue.ts';
import { DnsRecorder } from './dns-recorder.ts';
import { HealthRecorder } from './health-recorder.ts';
import { PairRecorder } from './pair-recorder.ts';
import { PortRecorder } from './port-recorder.ts';

export class AgentMetrics {
  readonly registry = new Registry();
  readonly m: Metrics;
  readonly pairs: PairRecorder;
  readonly dns: DnsRecorder;
  readonly ports: PortRecorder;
  readonly apiserver: ApiServerRecorder;
  readonly health: HealthRecorder;

  constructor(
    self: Self,
    store: PairWindowStore,
    version: string,
    dnsStore?: DnsWindowStore,
    extra: { ports?: PortWindowStore; late?: LateWindow; apiserver?: ApiServerWindowStore } = {},
  ) {
    this.m = createMetrics(this.registry);
    const ctx = { m: this.m, self, selfLabels: { source_node: self.node, network: self.network } };
    this.m.buildInfo.set({ version, node_version: process.version }, 1);
    this.pairs = new PairRecorder(ctx, store);
    this.dns = new DnsRecorder(ctx, dnsStore);
    this.ports = new PortRecorder(ctx, extra.ports);
    this.apiserver = new ApiServerRecorder(ctx, extra.apiserver);
    this.health = new HealthRecorder(ctx, extra.late);
  }

  /** Renders /metrics, refreshing the windowed gauges first. */
  async render(): Promise<string> {
    this.pairs.refresh();
    this.ports.refresh();
    this.apiserver.refresh();
    this.health.refresh();
    this.dns.refresh();
    const text = await this.registry.metrics();
    this.pairs.clear();
    return text;
  }
}
