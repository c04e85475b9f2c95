// Test helper: a real Alertmanager (Debian's prometheus-alertmanager) run as a child process of
// the test on loopback, with a given config, a temporary data directory and clustering off (it
// would otherwise listen for gossip on every interface); a client for its v2 API; and a webhook
// receiver (an HTTP server on 127.0.0.1) that records every notification it gets, with the
// time it arrived. The test owns both: stop() kills the process and removes its directory.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort } from './prometheus.ts';

export const ALERTMANAGER_BIN = '/usr/bin/prometheus-alertmanager';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One alert as Alertmanager's API and webhooks show it. */
export interface AmAlert {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly status?: { readonly state: string; readonly inhibitedBy: readonly string[] };
  /** In webhooks: firing or resolved. */
  readonly statusText?: string;
}

/** A webhook notification (Alertmanager's webhook payload, version 4). */
export interface Notification {
  readonly receiver: string;
  readonly status: 'firing' | 'resolved';
  readonly groupLabels: Record<string, string>;
  readonly commonLabels: Record<string, string>;
  readonly alerts: readonly {
    readonly status: 'firing' | 'resolved';
    readonly labels: Record<string, string>;
    readonly annotations: Record<string, string>;
  }[];
  /** When it arrived (ms since the epoch): added by the receiver. */
  readonly receivedMs: number;
}

export class WebhookReceiver {
  private constructor(
    readonly url: string,
    private readonly server: http.Server,
    /** Every notification so far, in arrival order. */
    readonly received: Notification[],
  ) {}

  static async start(): Promise<WebhookReceiver> {
    const received: Notification[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Notification;
          received.push({ ...body, receivedMs: Date.now() });
        } catch {
          // Not a notification: recorded as nothing, answered as an error.
          res.statusCode = 400;
        }
        res.end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const addr = server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    return new WebhookReceiver(`http://127.0.0.1:${port}/`, server, received);
  }

  async close(): Promise<void> {
    await new Promise((r) => this.server.close(r));
  }
}

interface RouteTimes {
  group_wait?: string;
  group_interval?: string;
  repeat_interval?: string;
  routes?: RouteTimes[];
}

/**
 * A test copy of an Alertmanager config: every webhook receiver sends to `url` (the receiver
 * name stays in the payload), and every route that sets its waits gets the test's instead, so a
 * notification leaves seconds after the alert fires rather than the example's 10-30 s.
 */
export function testConfig(
  yamlText: string,
  url: string,
  times: { groupWait: string; groupInterval: string; repeatInterval: string },
): string {
  const cfg = parse(yamlText) as {
    route: RouteTimes;
    receivers: { name: string; webhook_configs?: { url: string }[] }[];
  };
  const retime = (r: RouteTimes, root: boolean): void => {
    if (root || r.group_wait !== undefined) r.group_wait = times.groupWait;
    if (root || r.group_interval !== undefined) r.group_interval = times.groupInterval;
    if (root || r.repeat_interval !== undefined) r.repeat_interval = times.repeatInterval;
    for (const child of r.routes ?? []) retime(child, false);
  };
  retime(cfg.route, true);
  for (const r of cfg.receivers) for (const w of r.webhook_configs ?? []) w.url = url;
  return stringify(cfg);
}

export class Alertmanager {
  private constructor(
    readonly url: string,
    /** host:port, as Prometheus's alerting config wants it. */
    readonly address: string,
    readonly dir: string,
    private readonly child: ChildProcess,
    private readonly logFile: string,
  ) {}

  /** Starts Alertmanager with this config (YAML text). */
  static async start(configYaml: string): Promise<Alertmanager> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podmesh-am-'));
    const configFile = path.join(dir, 'alertmanager.yml');
    fs.writeFileSync(configFile, configYaml);
    const logFile = path.join(dir, 'alertmanager.log');
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const log = fs.openSync(logFile, 'a');
      const child = spawn(
        ALERTMANAGER_BIN,
        [
          `--config.file=${configFile}`,
          `--storage.path=${path.join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          // No gossip: a single instance, listening on nothing but its loopback API port.
          '--cluster.listen-address=',
          '--log.level=warn',
        ],
        { stdio: ['ignore', log, log] },
      );
      fs.closeSync(log);
      const am = new Alertmanager(
        `http://127.0.0.1:${port}`,
        `127.0.0.1:${port}`,
        dir,
        child,
        logFile,
      );
      try {
        await am.waitReady(30_000);
        return am;
      } catch (e) {
        await am.stop({ keepDir: true });
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
        throw new Error(`alertmanager exited during start-up:\n${this.logTail()}`);
      const ok = await fetch(`${this.url}/-/ready`, { signal: AbortSignal.timeout(1000) })
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) return;
      if (Date.now() > end)
        throw new Error(`alertmanager not ready after ${ms} ms:\n${this.logTail()}`);
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

  /** Every alert it holds, active, suppressed (inhibited or silenced) or not. */
  async alerts(): Promise<AmAlert[]> {
    const res = await fetch(`${this.url}/api/v2/alerts`, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`alertmanager /api/v2/alerts: ${res.status}`);
    return (await res.json()) as AmAlert[];
  }

  /** Posts alerts as a Prometheus would (labels, annotations; firing while endsAt is ahead). */
  async post(
    alerts: readonly { labels: Record<string, string>; annotations?: Record<string, string> }[],
  ): Promise<void> {
    const endsAt = new Date(Date.now() + 5 * 60_000).toISOString();
    const res = await fetch(`${this.url}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(alerts.map((a) => ({ ...a, endsAt }))),
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`alertmanager POST /api/v2/alerts: ${res.status}`);
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
