// Building blocks shared by every podmesh dashboard: the datasource, cluster and node variables, the
// dashboard skeleton (uid, tags, links to the other podmesh dashboards) and panel helpers that
// wire each query to the selected Prometheus, so the dashboard modules only state what to show.

import {
  DashboardBuilder,
  type AnnotationQuery,
  DashboardCursorSync,
  DashboardLinkBuilder,
  DashboardLinkType,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  VariableRefresh,
  VariableSort,
  type Dashboard,
  type DashboardLink,
  type DataTransformerConfig,
  type Panel,
  type Threshold,
  type VariableModel,
} from '@grafana/grafana-foundation-sdk/dashboard';
import type { Builder } from '@grafana/grafana-foundation-sdk/cog';
import {
  BigValueGraphMode,
  ReduceDataOptionsBuilder,
  TableCellDisplayMode,
  type DataSourceRef,
} from '@grafana/grafana-foundation-sdk/common';
import { DataqueryBuilder, PromQueryFormat } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TableBuilder } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';
import { withMatcher } from './promql.ts';

/** Every panel and query reads from the Prometheus the `datasource` variable selects. */
export const DS: DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

export const TAG = 'podmesh';

/** The dashboards' uids; links and tests refer to them by these names. */
export const UIDS = {
  overview: 'podmesh-overview',
  pair: 'podmesh-pair',
  dns: 'podmesh-dns',
  ports: 'podmesh-ports',
  agentHealth: 'podmesh-agent-health',
  node: 'podmesh-node',
} as const;

/**
 * The matcher every selector of every query carries (added by `target` and `labelVariable`), as
 * the kubernetes-mixin does: with several clusters in one Prometheus (Thanos, Mimir, a
 * federation with a `cluster` label) the dashboards show one, or all. `.*` also matches series
 * without the label, so a single cluster needs nothing.
 */
export const CLUSTER_MATCHER = 'cluster=~"$cluster"';

/** A relative URL to another podmesh dashboard that carries the datasource, cluster and time. */
export function dashboardUrl(uid: string, vars: Record<string, string>): string {
  const params = Object.entries(vars).map(([k, v]) => `var-${k}=${v}`);
  return `/d/${uid}/${uid}?\${datasource:queryparam}&\${cluster:queryparam}&${params.join('&')}&\${__url_time_range}`;
}

/** A link to the pair drill-down for one source → target (values or `${__data.fields...}`). */
export function pairUrl(source: string, target: string): string {
  return dashboardUrl(UIDS.pair, { source_node: source, target_node: target });
}

/** A link to the node drill-down for one node. */
export function nodeUrl(node: string): string {
  return dashboardUrl(UIDS.node, { node });
}

export function datasourceVariable(): Builder<VariableModel> {
  return new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus');
}

/** The cluster drop-down: the `cluster` values podmesh's series carry; All (`.*`) by default. */
export function clusterVariable(): Builder<VariableModel> {
  const query = 'label_values(podmesh_build_info, cluster)';
  return new QueryVariableBuilder('cluster')
    .label('Cluster')
    .datasource(DS)
    .query(query)
    .definition(query)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.NaturalAsc)
    .multi(true)
    .includeAll(true)
    .allValue('.*')
    .current({ text: 'All', value: '$__all', selected: true });
}

interface LabelVariable {
  name: string;
  label: string;
  /** The catalogued metric whose label values fill the drop-down. */
  metric: string;
  /** The metric's label to list; defaults to the variable's name. */
  from?: string;
  /** Single-select drill-downs (one pair) set this to false. */
  multi?: boolean;
}

/**
 * A drop-down filled from `label_values(metric, label)`. Multi-select variables default to All
 * with the All value `.*`, so the selectors (always `=~`) also match values that appeared after
 * the drop-down was loaded.
 */
export function labelVariable(v: LabelVariable): Builder<VariableModel> {
  const query = `label_values(${v.metric}{${CLUSTER_MATCHER}}, ${v.from ?? v.name})`;
  const b = new QueryVariableBuilder(v.name)
    .label(v.label)
    .datasource(DS)
    .query(query)
    .definition(query)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.NaturalAsc);
  if (v.multi === false) return b.multi(false).includeAll(false);
  return b
    .multi(true)
    .includeAll(true)
    .allValue('.*')
    .current({ text: 'All', value: '$__all', selected: true });
}

