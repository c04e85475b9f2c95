// Checks PromQL the way the catalogue promises: every expression in the dashboards and alert
// rules must parse, and may name only catalogued metrics (or recording rules, or `up`), with
// only their labels. Also collects the expressions from dashboard JSON (panel targets and
// variable queries, Grafana variables replaced by plausible values) and from rule files, so
// the same list can be run against a real Prometheus.

import { parser } from '@prometheus-io/lezer-promql';
import { parse as parseYaml } from 'yaml';
import { CATALOGUE } from '../../src/metrics/catalogue.ts';
import { EXTERNAL_SERIES } from '../../src/metrics/external-series.ts';

type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

/**
 * Labels Prometheus (prometheus-operator's PodMonitor) attaches to every scraped series, and
 * `cluster`, which a multi-cluster setup adds (a target or external label) and every dashboard
 * query filters on.
 */
export const TARGET_LABELS = [
  'job',
  'instance',
  'namespace',
  'pod',
  'container',
  'endpoint',
  'cluster',
];

/** A series name PromQL may select and the labels it carries; null labels: not known. */
export type Known = Map<string, ReadonlySet<string> | null>;

/**
 * The selectable names: counters and gauges as catalogued, histograms only as their _bucket
 * (with `le`), _sum and _count series (classic histograms have no series of the bare name),
 * `up`, and the given recording rules, whose labels the checker can't know.
 */
export function knownSeries(recordingRules: Iterable<string> = []): Known {
  const known: Known = new Map();
  for (const d of Object.values(CATALOGUE)) {
    const labels = new Set<string>([...d.labels, ...TARGET_LABELS]);
    if (d.type === 'histogram') {
      known.set(`${d.name}_bucket`, new Set([...labels, 'le']));
      known.set(`${d.name}_sum`, labels);
      known.set(`${d.name}_count`, labels);
    } else known.set(d.name, labels);
  }
  // The PodMonitor (deploy/components/prometheus-operator/pod-monitor.yaml) relabels the agents' Pod node onto `node`.
  known.set('up', new Set([...TARGET_LABELS, 'node']));
  // Other exporters' metrics that the plumbing rules read, with their own labels.
  for (const e of EXTERNAL_SERIES) known.set(e.name, new Set([...e.labels, ...TARGET_LABELS]));
  for (const r of recordingRules) known.set(r, null);
  return known;
}

/**
 * The expression with `matcher` (e.g. `cluster=~"$cluster"`) added to every vector selector, as
 * the monitoring mixins scope every query; the rest of the text is left as written.
 */
export function withMatcher(expr: string, matcher: string): string {
  const edits: { at: number; text: string }[] = [];
  const masked = maskVariables(expr);
  parser.parse(masked).iterate({
    enter: (ref) => {
      if (ref.type.isError) throw new Error(`not PromQL: ${expr}`);
      if (ref.name !== 'VectorSelector') return;
      const m = ref.node.getChild('LabelMatchers');
      if (m === null) edits.push({ at: ref.node.to, text: `{${matcher}}` });
      else {
        const empty = masked.slice(m.from + 1, m.to - 1).trim() === '';
        edits.push({ at: m.from + 1, text: empty ? matcher : `${matcher}, ` });
      }
    },
  });
  let out = expr;
  for (const e of edits.sort((a, b) => b.at - a.at))
    out = out.slice(0, e.at) + e.text + out.slice(e.at);
  return out;
}

/** Whether every vector selector of the expression carries this matcher, as written. */
export function everySelectorHas(expr: string, matcher: string): boolean {
  let all = true;
  parser.parse(maskVariables(expr)).iterate({
    enter: (ref) => {
      if (ref.name !== 'VectorSelector') return;
      const m = ref.node.getChild('LabelMatchers');
      if (m === null || !expr.slice(m.from, m.to).includes(matcher)) all = false;
    },
  });
  return all;
}

/**
 * Grafana variables (`$__rate_interval` in a range) replaced by a duration of the same length,
 * so the text parses and its positions are the original's.
 */
function maskVariables(expr: string): string {
  return expr.replace(VARIABLE, (w) => `${'1'.repeat(w.length - 1)}s`);
}

function unquote(literal: string): string {
  if (literal.startsWith('"')) return JSON.parse(literal) as string;
  return literal.slice(1, -1);
}

function describe(expr: string, node: SyntaxNode): string {
  const text = expr.slice(node.from, Math.max(node.to, node.from + 1)) || '<end>';
  return `at column ${node.from + 1} (${JSON.stringify(text)})`;
}

/** The metric a vector selector names: `foo{...}`, `{__name__="foo"}` or `{"foo"}`. */
function selectorName(expr: string, sel: SyntaxNode): string | undefined {
  const id = sel.getChild('Identifier');
  if (id !== null) return expr.slice(id.from, id.to);
  const matchers = sel.getChild('LabelMatchers');
  if (matchers === null) return undefined;
  const bare = matchers.getChild('QuotedLabelName');
  if (bare !== null) return unquote(expr.slice(bare.from, bare.to));
  for (const m of matchers.getChildren('UnquotedLabelMatcher')) {
    const name = m.getChild('LabelName');
    const op = m.getChild('MatchOp');
    const value = m.getChild('StringLiteral');
    if (name === null || op === null || value === null) continue;
    if (expr.slice(name.from, name.to) === '__name__' && expr.slice(op.from, op.to) === '=')
      return unquote(expr.slice(value.from, value.to));
  }
  return undefined;
}

