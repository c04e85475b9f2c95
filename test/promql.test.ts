// Every PromQL expression the project ships (dashboard panels, dashboard variable queries,
// alert and recording rules in alerts/*.yaml) parses and names only catalogued metrics with
// their own labels, so a renamed metric or label can't leave a dashboard or alert silently
// empty. Dashboard expressions are also run through promtool, Prometheus's own parser.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  checkExpr,
  checkFound,
  checkVariableQuery,
  dashboardExpressions,
  knownSeries,
  ruleExpressions,
  substitute,
  type Found,
  type GrafanaDashboard,
} from '../dashboards/src/promql.ts';

const ROOT = new URL('../', import.meta.url);

function filesIn(dir: string, pattern: RegExp): string[] {
  const url = new URL(`${dir}/`, ROOT);
  if (!existsSync(url)) return [];
  return readdirSync(url)
    .filter((f) => pattern.test(f))
    .sort()
    .map((f) => `${dir}/${f}`);
}

function read(path: string): string {
  return readFileSync(new URL(path, ROOT), 'utf8');
}

const dashboardFiles = filesIn('dashboards', /\.json$/);
// alerts/alertmanager-example.yaml is an Alertmanager config, not a rule file.
const ruleFiles = filesIn('alerts', /^(?!alertmanager).*\.ya?ml$/);

const rules = ruleFiles.map((f) => ruleExpressions(read(f), f));
const records = rules.flatMap((r) => r.records);
const ruleExprs = rules.flatMap((r) => r.found);
const dashboardExprs = dashboardFiles.flatMap((f) =>
  dashboardExpressions(JSON.parse(read(f)) as GrafanaDashboard, f),
);
const known = knownSeries(records);

test('the checker rejects bad syntax, uncatalogued names and labels a metric lacks', (t) => {
  t.deepEqual(checkExpr('max by (source_node) (podmesh_pair_loss_ratio)', known), []);
  t.deepEqual(
    checkExpr(
      'histogram_quantile(0.99, sum by (le) (rate(podmesh_rtt_seconds_bucket{scope="same-node"}[1m])))',
      known,
    ),
    [],
  );
  t.deepEqual(checkExpr('up == 0', known), []);

  const syntax = checkExpr('sum(rate(podmesh_probes_sent_total[1m])', known);
  t.true(syntax.length > 0 && syntax.every((p) => p.startsWith('syntax error')), syntax.join());
  t.regex(checkExpr('rate(podmesh_probes_sent_total[$__rate_interval])', known).join(), /syntax/);
  t.regex(checkExpr('podmesh_not_a_metric > 0', known).join(), /podmesh_not_a_metric is not in/);
  t.regex(checkExpr('{__name__="podmesh_bogus_total"}', known).join(), /podmesh_bogus_total/);
  t.regex(checkExpr('{__name__=~"podmesh_.*"}', known).join(), /without a fixed metric name/);
  // A histogram only has _bucket, _sum and _count series; _bucket on a gauge is no metric.
  t.regex(checkExpr('podmesh_rtt_seconds', known).join(), /histogram: use _bucket/);
  t.regex(checkExpr('podmesh_peers_bucket', known).join(), /not in the catalogue/);
  t.deepEqual(checkExpr('podmesh_rtt_seconds_count', known), []);
  // The per-pair RTT histogram aggregates by any pair label; it has no quantile label (the
  // deprecated gauge does).
  t.deepEqual(
    checkExpr(
      'histogram_quantile(0.99, sum by (le, target_node, path, protocol) (rate(podmesh_pair_round_trip_seconds_bucket[5m])))',
      known,
    ),
    [],
  );
  t.regex(
    checkExpr('podmesh_pair_round_trip_seconds_bucket{quantile="0.5"}', known).join(),
    /has no label quantile/,
  );
  t.deepEqual(checkExpr('podmesh_pair_rtt_seconds{quantile="0.5"}', known), []);
  // Pair series carry the path, not the network.
  t.regex(
    checkExpr('podmesh_pair_loss_ratio{network="pod"}', known).join(),
    /podmesh_pair_loss_ratio has no label network/,
  );
  t.regex(
    checkExpr('sum by (network) (podmesh_pair_loss_ratio)', known).join(),
    /grouping label network/,
  );
  t.deepEqual(checkExpr('sum by (network) (podmesh_peers)', known), []);
  t.deepEqual(checkExpr('sum by (pod) (podmesh_peers)', known), [], 'scrape labels are fine');
  t.deepEqual(checkExpr('   ', known), ['empty expression']);

  // Recording rules are known names (labels unknown); names only a rule file defines aren't.
  const withRule = knownSeries(['podmesh:pair_loss:max']);
  t.deepEqual(checkExpr('podmesh:pair_loss:max{anything="x"} > 0.1', withRule), []);
  t.regex(checkExpr('podmesh:pair_loss:max > 0.1', knownSeries()).join(), /not in the catalogue/);
});

