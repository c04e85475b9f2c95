// The shipped Alertmanager example (alerts/alertmanager-example.yaml) as Alertmanager sees it:
// amtool accepts it, every alert of the rule pack routes by its severity (critical pages,
// warning tickets, info nowhere), and every inhibit rule names alerts that exist, so renaming
// an alert can't leave a rule that silently never matches. What a real Alertmanager does with
// it behind a real Prometheus is test/lab/lab-alertmanager.test.ts.
//
// Needs amtool (Debian: prometheus-alertmanager); set AMTOOL to use another binary.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { parse } from 'yaml';
import { RULES_PATH } from '../src/gen-alerts.ts';
import { Alertmanager, WebhookReceiver, testConfig } from './support/alertmanager.ts';

const ROOT = new URL('../', import.meta.url);
const path = (p: string): string => new URL(p, ROOT).pathname;
const EXAMPLE = 'alerts/alertmanager-example.yaml';
const AMTOOL = process.env['AMTOOL'] ?? 'amtool';

interface Rule {
  readonly alert?: string;
  readonly labels?: Record<string, string>;
}
const alerts = (
  parse(readFileSync(path(RULES_PATH), 'utf8')) as { groups: { rules: Rule[] }[] }
).groups.flatMap((g) => g.rules.filter((r) => r.alert !== undefined));

interface AmConfig {
  readonly route: { readonly group_by: string[] };
  readonly inhibit_rules: readonly {
    readonly source_matchers: readonly string[];
    readonly target_matchers: readonly string[];
    readonly equal: readonly string[];
  }[];
}
const config = parse(readFileSync(path(EXAMPLE), 'utf8')) as AmConfig;

/** Runs amtool; fails the test (never skips) when it isn't installed. */
function amtool(t: ExecutionContext, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(AMTOOL, args, { encoding: 'utf8', cwd: path('.') });
  if (r.error !== undefined) {
    t.fail(
      `cannot run ${AMTOOL} (${r.error.message}): install the Debian package ` +
        '`prometheus-alertmanager` (/usr/bin/amtool), or set AMTOOL',
    );
    return { ok: false, out: '' };
  }
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

test('amtool check-config accepts the example, and rejects a broken copy', (t) => {
  const r = amtool(t, ['check-config', EXAMPLE]);
  t.true(r.ok, r.out);
  t.regex(r.out, /SUCCESS/);
  t.regex(r.out, /5 inhibit rules/);
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-am-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const broken = join(dir, 'broken.yaml');
  // A route to a receiver that doesn't exist.
  writeFileSync(
    broken,
    readFileSync(path(EXAMPLE), 'utf8').replace('receiver: podmesh-null', 'receiver: nobody'),
  );
  t.false(amtool(t, ['check-config', broken]).ok);
});

test('every alert routes by its severity: critical pages, warning tickets, info is not sent', (t) => {
  const want: Record<string, string> = {
    critical: 'podmesh-page',
    warning: 'podmesh-ticket',
    info: 'podmesh-null',
  };
  t.true(alerts.length >= 13);
  for (const a of alerts) {
    const severity = a.labels?.['severity'] ?? '';
    const r = amtool(t, [
      'config',
      'routes',
      'test',
      `--config.file=${EXAMPLE}`,
      `alertname=${a.alert!}`,
      `severity=${severity}`,
    ]);
    t.true(r.ok, r.out);
    t.is(r.out.split('\n')[0]?.trim(), want[severity], `${a.alert!} (${severity})`);
  }
});

test('inhibit rules name only alerts of the rule pack; grouping is by incident', (t) => {
  const names = new Set(alerts.map((a) => a.alert!));
  const named = (matchers: readonly string[]): string[] =>
    matchers.flatMap((m) => {
      const x = /^alertname(=~?)"(.*)"$/.exec(m);
      if (x === null) return [];
      return x[1] === '=' ? [x[2]!] : x[2]!.split('|');
    });
  t.is(config.inhibit_rules.length, 5);
  for (const rule of config.inhibit_rules) {
    const all = [...named(rule.source_matchers), ...named(rule.target_matchers)];
    t.true(named(rule.source_matchers).length > 0 && named(rule.target_matchers).length > 0);
    t.deepEqual(
      all.filter((n) => !names.has(n)),
      [],
      JSON.stringify(rule),
    );
    t.true(rule.equal.includes('cluster'), 'clusters sharing an Alertmanager stay apart');
  }
  // The node-level alerts inhibit the agent alerts of the same node.
  const node = config.inhibit_rules[0]!;
  t.true(named(node.source_matchers).includes('PodmeshNodeUnreachable'));
  t.true(named(node.target_matchers).includes('PodmeshAgentDown'));
  t.deepEqual(node.equal, ['cluster', 'node']);
  t.deepEqual(config.route.group_by, ['cluster', 'alertname', 'node', 'server', 'target']);
});

/** The example config in a real Alertmanager with short waits, delivering to a webhook here. */
async function startExample(
  t: ExecutionContext,
): Promise<{ hook: WebhookReceiver; am: Alertmanager }> {
  const hook = await WebhookReceiver.start();
  t.teardown(() => hook.close());
  const am = await Alertmanager.start(
    testConfig(readFileSync(path(EXAMPLE), 'utf8'), hook.url, {
      groupWait: '1s',
      groupInterval: '2s',
      repeatInterval: '1h',
    }),
  );
  t.teardown(() => am.stop());
  return { hook, am };
}

/** Waits for `n` notifications (30 s at most), then 3 s for anything else that would come. */
async function deliveries(hook: WebhookReceiver, n: number): Promise<void> {
  const end = Date.now() + 30_000;
  while (hook.received.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, 3000));
}

