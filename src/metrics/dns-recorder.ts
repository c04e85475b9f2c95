// The dns family's metrics: a request counter and a duration histogram on every lookup, the
// answered-ratio and window gauges from the DNS window store at scrape time, and every series of
// a job that is gone (a departed replica) removed.

import { DNS_OUTCOMES, serverResponded } from '../core/outcomes.ts';
import type { DnsJob, DnsJobResult } from '../probes/dns-job.ts';
import type { DnsWindowStore } from '../store/dns-window.ts';
import { JobLabels } from './job-labels.ts';
import type { RecorderContext } from './recorder-context.ts';

type DnsLabels = {
  source_node: string;
  network: string;
  server_kind: string;
  server: string;
  query: string;
  transport: string;
};

export class DnsRecorder {
  private readonly labels: JobLabels<DnsJob, DnsLabels>;

  constructor(
    private readonly ctx: RecorderContext,
    private readonly store: DnsWindowStore | undefined,
  ) {
    this.labels = new JobLabels<DnsJob, DnsLabels>((j) => ({
      ...ctx.selfLabels,
      server_kind: j.serverKind,
      server: j.server,
      query: j.query,
      transport: j.transport,
    }));
  }

  /** The DNS lookups currently run; series of the ones gone (a departed replica) are removed. */
  setJobs(jobs: readonly DnsJob[]): void {
    const { m } = this.ctx;
    this.labels.set(jobs, (_key, labels) => {
      for (const result of DNS_OUTCOMES) m.dnsRequests.remove({ ...labels, result });
      m.dnsAnsweredRatio.remove(labels);
      m.dnsWindowRequests.remove(labels);
    });
  }

  record(r: DnsJobResult): void {
    const labels = this.labels.get(r.key);
    if (labels === undefined) return; // a late lookup of a job that is gone
    const { m, selfLabels } = this.ctx;
    m.dnsRequests.inc({ ...labels, result: r.outcome });
    if (serverResponded(r.outcome))
      m.dnsDuration.observe(
        { ...selfLabels, server_kind: labels.server_kind, transport: labels.transport },
        r.seconds,
      );
  }

  /** Fills the window gauges from the store, for one render. */
  refresh(): void {
    const { dnsAnsweredRatio, dnsWindowRequests } = this.ctx.m;
    dnsAnsweredRatio.reset();
    dnsWindowRequests.reset();
    for (const w of this.store?.all() ?? []) {
      const labels = this.labels.get(w.key);
      if (labels === undefined) continue;
      dnsWindowRequests.set(labels, w.sent);
      if (w.answeredRatio !== null) dnsAnsweredRatio.set(labels, w.answeredRatio);
    }
  }
}