/** The pair series' own metric: every pair drop-down lists its label values. */
const PAIR_METRIC = 'podmesh_pair_window_probes';

/**
 * The source and target node drop-downs of the pair series; a drill-down to one pair makes
 * them single-select (`multi: false`).
 */
export function pairNodeVariables(multi?: false): Builder<VariableModel>[] {
  return [
    labelVariable({ name: 'source_node', label: 'Source node', metric: PAIR_METRIC, multi }),
    labelVariable({ name: 'target_node', label: 'Target node', metric: PAIR_METRIC, multi }),
  ];
}

/** The path and protocol drop-downs of the pair series (overview, pair and node dashboards). */
export function pathProtocolVariables(): Builder<VariableModel>[] {
  return [
    labelVariable({ name: 'path', label: 'Path', metric: PAIR_METRIC }),
    labelVariable({ name: 'protocol', label: 'Protocol', metric: PAIR_METRIC }),
  ];
}

interface DashboardSpec {
  uid: string;
  title: string;
  description: string;
  variables: Builder<VariableModel>[];
}

/** The common skeleton: stable uid, the podmesh tag, one link menu to the other dashboards. */
export function dashboard(spec: DashboardSpec): DashboardBuilder {
  return new DashboardBuilder(spec.title)
    .uid(spec.uid)
    .description(spec.description)
    .tags([TAG])
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .time({ from: 'now-1h', to: 'now' })
    .refresh('30s')
    .timezone('browser')
    .variables([datasourceVariable(), clusterVariable(), ...spec.variables])
    .link(
      new DashboardLinkBuilder('podmesh')
        .type(DashboardLinkType.Dashboards)
        .tags([TAG])
        .asDropdown(true)
        .includeVars(true)
        .keepTime(true)
        .targetBlank(false)
        .icon('external link')
        .tooltip('Other podmesh dashboards'),
    );
}

export interface Query {
  expr: string;
  legend?: string;
  /** Instant queries for tables and stats that show the current state. */
  instant?: boolean;
  format?: 'table' | 'heatmap';
}

function target(q: Query, refId: string): DataqueryBuilder {
  const b = new DataqueryBuilder()
    .datasource(DS)
    .refId(refId)
    .expr(withMatcher(q.expr, CLUSTER_MATCHER));
  if (q.legend !== undefined) b.legendFormat(q.legend);
  if (q.instant === true) b.instant();
  else b.range();
  if (q.format === 'table') b.format(PromQueryFormat.Table);
  if (q.format === 'heatmap') b.format(PromQueryFormat.Heatmap);
  return b;
}

function refId(i: number): string {
  return String.fromCharCode(65 + i);
}

export function thresholds(
  steps: [value: number | null, color: string][],
): ThresholdsConfigBuilder {
  const s: Threshold[] = steps.map(([value, color]) => ({ value, color }));
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps(s);
}

/** Thresholds for a ratio where higher is worse (loss). */
export const LOSS_STEPS: [number | null, string][] = [
  [null, 'green'],
  [0.01, 'yellow'],
  [0.05, 'red'],
];
/** Thresholds for a round trip in seconds: red from 50 ms, PodmeshPairLatencyHigh's threshold. */
export const RTT_STEPS: [number | null, string][] = [
  [null, 'green'],
  [0.005, 'yellow'],
  [0.05, 'red'],
];
/** Thresholds for a ratio where lower is worse (answered, open as expected). */
export const SUCCESS_STEPS: [number | null, string][] = [
  [null, 'red'],
  [0.95, 'yellow'],
  [0.999, 'green'],
];

interface PanelSpec {
  title: string;
  description: string;
  queries: Query[];
  unit?: string;
  w?: number;
  h?: number;
}

export function timeseries(p: PanelSpec & { min?: number; max?: number }): TimeseriesBuilder {
  const b = new TimeseriesBuilder()
    .title(p.title)
    .description(p.description)
    .datasource(DS)
    .targets(p.queries.map((q, i) => target(q, refId(i))))
    .span(p.w ?? 12)
    .height(p.h ?? 8)
    .fillOpacity(10);
  if (p.unit !== undefined) b.unit(p.unit);
  if (p.min !== undefined) b.min(p.min);
  if (p.max !== undefined) b.max(p.max);
  return b;
}