test('the checker handles Grafana variable queries and substitution', (t) => {
  t.deepEqual(checkVariableQuery('label_values(podmesh_peers, source_node)', known), []);
  t.deepEqual(
    checkVariableQuery('label_values(podmesh_peers{network=~".*"}, source_node)', known),
    [],
  );
  t.regex(
    checkVariableQuery('label_values(podmesh_peers, target_node)', known).join(),
    /no label target_node/,
  );
  t.regex(
    checkVariableQuery('label_values(podmesh_nope, source_node)', known).join(),
    /not in the catalogue/,
  );
  t.regex(checkVariableQuery('label_values(source_node)', known).join(), /unsupported/);
  t.regex(checkVariableQuery('metrics(podmesh_.*)', known).join(), /unsupported/);

  const vars = new Map([['source_node', '.*']]);
  t.is(
    substitute('rate(x{a=~"$source_node", b=~"${source_node:regex}"}[$__rate_interval])', vars),
    'rate(x{a=~".*", b=~".*"}[1m])',
  );
  t.is(
    substitute('label_replace(x, "a", "$1", "b", "(.*)")', vars),
    'label_replace(x, "a", "$1", "b", "(.*)")',
  );
  t.throws(() => substitute('x{a="$typo"}', vars), { message: /unknown Grafana variable \$typo/ });
});

test('rule files are read plain or wrapped in a PrometheusRule', (t) => {
  const groups = [
    {
      name: 'g',
      rules: [
        { record: 'podmesh:x:max', expr: 'max(podmesh_pair_loss_ratio)' },
        { alert: 'X', expr: 'podmesh:x:max > 0.1' },
        { alert: 'Y', expr: { not: 'a string' } },
      ],
    },
  ];
  for (const text of [
    stringify({ groups }),
    stringify({ kind: 'PrometheusRule', spec: { groups } }),
  ]) {
    const { found, records } = ruleExpressions(text, 'r.yaml');
    t.deepEqual(records, ['podmesh:x:max']);
    t.deepEqual(
      found.map((f) => [f.where, f.expr]),
      [
        ['r.yaml: group g podmesh:x:max', 'max(podmesh_pair_loss_ratio)'],
        ['r.yaml: group g X', 'podmesh:x:max > 0.1'],
        ['r.yaml: group g Y', ''],
      ],
    );
    const k = knownSeries(records);
    t.deepEqual(
      found.map((f) => checkFound(f, k).length),
      [0, 0, 1],
    );
  }
});

test('every dashboard and rule expression parses and uses only catalogued metrics', (t) => {
  t.true(dashboardFiles.length >= 5, `dashboards found: ${dashboardFiles.join(', ')}`);
  const panels = dashboardExprs.filter((f) => f.kind === 'panel');
  const variables = dashboardExprs.filter((f) => f.kind === 'variable');
  t.true(panels.length >= 40, `only ${panels.length} panel expressions found`);
  t.true(variables.length >= 10, `only ${variables.length} variable queries found`);
  // alerts/ may not exist yet; once it does, each rule file must yield rules (a layout this
  // collector doesn't understand would otherwise pass as "no problems").
  rules.forEach((r, i) => t.true(r.found.length > 0, `no rules read from ${ruleFiles[i]}`));

  const problems = [...dashboardExprs, ...ruleExprs].flatMap((f) => checkFound(f, known));
  t.deepEqual(problems, [], problems.join('\n'));
  t.log(
    `${panels.length} panel expressions, ${variables.length} variable queries, ` +
      `${ruleExprs.length} rule expressions in ${ruleFiles.length} rule files`,
  );
});

/** Runs promtool over the expressions as recording rules; promtool's output names the source. */
function promtool(exprs: readonly Found[]): { ok: boolean; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-promql-'));
  try {
    const file = join(dir, 'dashboards.rules.yaml');
    const group = {
      name: 'dashboards',
      rules: exprs.map((f, i) => ({ record: `podmesh_dashboard_check_${i}`, expr: f.expr })),
    };
    writeFileSync(file, stringify({ groups: [group] }));
    const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    if (r.error !== undefined)
      return {
        ok: false,
        out: `promtool: ${r.error.message} (install the Debian package prometheus)`,
      };
    const out = `${r.stdout}${r.stderr}`.replace(
      /podmesh_dashboard_check_(\d+)/g,
      (_m, i: string) => String(exprs[Number(i)]?.where),
    );
    const ok = r.status === 0 && out.includes(`SUCCESS: ${exprs.length} rules found`);
    return { ok, out };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('promtool (the real Prometheus parser) accepts every dashboard expression', (t) => {
  // What the Lezer grammar lets through but Prometheus rejects: rate() of an instant vector.
  const bad: Found = { where: 'bad', raw: '', expr: 'rate(podmesh_peers)', kind: 'panel' };
  const rejected = promtool([bad]);
  t.false(rejected.ok, rejected.out);
  t.regex(rejected.out, /range vector/);

  const panels = dashboardExprs.filter((f) => f.kind === 'panel' || f.kind === 'annotation');
  t.true(
    panels.some((f) => f.kind === 'annotation'),
    'annotation queries are checked too',
  );
  const r = promtool(panels);
  t.true(r.ok, r.out);
});