// The inhibit rules in a real Alertmanager (not root, no lab): alerts posted as Prometheus
// would, the webhook receiver recording what is delivered.
test("in a real Alertmanager: a node fault silences its own agent alerts, not another node's", async (t) => {
  t.timeout(60_000);
  const { hook, am } = await startExample(t);
  const alert = (name: string, severity: string, l: Record<string, string>) => ({
    labels: { alertname: name, severity, cluster: 'lab', ...l },
    annotations: { summary: name },
  });
  await am.post([
    alert('PodmeshNodeUnreachable', 'critical', { node: 'node-3' }),
    alert('PodmeshAgentDown', 'warning', { node: 'node-3', pod: 'podmesh-agent-x' }),
    alert('PodmeshAgentDown', 'warning', { node: 'node-1', pod: 'podmesh-agent-y' }),
    alert('PodmeshAgentStarved', 'info', { source_node: 'node-2', network: 'pod' }),
  ]);
  await deliveries(hook, 2);
  const got = hook.received
    .map((n) => `${n.receiver} ${n.groupLabels['alertname']} ${n.groupLabels['node'] ?? ''}`)
    .sort();
  t.deepEqual(got, [
    'podmesh-page PodmeshNodeUnreachable node-3',
    'podmesh-ticket PodmeshAgentDown node-1',
  ]);
  const held = (await am.alerts()).filter((a) => a.status?.state === 'suppressed');
  t.deepEqual(
    held.map((a) => `${a.labels['alertname']} ${a.labels['node']} ${a.status!.inhibitedBy.length}`),
    ['PodmeshAgentDown node-3 1'],
  );
});

// PodmeshPairLossHigh comes at two severities (critical over 10% on average, warning from 5%):
// a pair at both pages once, and its ticket is held back; a pair at the warning only tickets.
test("in a real Alertmanager: a pair loss page holds back its own ticket, not another pair's", async (t) => {
  t.timeout(60_000);
  const { hook, am } = await startExample(t);
  const loss = (severity: string, source: string, target: string) => ({
    labels: {
      alertname: 'PodmeshPairLossHigh',
      severity,
      cluster: 'lab',
      source_node: source,
      target_node: target,
      path: 'pod-to-pod',
    },
    annotations: { summary: 'loss' },
  });
  await am.post([
    loss('critical', 'node-1', 'node-2'),
    loss('warning', 'node-1', 'node-2'),
    loss('warning', 'node-2', 'node-3'),
  ]);
  await deliveries(hook, 2);
  const got = hook.received
    .flatMap((n) =>
      n.alerts.map(
        (a) =>
          `${n.receiver} ${a.labels['severity']} ${a.labels['source_node']}->${a.labels['target_node']}`,
      ),
    )
    .sort();
  t.deepEqual(got, [
    'podmesh-page critical node-1->node-2',
    'podmesh-ticket warning node-2->node-3',
  ]);
  const held = (await am.alerts()).filter((a) => a.status?.state === 'suppressed');
  t.deepEqual(
    held.map(
      (a) => `${a.labels['severity']} ${a.labels['source_node']}->${a.labels['target_node']}`,
    ),
    ['warning node-1->node-2'],
  );
});
