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
// resolution. The `for` durations are the shipped ones. With `sideBySide` (both files use it:
// the lab's settings and the slow interval) two more faults run in the same phase, on what the
// partition doesn't touch: 20% loss on the wire from node-1 to node-2 (nftables `numgen random
// mod 100 < 20 drop`, one direction) and the DNS replica on node-1 down. Each reaches the
// receiver as its own notification group and nothing else does; the loss pages (PairLossHigh
// at critical, to podmesh-page) before it is 3 minutes old counting the shipped group_wait, and
// no PairLatencyHigh on that pair goes even pending (issue 16).
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
  /**
   * Side by side with the partition of node-3, in the same run: 20% loss on the wire from
   * node-1 to node-2 (nftables `numgen random`, one direction) and the DNS replica on node-1
   * down. Neither touches node-3 nor the other's alert: each must reach the receiver as its
   * own notification group, and the loss must page before it is 3 minutes old.
   */
  readonly sideBySide?: boolean;
  /** From the DNS replica stopping to its notification at most (default DNS_DETECT_MS). */
  readonly dnsDetectMs?: number;
}

/** After the first notification, how long to keep watching for others. */
const SETTLE_MS = 30_000;
/** The issue's bar: sustained loss of 20% or more pages before it is 3 minutes old. */
const LOSS_PAGE_MS = 180_000;
/** DNSReplicaFailing: the window's ramp + `for: 3m` + evaluation and waits. */
const DNS_DETECT_MS = 240_000;

/** An undo that runs once, however often it is called (the flow's finally and its heal). */
function once(undo: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= undo());
}
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