export function stat(
  p: PanelSpec & { steps?: [number | null, string][]; noValue?: string },
): StatBuilder {
  const b = new StatBuilder()
    .title(p.title)
    .description(p.description)
    .datasource(DS)
    .targets(p.queries.map((q, i) => target({ instant: true, ...q }, refId(i))))
    .span(p.w ?? 6)
    .height(p.h ?? 4)
    .graphMode(BigValueGraphMode.None)
    .reduceOptions(new ReduceDataOptionsBuilder().values(false).calcs(['lastNotNull']));
  if (p.unit !== undefined) b.unit(p.unit);
  if (p.steps !== undefined) b.thresholds(thresholds(p.steps));
  if (p.noValue !== undefined) b.noValue(p.noValue);
  return b;
}

interface TableSpec extends PanelSpec {
  transformations?: DataTransformerConfig[];
  steps?: [number | null, string][];
  /** Colour the value cells' background by the thresholds. */
  colored?: boolean;
  noValue?: string;
  links?: { title: string; url: string }[];
}

/** A table's transformations that put the highest value first and title its column `name`. */
export function worstFirst(name: string): DataTransformerConfig[] {
  return [
    { id: 'sortBy', options: { sort: [{ field: 'Value', desc: true }] } },
    { id: 'organize', options: { renameByName: { Value: name } } },
  ];
}

/** A table of instant queries; the Time column is hidden since every row is "now". */
export function table(p: TableSpec): TableBuilder {
  const b = new TableBuilder()
    .title(p.title)
    .description(p.description)
    .datasource(DS)
    .targets(p.queries.map((q, i) => target({ instant: true, format: 'table', ...q }, refId(i))))
    .span(p.w ?? 12)
    .height(p.h ?? 8)
    .transformations([
      { id: 'organize', options: { excludeByName: { Time: true } } },
      ...(p.transformations ?? []),
    ]);
  if (p.unit !== undefined) b.unit(p.unit);
  if (p.steps !== undefined) b.thresholds(thresholds(p.steps));
  if (p.colored === true) b.cellOptions({ type: TableCellDisplayMode.ColorBackground });
  if (p.noValue !== undefined) b.noValue(p.noValue);
  if (p.links !== undefined)
    b.dataLinks(p.links.map((l) => new DashboardLinkBuilder(l.title).url(l.url)));
  return b;
}

/** `podmesh_finding_active`, kept to the findings whose subject matches `subject` (a regex). */
function findingsSelector(subject?: string): string {
  return subject === undefined ? '' : `{subject=~"${subject}"}`;
}

/** How many findings are open (0, green, when none): the first stat of a dashboard. */
export function findingsStat(p: {
  title: string;
  description: string;
  subject?: string;
}): StatBuilder {
  return stat({
    title: p.title,
    description: p.description,
    queries: [{ expr: `count(podmesh_finding_active${findingsSelector(p.subject)}) or vector(0)` }],
    steps: [
      [null, 'green'],
      [1, 'red'],
    ],
  });
}

/** The open findings, one row each (severity, kind, subject); `noValue` says none is open. */
export function findingsTable(p: {
  title: string;
  description: string;
  noValue: string;
  subject?: string;
}): TableBuilder {
  return table({
    title: p.title,
    description: p.description,
    queries: [
      {
        expr: `max by (severity, kind, subject) (podmesh_finding_active${findingsSelector(p.subject)})`,
      },
    ],
    noValue: p.noValue,
    transformations: [{ id: 'organize', options: { excludeByName: { Value: true } } }],
  });
}

/**
 * A source × target matrix: one instant query returning one series per (row, column) label
 * pair, turned into rows by Grafana's "Grouping to matrix" transformation, cells coloured by
 * thresholds. Grafana's heatmap panel always puts time on the x axis, so a matrix of two node
 * labels renders best as this coloured table; a click on a cell opens `link` if given.
 */