function matcherLabels(expr: string, sel: SyntaxNode): string[] {
  const matchers = sel.getChild('LabelMatchers');
  if (matchers === null) return [];
  const out: string[] = [];
  for (const m of matchers.getChildren('UnquotedLabelMatcher')) {
    const name = m.getChild('LabelName');
    if (name !== null) out.push(expr.slice(name.from, name.to));
  }
  for (const m of matchers.getChildren('QuotedLabelMatcher')) {
    const name = m.getChild('QuotedLabelName');
    if (name !== null) out.push(unquote(expr.slice(name.from, name.to)));
  }
  return out.filter((l) => l !== '__name__');
}

/** Labels a function or count_values creates, which later `by (...)` may then name. */
const LABEL_MAKERS = new Set(['LabelReplace', 'LabelJoin', 'CountValues']);

/**
 * Problems with one PromQL expression (empty when it is fine): syntax errors, selectors of
 * uncatalogued names, label matchers on labels the metric doesn't have, and grouping labels
 * (by, without, on, ignoring, group_left/right) that none of the selected metrics carries.
 */
export function checkExpr(expr: string, known: Known): string[] {
  const problems: string[] = [];
  if (expr.trim() === '') return ['empty expression'];
  const tree = parser.parse(expr);
  const selectors: SyntaxNode[] = [];
  const grouping: SyntaxNode[] = [];
  const made = new Set<string>();
  tree.iterate({
    enter: (ref) => {
      if (ref.type.isError) problems.push(`syntax error ${describe(expr, ref.node)}`);
      else if (ref.name === 'VectorSelector') selectors.push(ref.node);
      else if (ref.name === 'GroupingLabels') grouping.push(ref.node);
      else if (LABEL_MAKERS.has(ref.name)) {
        const body = ref.node.parent?.parent?.getChild('FunctionCallBody');
        for (const s of body?.getChildren('StringLiteral') ?? [])
          made.add(unquote(expr.slice(s.from, s.to)));
      }
    },
  });
  if (problems.length > 0) return [...new Set(problems)];

  // Labels any selected series may carry; null once a recording rule (labels unknown) is in.
  let available: Set<string> | null = new Set(['le', 'quantile', ...made]);
  for (const sel of selectors) {
    const name = selectorName(expr, sel);
    if (name === undefined) {
      problems.push(`selector without a fixed metric name ${describe(expr, sel)}`);
      available = null;
      continue;
    }
    if (!known.has(name)) {
      const hint = known.has(`${name}_bucket`) ? ' (a histogram: use _bucket, _sum or _count)' : '';
      problems.push(`metric ${name} is not in the catalogue${hint}`);
      available = null;
      continue;
    }
    const labels = known.get(name);
    if (labels === null || labels === undefined) {
      available = null;
      continue;
    }
    for (const l of matcherLabels(expr, sel))
      if (!labels.has(l)) problems.push(`metric ${name} has no label ${l}`);
    if (available !== null) for (const l of labels) available.add(l);
  }
  if (available !== null) {
    for (const g of grouping) {
      for (const n of [...g.getChildren('LabelName'), ...g.getChildren('QuotedLabelName')]) {
        const raw = expr.slice(n.from, n.to);
        const label = n.name === 'QuotedLabelName' ? unquote(raw) : raw;
        if (!available.has(label))
          problems.push(`grouping label ${label} is not a label of any metric in the expression`);
      }
    }
  }
  return problems;
}

const LABEL_VALUES = /^label_values\(\s*(.+?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$/;
const QUERY_RESULT = /^query_result\(\s*(.+)\s*\)$/;

/** Problems with a Grafana Prometheus variable query (label_values or query_result). */
export function checkVariableQuery(query: string, known: Known): string[] {
  const lv = LABEL_VALUES.exec(query.trim());
  if (lv !== null) {
    const [, selector = '', label = ''] = lv;
    const problems = checkExpr(selector, known);
    if (problems.length > 0) return problems;
    const top = parser.parse(selector).topNode.firstChild;
    const name = top?.name === 'VectorSelector' ? selectorName(selector, top) : undefined;
    if (name === undefined) return [`label_values needs a plain series selector: ${selector}`];
    const labels = known.get(name);
    if (labels !== null && labels !== undefined && !labels.has(label))
      return [`metric ${name} has no label ${label}`];
    return [];
  }
  const qr = QUERY_RESULT.exec(query.trim());
  if (qr !== null) return checkExpr(qr[1] ?? '', known);
  return [
    `unsupported variable query (only label_values(metric, label) and query_result): ${query}`,
  ];
}

/** Values Grafana gives its built-in variables; durations where PromQL expects one. */
const BUILTINS: Record<string, string> = {
  __rate_interval: '1m',
  __interval: '30s',
  __interval_ms: '30000',
  __range: '1h',
  __range_s: '3600',
  __range_ms: '3600000',
};

const VARIABLE =
  /\$\{([A-Za-z_]\w*)(?::[^}]*)?\}|\[\[([A-Za-z_]\w*)(?::[^\]]*)?\]\]|\$([A-Za-z_]\w*)/g;

