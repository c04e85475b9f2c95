// The alerting chain against a real fault, for a lab test file to register with its own agent
// settings (lab-alertmanager.test.ts: the lab's 10 s window at 1 s; lab-alertmanager-slow:
// the default 60 s window with a probe every 5 s): the namespace lab's agents, a real
// Prometheus (Debian's prometheus) scraping them with the shipped plain-Prometheus scrape job
// (deploy/components/plain-prometheus) and evaluating the shipped rule pack unchanged, a real
// Alertmanager (Debian's prometheus-alertmanager, on loopback) running the shipped example
// (alerts/alertmanager-example.yaml) with test waits (group_wait 1 s, group_interval 5 s), and
// a webhook receiver in this process recording what arrives. A healthy lab delivers nothing; a
// partitioned node delivers exactly one notification group, PodmeshNodeUnreachable for that
// node with its summary, description and runbook_url, and nothing else; healing delivers its
// resolution. Prints the time from the fault to the notification and from healing to the
// resolution. The `for` durations are the shipped ones.
// Needs root, iproute2, nftables, dnsmasq, conntrack, prometheus and prometheus-alertmanager.

import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { parse } from 'yaml';
import {
  Alertmanager,
  ALERTMANAGER_BIN,
  testConfig,
  WebhookReceiver,
  type Notification,
} from '../support/alertmanager.ts';
import { Prometheus } from '../support/prometheus.ts';
import { labSuite, sharedLab } from './gate.ts';
import { AGENT_PORTS, REPO } from './lab.ts';

const NEEDS =
  'the Alertmanager lab needs root and iproute2, nftables, dnsmasq (dnsmasq-base), conntrack, prometheus, prometheus-alertmanager';
const RULES = path.join(REPO, 'alerts/podmesh-rules.yaml');
const EXAMPLE = path.join(REPO, 'alerts/alertmanager-example.yaml');
const SCRAPE = path.join(REPO, 'deploy/components/plain-prometheus/scrape-config.yaml');
export interface AlertChain {
  /** The suite's name. */
  readonly name: string;
  /** Deep-merged into every agent's config (lab defaults: window 10 s, probes every 1 s). */
  readonly agentSettings?: Record<string, unknown>;
  /** What the settings are, for the log. */
  readonly settings: string;
  /** podmesh_window_expected_probes{kind="pair"} the agents must export with them. */
  readonly expectedPerWindow: number;
  /** How long a healthy lab is watched: longer than NodeUnreachable's `for` (1m) and ramp. */
  readonly healthyMs: number;
  /** From the fault to the notification at most: window ramp + `for: 1m` + waits. */
  readonly detectMs: number;
  /** From healing to the resolved notification at most. */
  readonly resolveMs: number;
}

/** After the first notification, how long to keep watching for others. */
const SETTLE_MS = 30_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, ms: number, fn: () => T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`no ${what} within ${ms} ms`);
    await sleep(250);
  }
}

const describe = (n: Notification): string =>
  `${n.status} ${n.receiver} ${JSON.stringify(n.groupLabels)} [${n.alerts.map((a) => `${a.status}:${a.labels['alertname'] ?? '?'}`).join(',')}]`;

