// The plumbing alerts (alerts/plumbing-rules.yaml) as Prometheus sees them: promtool checks the
// file and runs alerts/tests/plumbing.yaml, every alert carries a severity, a summary, a
// description and a runbook page under docs/runbooks/plumbing/ (linked from the index), every
// alert is tested firing (with its annotations) and in a near miss, the rules only read what
// kube-prometheus-stack collects (no podmesh metric), and the component's PrometheusRule is the
// generated copy. Needs promtool (Debian: prometheus); set PROMTOOL to use another binary.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { parse } from 'yaml';
import { RUNBOOK_BASE_URL, runbookFile } from '../src/gen-alerts.ts';
import {
  PLUMBING_PROMETHEUS_RULE_PATH,
  PLUMBING_RULES_PATH,
  renderPlumbingRule,
} from '../src/gen-plumbing-alerts.ts';

const ROOT = new URL('../', import.meta.url);
const path = (p: string): string => new URL(p, ROOT).pathname;
const read = (p: string): string => readFileSync(path(p), 'utf8');
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';
const TESTS = 'alerts/tests/plumbing.yaml';

interface Rule {
  readonly alert?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}
interface AlertTest {
  readonly alertname: string;
  readonly exp_alerts?: readonly { readonly exp_annotations?: Record<string, string> }[];
}

const rules = parse(read(PLUMBING_RULES_PATH)) as { groups: { name: string; rules: Rule[] }[] };
const alerts = rules.groups.flatMap((g) => g.rules);

function promtool(t: ExecutionContext, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(PROMTOOL, args, { encoding: 'utf8', cwd: path('.') });
  if (r.error !== undefined) {
    t.fail(
      `cannot run ${PROMTOOL} (${r.error.message}): apt-get install prometheus, or set PROMTOOL`,
    );
    return { ok: false, out: '' };
  }
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

test('promtool accepts the plumbing rules and passes their unit tests', (t) => {
  const check = promtool(t, ['check', 'rules', PLUMBING_RULES_PATH]);
  t.true(check.ok, check.out);
  t.true(check.out.includes(`SUCCESS: ${alerts.length} rules found`), check.out);
  const run = promtool(t, ['test', 'rules', TESTS]);
  t.true(run.ok, run.out);
});

test('every plumbing alert: severity, for, summary, description, a runbook page in the index', (t) => {
  t.is(alerts.length, 6);
  const index = read('docs/runbooks/README.md');
  for (const a of alerts) {
    const name = a.alert ?? '';
    t.regex(name, /^Podmesh[A-Z][A-Za-z]+$/);
    t.true(['critical', 'warning'].includes(a.labels?.severity ?? ''), `${name}: severity`);
    t.truthy(a.for, `${name}: for`);
    for (const key of ['summary', 'description'])
      t.true((a.annotations?.[key]?.trim().length ?? 0) > 10, `${name}: ${key}`);
    const page = `plumbing/${runbookFile(name)}`;
    t.is(a.annotations?.runbook_url, `${RUNBOOK_BASE_URL}${page}`, name);
    t.true(existsSync(path(`docs/runbooks/${page}`)), `${name}: no runbook page`);
    const text = read(`docs/runbooks/${page}`);
    t.true(text.startsWith(`# ${name}\n`), page);
    for (const section of ['## Meaning', '## Confirm', '## Fix'])
      t.true(text.includes(`\n${section}`), `${page}: no ${section}`);
    t.true(index.includes(`(${page})`), `the runbook index does not link ${page}`);
  }
});

test('the plumbing rules read only what kube-prometheus-stack collects, never podmesh_', (t) => {
  for (const a of alerts) {
    t.false(/podmesh[_:]/.test(a.expr), `${a.alert} reads a podmesh metric`);
    t.regex(a.expr, /kube_|container_|coredns_/, `${a.alert}`);
  }
});

test('every plumbing alert has a firing test with its annotations and a near miss', (t) => {
  const cases = (parse(read(TESTS)) as { tests: { alert_rule_test?: AlertTest[] }[] }).tests;
  for (const a of alerts) {
    const mine = cases.flatMap((c) =>
      (c.alert_rule_test ?? []).filter((x) => x.alertname === a.alert),
    );
    const firing = mine.filter((x) => (x.exp_alerts ?? []).length > 0);
    t.true(firing.length > 0, `${a.alert}: no firing test`);
    for (const f of firing)
      for (const e of f.exp_alerts!)
        t.deepEqual(
          Object.keys(e.exp_annotations ?? {}).sort(),
          ['description', 'runbook_url', 'summary'],
          `${a.alert}`,
        );
    t.true(
      mine.some((x) => (x.exp_alerts ?? []).length === 0),
      `${a.alert}: no near miss`,
    );
  }
});

test('the component PrometheusRule is generated from the rule file (npm run alerts:plumbing)', (t) => {
  const generated = parse(renderPlumbingRule(read(PLUMBING_RULES_PATH))) as unknown;
  t.deepEqual(parse(read(PLUMBING_PROMETHEUS_RULE_PATH)), generated);
  const rule = generated as { kind: string; metadata: { name: string }; spec: { groups: unknown } };
  t.is(rule.kind, 'PrometheusRule');
  t.is(rule.metadata.name, 'podmesh-plumbing');
  t.deepEqual(rule.spec.groups, rules.groups);
});