/**
 * Replaces Grafana variables with values like those Grafana sends: built-ins as durations,
 * dashboard variables by `values` (e.g. `.*` for a multi-select's All). An unknown variable
 * is an error: Grafana would send it to Prometheus literally.
 */
export function substitute(expr: string, values: ReadonlyMap<string, string>): string {
  return expr.replace(VARIABLE, (whole, a?: string, b?: string, c?: string) => {
    const name = a ?? b ?? c ?? '';
    const v = BUILTINS[name] ?? values.get(name);
    if (v === undefined) throw new Error(`unknown Grafana variable ${whole} in: ${expr}`);
    return v;
  });
}

interface GrafanaVariable {
  name: string;
  type: string;
  query?: string | { query?: string };
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string;
}
interface GrafanaPanel {
  title?: string;
  type?: string;
  targets?: { refId?: string; expr?: string }[];
  panels?: GrafanaPanel[];
}
export interface GrafanaDashboard {
  uid?: string;
  title?: string;
  annotations?: { list?: { name?: string; expr?: string }[] };
  templating?: { list?: GrafanaVariable[] };
  panels?: GrafanaPanel[];
}

export interface Found {
  /** Where it came from, for messages: file, panel title, refId. */
  where: string;
  /** As written, with Grafana variables. */
  raw: string;
  /** Ready for a Prometheus: variables substituted. */
  expr: string;
  kind: 'panel' | 'variable' | 'annotation' | 'rule';
}

/** A plausible value for each dashboard variable, as Grafana would interpolate it. */
export function variableValues(d: GrafanaDashboard): Map<string, string> {
  const values = new Map<string, string>();
  for (const v of d.templating?.list ?? []) {
    if (v.type === 'datasource') values.set(v.name, 'prometheus');
    else if (v.multi === true || v.includeAll === true) values.set(v.name, v.allValue ?? '.*');
    else values.set(v.name, 'node-1');
  }
  return values;
}

export function panelsOf(d: GrafanaDashboard): GrafanaPanel[] {
  const out: GrafanaPanel[] = [];
  const walk = (ps: GrafanaPanel[] | undefined): void => {
    for (const p of ps ?? []) {
      out.push(p);
      walk(p.panels);
    }
  };
  walk(d.panels);
  return out;
}

/** Every panel target and variable query of a dashboard, variables substituted. */
export function dashboardExpressions(d: GrafanaDashboard, file: string): Found[] {
  const values = variableValues(d);
  const out: Found[] = [];
  for (const p of panelsOf(d)) {
    for (const t of p.targets ?? []) {
      const raw = t.expr ?? '';
      out.push({
        where: `${file}: panel "${p.title ?? '?'}" ${t.refId ?? '?'}`,
        raw,
        expr: substitute(raw, values),
        kind: 'panel',
      });
    }
  }
  for (const a of d.annotations?.list ?? []) {
    if (a.expr === undefined) continue;
    out.push({
      where: `${file}: annotation "${a.name ?? '?'}"`,
      raw: a.expr,
      expr: substitute(a.expr, values),
      kind: 'annotation',
    });
  }
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const raw = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
    out.push({
      where: `${file}: variable $${v.name}`,
      raw,
      expr: substitute(raw, values),
      kind: 'variable',
    });
  }
  return out;
}

type RuleGroups = {
  name?: string;
  rules?: { record?: string; alert?: string; expr?: unknown }[];
}[];
/** A plain rule file, or a prometheus-operator PrometheusRule that wraps one in spec. */
interface RuleFile {
  groups?: RuleGroups;
  spec?: { groups?: RuleGroups };
}

/** Rule expressions and recording-rule names of one Prometheus rule file's text. */
export function ruleExpressions(text: string, file: string): { found: Found[]; records: string[] } {
  const doc = parseYaml(text) as RuleFile | null;
  const found: Found[] = [];
  const records: string[] = [];
  for (const g of doc?.groups ?? doc?.spec?.groups ?? []) {
    for (const r of g.rules ?? []) {
      if (r.record !== undefined) records.push(r.record);
      // A number is valid YAML for an expression (`expr: 1`); anything else is an empty one.
      const expr =
        typeof r.expr === 'string' ? r.expr : typeof r.expr === 'number' ? String(r.expr) : '';
      found.push({
        where: `${file}: group ${g.name ?? '?'} ${r.alert ?? r.record ?? '?'}`,
        raw: expr,
        expr,
        kind: 'rule',
      });
    }
  }
  return { found, records };
}

/** Problems with one collected expression, prefixed with where it came from. */
export function checkFound(f: Found, known: Known): string[] {
  const problems =
    f.kind === 'variable' ? checkVariableQuery(f.expr, known) : checkExpr(f.expr, known);
  return problems.map((p) => `${f.where}: ${p}\n    ${f.raw}`);
}
