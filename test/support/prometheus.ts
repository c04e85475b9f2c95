// Test helper: a real Prometheus (Debian's /usr/bin/prometheus) run as a child process of the
// test, on loopback with a temporary TSDB, scraping given static targets (with relabeling, so a
// test can feed it the labels Kubernetes discovery would and apply a PodMonitor's relabelings)
// and evaluating given rule files, optionally sending alerts to an Alertmanager; plus small
// clients for its HTTP API (instant queries, alerts). The test owns the process: stop() kills it and removes its directory, so nothing
// outlives the test.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';

export const PROMETHEUS_BIN = '/usr/bin/prometheus';

export interface ScrapeJob {
  readonly job: string;
  readonly targets: readonly {
    readonly address: string;
    /** Target labels; `__`-prefixed ones are seen by relabeling only, then dropped. */
    readonly labels?: Record<string, string>;
  }[];
  /** Prometheus `relabel_configs` entries (snake_case keys), applied to every target. */
  readonly relabelConfigs?: readonly Record<string, unknown>[];
}

/**
 * A prometheus-operator RelabelConfig (PodMonitor `relabelings`, camelCase) as the Prometheus
 * `relabel_configs` entry the operator writes for it.
 */
export function relabelConfigFromOperator(r: Record<string, unknown>): Record<string, unknown> {
  const keys: Record<string, string> = {
    sourceLabels: 'source_labels',
    separator: 'separator',
    regex: 'regex',
    targetLabel: 'target_label',
    replacement: 'replacement',
    action: 'action',
    modulus: 'modulus',
  };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    const key = keys[k];
    if (key === undefined) throw new Error(`relabeling: unsupported field ${k}`);
    out[key] = v;
  }
  return out;
}

export interface PrometheusOptions {
  readonly jobs: readonly ScrapeJob[];
  readonly ruleFiles?: readonly string[];
  /** Global scrape and evaluation interval, seconds. */
  readonly intervalS?: number;
  /** host:port of Alertmanagers to send alerts to. */
  readonly alertmanagers?: readonly string[];
  /** Labels on every series and alert leaving this Prometheus (e.g. cluster). */
  readonly externalLabels?: Record<string, string>;
}

export interface PromAlert {
  readonly labels: Record<string, string>;
  readonly state: 'pending' | 'firing' | 'inactive';
  readonly activeAt?: string;
  readonly value?: string;
}

export interface PromSample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A loopback port nobody listens on right now (the OS picks it; Prometheus binds it next). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export class Prometheus {
  private constructor(
    readonly url: string,
    readonly dir: string,
    private readonly child: ChildProcess,
    private readonly logFile: string,
  ) {}

  static async start(o: PrometheusOptions): Promise<Prometheus> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podmesh-prom-'));
    const interval = `${o.intervalS ?? 1}s`;
    const config = {
      global: {
        scrape_interval: interval,
        evaluation_interval: interval,
        // Below the interval: a scrape of a cut-off target must fail before the next one starts.
        scrape_timeout: `${Math.max(500, Math.round((o.intervalS ?? 1) * 800))}ms`,
        ...(o.externalLabels !== undefined ? { external_labels: o.externalLabels } : {}),
      },
      ...(o.alertmanagers !== undefined
        ? { alerting: { alertmanagers: [{ static_configs: [{ targets: o.alertmanagers }] }] } }
        : {}),
      rule_files: [...(o.ruleFiles ?? [])],
      scrape_configs: o.jobs.map((j) => ({
        job_name: j.job,
        static_configs: j.targets.map((t) => ({ targets: [t.address], labels: t.labels ?? {} })),
        ...(j.relabelConfigs !== undefined ? { relabel_configs: [...j.relabelConfigs] } : {}),
      })),
    };
    const configFile = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(configFile, stringify(config));
    const logFile = path.join(dir, 'prometheus.log');
    // Another process may take the port between freePort() and the bind: retry a few times.
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const log = fs.openSync(logFile, 'a');
      const child = spawn(
        PROMETHEUS_BIN,
        [
          `--config.file=${configFile}`,
          `--storage.tsdb.path=${path.join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--log.level=warn',
        ],
        { stdio: ['ignore', log, log] },
      );
      fs.closeSync(log);
      const p = new Prometheus(`http://127.0.0.1:${port}`, dir, child, logFile);
      try {
        await p.waitReady(30_000);
        return p;
      } catch (e) {
        await p.stop({ keepDir: true });
        if (attempt >= 2) {
          fs.rmSync(dir, { recursive: true, force: true });
          throw e;
        }
      }
    }
  }

  private async waitReady(ms: number): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      if (this.child.exitCode !== null || this.child.signalCode !== null)
        throw new Error(`prometheus exited during start-up:\n${this.logTail()}`);
      const ok = await fetch(`${this.url}/-/ready`, { signal: AbortSignal.timeout(1000) })
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) return;
      if (Date.now() > end)
        throw new Error(`prometheus not ready after ${ms} ms:\n${this.logTail()}`);
      await sleep(200);
    }
  }

  logTail(lines = 30): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  private async api<T>(urlPath: string): Promise<T> {
    const res = await fetch(`${this.url}${urlPath}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success')
      throw new Error(`prometheus ${urlPath}: ${res.status} ${body.error ?? ''}`);
    return body.data;
  }

  /** Instant query; the result as a list of samples (a scalar becomes one unlabelled sample). */
  async query(expr: string): Promise<PromSample[]> {
    const data = await this.api<{ resultType: string; result: unknown }>(
      `/api/v1/query?query=${encodeURIComponent(expr)}`,
    );
    if (data.resultType === 'vector') return data.result as PromSample[];
    if (data.resultType === 'scalar')
      return [{ metric: {}, value: data.result as [number, string] }];
    throw new Error(`unexpected result type ${data.resultType} for ${expr}`);
  }

  /** Alerts that are pending or firing now. */
  async alerts(): Promise<PromAlert[]> {
    const data = await this.api<{ alerts: PromAlert[] }>('/api/v1/alerts');
    return data.alerts.filter((a) => a.state === 'pending' || a.state === 'firing');
  }

  /** Targets' health, by scrape URL. */
  async targets(): Promise<{ scrapeUrl: string; health: string; lastError: string }[]> {
    const data = await this.api<{
      activeTargets: { scrapeUrl: string; health: string; lastError: string }[];
    }>('/api/v1/targets?state=active');
    return data.activeTargets;
  }

  /** Rule groups as loaded (to check the rule file was read, and for evaluation errors). */
  async ruleHealth(): Promise<{ name: string; health: string; lastError?: string }[]> {
    const data = await this.api<{
      groups: { rules: { name: string; health: string; lastError?: string }[] }[];
    }>('/api/v1/rules');
    return data.groups.flatMap((g) => g.rules);
  }

  /** Kills the process (SIGTERM, SIGKILL after 5 s) and removes its directory. */
  async stop(o: { keepDir?: boolean } = {}): Promise<void> {
    const c = this.child;
    if (c.exitCode === null && c.signalCode === null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
        c.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        c.kill('SIGTERM');
      });
    }
    if (o.keepDir !== true) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