/** The shipped route's group_wait for a severity (test waits replace it in the lab), in ms. */
function shippedGroupWaitMs(severity: string): number {
  const cfg = parse(fs.readFileSync(EXAMPLE, 'utf8')) as {
    route: { group_wait?: string; routes?: { matchers?: string[]; group_wait?: string }[] };
  };
  const route = cfg.route.routes?.find((r) => r.matchers?.includes(`severity="${severity}"`));
  const wait = route?.group_wait ?? cfg.route.group_wait ?? '30s';
  const m = /^(\d+)(s|m)$/.exec(wait);
  if (m === null) throw new Error(`group_wait ${wait}: expected whole seconds or minutes`);
  return Number(m[1]) * (m[2] === 'm' ? 60_000 : 1000);
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const sameLabels = (a: Record<string, string>, b: Record<string, string>): boolean =>
  JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

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

      const sideBySide = o.sideBySide === true;
      test.serial(
        sideBySide
          ? 'partition of node-3, 20% loss node-1 -> node-2 and the DNS replica on node-1 down, side by side: one notification group each, the loss paging within 3 minutes and no latency alert; resolved after healing'
          : 'partition of node-3: one notification, the node alert; resolved after healing',
        async (t) => {
          const dnsDetectMs = o.dnsDetectMs ?? DNS_DETECT_MS;
          const slowest = sideBySide ? Math.max(o.detectMs, dnsDetectMs) : o.detectMs;
          t.timeout(slowest + SETTLE_MS + o.resolveMs + 60_000);
          const lab = L();
          const before = H().received.length;
          const since = (): Notification[] => H().received.slice(before);
          const replica = lab.dnsReplicas.find((r) => r.node.name === 'node-1');
          if (sideBySide && replica === undefined) throw new Error('no DNS replica on node-1');
          const lossPair = (l: Record<string, string>): boolean =>
            ['node-1', 'node-2'].includes(l['source_node'] ?? '') &&
            ['node-1', 'node-2'].includes(l['target_node'] ?? '') &&
            l['source_node'] !== l['target_node'];
          /** An alert a side-by-side fault explains (its own alert), by its labels. */
          const sideBySideAlert = (l: Record<string, string>): boolean =>
            sideBySide &&
            ((l['alertname'] === 'PodmeshPairLossHigh' && lossPair(l)) ||
              (l['alertname'] === 'PodmeshDNSReplicaFailing' &&
                (l['server'] ?? '').startsWith('node-1')));

          /**
           * One fault's life: injected, its notification awaited and checked (onNotified), then
           * watched for SETTLE_MS (duringSettle checks what arrived meanwhile), healed, and its
           * resolved notification awaited. Logs the time from the fault to its notification and
           * from healing to its resolution.
           */
          async function fault(
            name: string,
            inject: () => Promise<() => Promise<void>>,
            mine: (n: Notification) => boolean,
            detectMs: number,
            onNotified: (first: Notification, detectMs: number) => void,
            duringSettle: () => void | Promise<void>,
          ): Promise<void> {
            const t0 = Date.now();
            const undo = once(await inject());
            try {
              const first = await waitFor(`${name} notification`, detectMs, () =>
                since().find(mine),
              );
              t.log(
                `${name}: fault to notification ${seconds(first.receivedMs - t0)}: ${describe(first)}`,
              );
              onNotified(first, first.receivedMs - t0);
              await sleep(SETTLE_MS);
              await duringSettle();
              const healed = Date.now();
              t.deepEqual(
                since()
                  .filter((n) => mine(n) && n.status === 'resolved')
                  .map(describe),
                [],
                `${name}: resolved before healing`,
              );
              await undo();
              const resolved = await waitFor(`${name} resolved notification`, o.resolveMs, () =>
                since().find((n) => mine(n) && n.status === 'resolved'),
              );
              t.log(
                `${name}: heal to resolved ${seconds(resolved.receivedMs - healed)}: ${describe(resolved)}`,
              );
              t.deepEqual(resolved.groupLabels, first.groupLabels);
              t.true(resolved.alerts.every((x) => x.status === 'resolved'));
              t.is(resolved.receiver, first.receiver);
            } finally {
              await undo();
            }
          }

          const nodeGroup = { alertname: 'PodmeshNodeUnreachable', cluster: 'lab', node: 'node-3' };
          const partition = fault(
            'partition node-3',
            () => lab.partition('node-3'),
            (n) => sameLabels(n.groupLabels, nodeGroup),
            o.detectMs,
            (first) => {
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
            },
            async () => {
              // Exactly one notification group for the node alert, notified once (a group is
              // notified again when its alerts change; here it has one alert and no change).
              const mine = since().filter((n) => sameLabels(n.groupLabels, nodeGroup));
              t.is(mine.length, 1, mine.map(describe).join('\n'));
              if (!sideBySide) t.is(since().length, 1, since().map(describe).join('\n'));
              // What Alertmanager holds besides it (and the side-by-side faults' own alerts):
              // nothing active; symptoms, if any got this far, are suppressed (the rules' unless
              // clauses keep them from firing in the first place).
              const held = await am!.alerts();
              t.log(
                `alertmanager holds: ${held.map((x) => `${x.labels['alertname'] ?? '?'}{node=${x.labels['node'] ?? ''}} ${x.status?.state ?? '?'}`).join('; ')}`,
              );
              t.deepEqual(
                held
                  .filter((x) => x.status?.state === 'active')
                  .filter((x) => x.labels['alertname'] !== 'PodmeshNodeUnreachable')
                  .filter((x) => !sideBySideAlert(x.labels))
                  .map((x) => x.labels['alertname']),
                [],
              );
            },
          );
          const faults = [partition];

          if (sideBySide) {
            // The loss: every pair alert in its group is between node-1 and node-2, and no
            // PairLatencyHigh on that pair goes even pending (polled while the loss lasts).
            // Both of PairLossHigh's severities group as { alertname, cluster }: the loss
            // group is either; the page (critical, over 10% on average) is the one awaited.
            const lossGroup = (n: Notification): boolean =>
              sameLabels(n.groupLabels, { alertname: 'PodmeshPairLossHigh', cluster: 'lab' });
            const lossPage = (n: Notification): boolean =>
              lossGroup(n) && n.receiver === 'podmesh-page';
            const latency = new Set<string>();
            let lossOn = true;
            const watchLatency = (async (): Promise<void> => {
              while (lossOn) {
                for (const a of await prom!.alerts())
                  if (a.labels['alertname'] === 'PodmeshPairLatencyHigh' && lossPair(a.labels))
                    latency.add(
                      `${a.labels['source_node']}->${a.labels['target_node']} ${a.labels['path']} ${a.state}`,
                    );
                await sleep(2000);
              }
            })();
            const groupWait = shippedGroupWaitMs('critical');
            faults.push(
              fault(
                'loss 20% node-1 -> node-2',
                () => lab.loss('node-1', 'node-2', 20, { oneWay: true }),
                lossPage,
                LOSS_PAGE_MS - groupWait,
                (first, detectMs) => {
                  // The lab's waits are short; the shipped config waits group_wait before the
                  // first notification of a group: the sum must stay under 3 minutes.
                  t.log(
                    `loss 20% node-1 -> node-2: with the shipped group_wait (${seconds(groupWait)}) ${seconds(detectMs + groupWait)}`,
                  );
                  t.true(detectMs + groupWait < LOSS_PAGE_MS, seconds(detectMs + groupWait));
                  t.is(first.receiver, 'podmesh-page');
                  t.is(first.status, 'firing');
                  t.true(first.alerts.length > 0);
                  for (const a of first.alerts) {
                    t.true(lossPair(a.labels), JSON.stringify(a.labels));
                    t.is(a.labels['severity'], 'critical');
                    t.regex(
                      a.annotations['description'] ?? '',
                      /loses at least \d+(\.\d+)?% of its small probes/,
                    );
                    t.is(
                      a.annotations['runbook_url'],
                      'https://github.com/podmesh/podmesh/blob/main/docs/runbooks/podmesh-pair-loss-high.md',
                    );
                  }
                },
                () => {
                  lossOn = false;
                  for (const n of since().filter(lossGroup))
                    for (const a of n.alerts) t.true(lossPair(a.labels), JSON.stringify(a.labels));
                },
              ).finally(async () => {
                lossOn = false;
                await watchLatency;
                t.deepEqual([...latency], [], 'PairLatencyHigh on the lossy pair');
              }),
            );

            const dnsGroup = (n: Notification): boolean =>
              n.groupLabels['alertname'] === 'PodmeshDNSReplicaFailing';
            faults.push(
              fault(
                `dns replica ${replica!.name} (node-1) down`,
                () => lab.dnsReplicasDown([replica!.name]),
                dnsGroup,
                dnsDetectMs,
                (first) => {
                  t.regex(first.groupLabels['server'] ?? '', /^node-1/);
                  t.is(first.receiver, 'podmesh-ticket');
                  t.is(first.status, 'firing');
                  t.is(first.alerts.length, 1);
                  const a = first.alerts[0]!;
                  t.regex(a.annotations['summary'] ?? '', /replica/);
                  t.is(
                    a.annotations['runbook_url'],
                    'https://github.com/podmesh/podmesh/blob/main/docs/runbooks/podmesh-dns-replica-failing.md',
                  );
                },
                () => {
                  const mine = since().filter(dnsGroup);
                  t.is(mine.length, 1, mine.map(describe).join('\n'));
                },
              ),
            );
          }

          // Every fault runs to its end (healed) before the first failure is reported.
          const results = await Promise.allSettled(faults);
          for (const r of results) if (r.status === 'rejected') throw r.reason;
          // Nothing else reached the receiver: the symptoms were held back or inhibited.
          t.deepEqual(
            [...new Set(since().map((n) => n.groupLabels['alertname'] ?? '?'))].sort(),
            sideBySide
              ? ['PodmeshDNSReplicaFailing', 'PodmeshNodeUnreachable', 'PodmeshPairLossHigh']
              : ['PodmeshNodeUnreachable'],
            since().map(describe).join('\n'),
          );
        },
      );
    },
  );
}
