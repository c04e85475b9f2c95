// The apiserver family's metrics: a check counter and connect- and handshake-time histograms on
// every check, the ok-ratio and window gauges from the apiserver window store at scrape time, and
// every series of a target that went (an endpoint that left the EndpointSlice) removed.

import { APISERVER_OUTCOMES } from '../core/outcomes.ts';
import type { ApiServerJob, ApiServerJobResult } from '../probes/apiserver-job.ts';
import type { ApiServerWindowStore } from '../store/apiserver-window.ts';
import { JobLabels } from './job-labels.ts';
import type { RecorderContext } from './recorder-context.ts';

type ApiServerLabels = {
  source_node: string;
  network: string;
  server_kind: string;
  server: string;
};

export class ApiServerRecorder {
  private readonly labels: JobLabels<ApiServerJob, ApiServerLabels>;

  constructor(
    private readonly ctx: RecorderContext,
    private readonly store: ApiServerWindowStore | undefined,
  ) {
    this.labels = new JobLabels<ApiServerJob, ApiServerLabels>((j) => ({
      ...ctx.selfLabels,
      server_kind: j.kind,
      server: j.key,
    }));
  }

  /** The targets currently checked; series of removed targets go. */
  setJobs(jobs: readonly ApiServerJob[]): void {
    const { m } = this.ctx;
    this.labels.set(jobs, (_key, labels) => {
      for (const result of APISERVER_OUTCOMES) m.apiserverChecks.remove({ ...labels, result });
      m.apiserverOkRatio.remove(labels);
      m.apiserverWindowChecks.remove(labels);
    });
  }

  record(r: ApiServerJobResult): void {
    const labels = this.labels.get(r.key);
    if (labels === undefined) return; // a late check of a target that is gone
    const { m, selfLabels } = this.ctx;
    m.apiserverChecks.inc({ ...labels, result: r.outcome });
    const byKind = { ...selfLabels, server_kind: labels.server_kind };
    if (r.connectSeconds !== null) m.apiserverConnectDuration.observe(byKind, r.connectSeconds);
    if (r.tlsSeconds !== null) m.apiserverTlsDuration.observe(byKind, r.tlsSeconds);
  }

  /** Fills the window gauges from the store, for one render. */
  refresh(): void {
    const { apiserverOkRatio, apiserverWindowChecks } = this.ctx.m;
    apiserverOkRatio.reset();
    apiserverWindowChecks.reset();
    for (const [key, labels] of this.labels.entries()) {
      const w = this.store?.get(key);
      if (w === undefined) continue;
      apiserverWindowChecks.set(labels, w.sent);
      if (w.okRatio !== null) apiserverOkRatio.set(labels, w.okRatio);
    }
  }
}
