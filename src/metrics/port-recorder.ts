// The port family's metrics: a check counter and a connect-time histogram on every connect, the
// open-ratio and window gauges from the port window store at scrape time, and every series of a
// removed (or re-expected) target removed.

import { PORT_OUTCOMES } from '../core/outcomes.ts';
import type { PortJob, PortJobResult } from '../probes/port-job.ts';
import type { PortWindowStore } from '../store/port-window.ts';
import { JobLabels } from './job-labels.ts';
import type { RecorderContext } from './recorder-context.ts';

type PortLabels = { source_node: string; network: string; target: string; expected: string };

export class PortRecorder {
  private readonly labels: JobLabels<PortJob, PortLabels>;

  constructor(
    private readonly ctx: RecorderContext,
    private readonly store: PortWindowStore | undefined,
  ) {
    // A target whose expectation changed gets new labels: its old series go.
    this.labels = new JobLabels<PortJob, PortLabels>(
      (j) => ({ ...ctx.selfLabels, target: j.key, expected: j.expected }),
      (j, labels) => j.expected === labels.expected,
    );
  }

  /** The port targets currently checked; series of removed targets go. */
  setJobs(jobs: readonly PortJob[]): void {
    const { m, selfLabels } = this.ctx;
    this.labels.set(jobs, (key, labels) => {
      for (const result of PORT_OUTCOMES) m.portChecks.remove({ ...labels, result });
      m.portOpenRatio.remove(labels);
      m.portWindowChecks.remove(labels);
      m.portConnectDuration.remove({ ...selfLabels, target: key });
    });
  }

  record(r: PortJobResult): void {
    const labels = this.labels.get(r.key);
    if (labels === undefined) return; // a late connect to a target that is gone
    const { m, selfLabels } = this.ctx;
    m.portChecks.inc({ ...labels, result: r.outcome });
    if (r.outcome === 'open')
      m.portConnectDuration.observe({ ...selfLabels, target: r.key }, r.seconds);
  }

  /** Fills the window gauges from the store, for one render. */
  refresh(): void {
    const { portOpenRatio, portWindowChecks } = this.ctx.m;
    portOpenRatio.reset();
    portWindowChecks.reset();
    for (const [key, labels] of this.labels.entries()) {
      const w = this.store?.get(key);
      if (w === undefined) continue;
      portWindowChecks.set(labels, w.sent);
      if (w.openRatio !== null) portOpenRatio.set(labels, w.openRatio);
    }
  }
}