export function matrix(
  p: PanelSpec & {
    row: string;
    column: string;
    rowTitle: string;
    steps: [number | null, string][];
    link?: (row: string, column: string) => string;
    /** Where a click on a row header (a node) leads. */
    rowLink?: (row: string) => string;
  },
): TableBuilder {
  const rowName = `${p.row}\\${p.column}`;
  const t = table({
    ...p,
    colored: true,
    noValue: '-',
    transformations: [
      {
        id: 'groupingToMatrix',
        options: {
          rowField: p.row,
          columnField: p.column,
          valueField: 'Value',
          emptyValue: 'null',
        },
      },
      { id: 'organize', options: { renameByName: { [rowName]: p.rowTitle } } },
    ],
    links:
      p.link === undefined
        ? undefined
        : [
            {
              title: 'Open this cell',
              url: p.link(`\${__data.fields.${p.rowTitle}}`, '${__field.name}'),
            },
          ],
  });
  // The row-header column holds node names: no colour; its link (if any) opens the node.
  return t.overrideByName(p.rowTitle, [
    { id: 'custom.cellOptions', value: { type: TableCellDisplayMode.Auto } },
    {
      id: 'links',
      value:
        p.rowLink === undefined
          ? []
          : [{ title: 'Open this node', url: p.rowLink('${__value.raw}') }],
    },
  ]);
}

/**
 * The controller's open findings (podmesh_finding_active: one series per finding while it is
 * open) as annotations: Grafana draws one region per finding from when it opened to when it
 * cleared, titled with its kind and subject, on every time series panel. `subject`, a regex,
 * keeps the ones about what the dashboard shows (a node, a pair). The classic Prometheus
 * annotation fields, which every Grafana since 7 reads (newer ones move them into `target`).
 */
export function findingsAnnotation(subject?: string): AnnotationQuery {
  const sel = findingsSelector(subject);
  return {
    name: 'podmesh findings',
    datasource: DS,
    enable: true,
    iconColor: 'red',
    expr: withMatcher(
      `max by (kind, severity, subject) (podmesh_finding_active${sel})`,
      CLUSTER_MATCHER,
    ),
    step: '30s',
    titleFormat: '{{kind}} {{subject}}',
    textFormat: '{{severity}} finding from podmesh triage (docs/triage.md)',
    tagKeys: 'kind,severity',
    useValueForTime: false,
  };
}

/**
 * What the controller saw change in the cluster (podmesh_cluster_changes_total: a plumbing Pod
 * restarted or rolled out, a node rebooted, a NetworkPolicy changed ...; docs/triage.md "What
 * changed") as annotations, a short region after each, so a graph's step lines up with its
 * likely cause. `node`, a regex, keeps one node's (NetworkPolicies, with no node, always show).
 */
export function changesAnnotation(node?: string): AnnotationQuery {
  const sel = node === undefined ? '' : `{node=~"${node}|"}`;
  return {
    name: 'podmesh cluster changes',
    datasource: DS,
    enable: true,
    iconColor: 'orange',
    expr: withMatcher(
      `sum by (kind, node) (increase(podmesh_cluster_changes_total${sel}[1m])) > 0`,
      CLUSTER_MATCHER,
    ),
    step: '30s',
    titleFormat: '{{kind}} {{node}}',
    textFormat: 'seen by the podmesh controller (what changed: docs/triage.md)',
    tagKeys: 'kind',
    useValueForTime: false,
  };
}

/**
 * Last touches on the built JSON: panels get stable ids in layout order (Grafana needs them for
 * links to one panel), the annotation list exists (Grafana iterates it; `annotations` fill it), and links drop the
 * SDK's `placement: inControlsMenu` default, which would tuck them into a menu in Grafana 12,
 * and, for data links, the dashboard-link fields that mean nothing there.
 */
export function finish(d: DashboardBuilder, annotations: AnnotationQuery[] = []): Dashboard {
  const built = d.build();
  built.annotations = { list: annotations };
  for (const l of built.links ?? []) delete l.placement;
  let id = 1;
  const walk = (panels: Panel[] | undefined): void => {
    for (const p of panels ?? []) {
      p.id = id++;
      const defaults = p.fieldConfig?.defaults;
      if (defaults?.links !== undefined)
        defaults.links = defaults.links.map(
          (l) => ({ title: l.title, url: l.url }) as DashboardLink,
        );
      walk((p as Panel & { panels?: Panel[] }).panels);
    }
  };
  walk(built.panels);
  return built;
}