export function registerAlertChain(o: AlertChain): void {
  labSuite(
    o.name,
    ['ip', 'nft', 'bridge', 'dnsmasq', 'conntrack', 'prometheus', 'prometheus-alertmanager'],
    NEEDS,
    () => {
      const L = sharedLab(
        {
          nodes: 3,
          podsPerNode: 1,
          ...(o.agentSettings !== undefined ? { agentSettings: o.agentSettings } : {}),
        },
        (lab) => `${lab.agents.length} agents, ${o.settings}; alertmanager ${ALERTMANAGER_BIN}`,
      );
      let hook: WebhookReceiver | undefined;
      let am: Alertmanager | undefined;
      let prom: Prometheus | undefined;
      const H = (): WebhookReceiver => hook!;

      test.before(async (t) => {
        t.timeout(180_000);
        // ava runs before hooks concurrently: wait for sharedLab's to bring the lab up.
        const lab = await waitFor('lab', 150_000, () => {
          try {
            return L();
          } catch {
            return undefined;
          }
        });
        hook = await WebhookReceiver.start();
        am = await Alertmanager.start(
          testConfig(fs.readFileSync(EXAMPLE, 'utf8'), hook.url, {
            groupWait: '1s',
            groupInterval: '5s',
            repeatInterval: '1h',
          }),
        );
        // The shipped scrape job, fed the labels Kubernetes pod discovery would give each agent.
        const job = (
          parse(fs.readFileSync(SCRAPE, 'utf8')) as {
            scrape_configs: { job_name: string; relabel_configs: Record<string, unknown>[] }[];
          }
        ).scrape_configs[0]!;
        prom = await Prometheus.start({
          intervalS: 1,
          ruleFiles: [RULES],
          alertmanagers: [am.address],
          externalLabels: { cluster: 'lab' },
          jobs: [
            {
              job: job.job_name,
              relabelConfigs: job.relabel_configs,
              targets: lab.agents.map((a) => ({
                address: `${a.address}:${AGENT_PORTS.http}`,
                labels: {
                  __meta_kubernetes_namespace: 'podmesh',
                  __meta_kubernetes_pod_name: `podmesh-agent-${a.network}-${a.node.name}`,
                  __meta_kubernetes_pod_node_name: a.node.name,
                  __meta_kubernetes_pod_container_name: 'agent',
                  __meta_kubernetes_pod_container_port_name: 'http',
                  __meta_kubernetes_pod_label_app_kubernetes_io_name: 'podmesh',
                  __meta_kubernetes_pod_label_app_kubernetes_io_component: 'agent',
                },
              })),
            },
          ],
        });
        t.log(`prometheus ${prom.url}, alertmanager ${am.url}, webhook ${hook.url}`);
      });

      test.after.always(
        'prometheus and alertmanager stopped, their directories removed',
        async (t) => {
          const dirs = [prom?.dir, am?.dir];
          await prom?.stop();
          await am?.stop();
          await hook?.close();
          for (const d of dirs) if (d !== undefined) t.false(fs.existsSync(d), d);
        },
      );

      test.serial('healthy lab: every target up, nothing reaches the receiver', async (t) => {
        t.timeout(o.healthyMs + 60_000);
        const started = Date.now();
        for (;;) {
          const ts = await prom!.targets();
          if (ts.length === L().agents.length && ts.every((x) => x.health === 'up')) break;
          if (Date.now() - started > 30_000)
            throw new Error(`targets not all up: ${JSON.stringify(ts)}`);
          await sleep(500);
        }
        // The scrape job labelled the targets as the rules need them.
        const up = await prom!.query('up');
        t.true(
          up.every(
            (s) =>
              s.metric['job'] === 'podmesh' &&
              s.metric['container'] === 'agent' &&
              s.metric['node'] !== undefined,
          ),
          JSON.stringify(up.map((s) => s.metric)),
        );
        // The agents say what their windows hold.
        const expected = await prom!.query('podmesh_window_expected_probes{kind="pair"}');
        t.is(expected.length, L().agents.length);
        t.true(
          expected.every((s) => s.value[1] === String(o.expectedPerWindow)),
          JSON.stringify(expected.map((s) => s.value[1])),
        );
        await sleep(o.healthyMs);
        t.deepEqual(H().received.map(describe), [], 'notifications from a healthy lab');
        t.deepEqual(
          (await prom!.alerts()).map((a) => `${a.labels['alertname'] ?? '?'} ${a.state}`),
          [],
          'alerts pending or firing in a healthy lab',
        );
        t.log(`healthy: nothing delivered in ${Math.round(o.healthyMs / 1000)} s`);
      });

      test.serial(
        'partition of node-3: one notification, the node alert; resolved after healing',
        async (t) => {
          t.timeout(o.detectMs + SETTLE_MS + o.resolveMs + 60_000);
          const before = H().received.length;
          const t0 = Date.now();
          const undo = await L().partition('node-3');
          const first = await waitFor('notification', o.detectMs, () => H().received[before]);
          const detectMs = first.receivedMs - t0;
          t.log(
            `partition node-3: fault to notification ${(detectMs / 1000).toFixed(1)} s: ${describe(first)}`,
          );
          await sleep(SETTLE_MS);
          const during = H().received.slice(before);
          // Exactly one notification group, the node alert's (a group may be notified again when
          // its alerts change; here it has one alert and no change, so once).
          t.deepEqual(first.groupLabels, {
            alertname: 'PodmeshNodeUnreachable',
            cluster: 'lab',
            node: 'node-3',
          });
          t.is(during.length, 1, during.map(describe).join('\n'));
          t.is(first.receiver, 'podmesh-page');
          t.is(first.status, 'firing');
          t.is(first.alerts.length, 1);
          const a = first.alerts[0]!;
          t.is(a.labels['severity'], 'critical');
          t.regex(a.annotations['summary'] ?? '', /unreachable/);
          t.regex(a.annotations['description'] ?? '', /node-3/);
          t.is(
            a.annotations['runbook_url'],
            'https://github.com/podmesh/podmesh/blob/main/docs/runbooks/podmesh-node-unreachable.md',
          );
          // What Alertmanager holds besides it: nothing active; symptoms, if any got this far, are
          // suppressed (the rules' unless clauses keep them from firing in the first place).
          const held = await am!.alerts();
          t.log(
            `alertmanager holds: ${held.map((x) => `${x.labels['alertname'] ?? '?'}{node=${x.labels['node'] ?? ''}} ${x.status?.state ?? '?'}`).join('; ')}`,
          );
          t.deepEqual(
            held
              .filter((x) => x.status?.state === 'active')
              .map((x) => x.labels['alertname'])
              .filter((n) => n !== 'PodmeshNodeUnreachable'),
            [],
          );

          const healed = Date.now();
          await undo();
          const resolved = await waitFor('resolved notification', o.resolveMs, () =>
            H()
              .received.slice(before)
              .find((n) => n.status === 'resolved'),
          );
          t.log(
            `partition node-3: heal to resolved ${((resolved.receivedMs - healed) / 1000).toFixed(1)} s: ${describe(resolved)}`,
          );
          t.deepEqual(resolved.groupLabels, first.groupLabels);
          t.true(resolved.alerts.every((x) => x.status === 'resolved'));
          t.is(resolved.receiver, 'podmesh-page');
        },
      );
    },
  );
}
