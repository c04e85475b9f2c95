// Counts from a /metrics text: probes sent and lost, failures by kind and reason, and the
// agent's main-loop delay. The load bench's parent process reads them from each scrape it makes
// of the measured agent (as Prometheus would), so the parsing is not counted as the agent's.

export interface Counts {
  completed: number;
  failed: number;
  failures: Record<string, number>;
  /** The Agent's main-loop delay p99 since the previous render, seconds (agent scenarios). */
  mainP99S?: number;
}

/** Sums every series of one metric in Prometheus text, keyed by the values of `byLabels`. */
function sumMetric(
  text: string,
  name: string,
  byLabels: readonly string[] = [],
): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    const key = byLabels.map((l) => new RegExp(`${l}="([^"]*)"`).exec(line)?.[1] ?? '').join(':');
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}

export function countsFromMetrics(text: string): Counts {
  const failures = Object.fromEntries(
    sumMetric(text, 'podmesh_probe_failures_total', ['protocol', 'reason']),
  );
  const delay = sumMetric(text, 'podmesh_event_loop_delay_seconds', ['thread', 'quantile']);
  const mainP99S = delay.get('main:0.99');
  return {
    completed: sumMetric(text, 'podmesh_probes_sent_total').get('') ?? 0,
    failed: sumMetric(text, 'podmesh_probes_lost_total').get('') ?? 0,
    failures,
    ...(mainP99S !== undefined ? { mainP99S } : {}),
  };
}

export function diff(a: Counts, b: Counts): Counts {
  const failures: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.failures)) {
    const d = v - (a.failures[k] ?? 0);
    if (d > 0) failures[k] = d;
  }
  return { completed: b.completed - a.completed, failed: b.failed - a.failed, failures };
}
