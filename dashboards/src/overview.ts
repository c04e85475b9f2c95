// podmesh-overview: the whole mesh at a glance. Source × target matrices of loss and latency,
// the worst pairs, the controller's active findings (also as annotations) and agent coverage;
// every pair links to the podmesh-pair drill-down and every node to podmesh-node, carrying the
// data source, cluster and time range.

import { RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import {
  PanelBuilder as HeatmapBuilder,
  YAxisConfigBuilder,
} from '@grafana/grafana-foundation-sdk/heatmap';
import { DataqueryBuilder, PromQueryFormat } from '@grafana/grafana-foundation-sdk/prometheus';
import {
  CLUSTER_MATCHER,
  DS,
  LOSS_STEPS,
  RTT_STEPS,
  UIDS,
  dashboard,
  changesAnnotation,
  findingsAnnotation,
  findingsStat,
  findingsTable,
  finish,
  matrix,
  nodeUrl,
  pairNodeVariables,
  pairUrl,
  pathProtocolVariables,
  stat,
  table,
  timeseries,
  worstFirst,
} from './common.ts';
import { withMatcher } from './promql.ts';
import { pairQuantile, zonePairQuantile } from './rtt.ts';

const PAIR =
  'source_node=~"$source_node", target_node=~"$target_node", path=~"$path", protocol=~"$protocol"';
const PAIR_LABELS = 'source_node, target_node, path, protocol, size';

const worstPairLinks = [
  {
    title: 'Open this pair',
    url: pairUrl('${__data.fields.source_node}', '${__data.fields.target_node}'),
  },
  { title: 'Open the source node', url: nodeUrl('${__data.fields.source_node}') },
  { title: 'Open the target node', url: nodeUrl('${__data.fields.target_node}') },
];
const SMALL = 'path=~"$path", protocol=~"$protocol"';

export function overview(): Dashboard {
  const d = dashboard({
    uid: UIDS.overview,
    title: 'podmesh / Overview',
    description:
      'Pod-to-pod loss and latency between every pair of nodes, the worst pairs, active findings and agent coverage.',
    variables: [...pairNodeVariables(), ...pathProtocolVariables()],
  });

  d.withRow(new RowBuilder('State'))
    .withPanel(
      findingsStat({
        title: 'Active findings',
        description:
          'Findings the controller’s triage holds now (podmesh_finding_active). 0 when the mesh is healthy.',
      }),
    )
    .withPanel(
      stat({
        title: 'Nodes missing an agent',
        description:
          'Node and agent-kind combinations without a Ready agent (podmesh_node_coverage == 0), as the controller sees them.',
        queries: [{ expr: 'count(podmesh_node_coverage == 0) or vector(0)' }],
        steps: [
          [null, 'green'],
          [1, 'red'],
        ],
      }),
    )
    .withPanel(
      stat({
        title: 'Agents scraped',
        description:
          'Agents Prometheus scrapes, by network (pod-network and hostNetwork agents), counted from podmesh_peers.',
        queries: [{ expr: 'count by (network) (podmesh_peers)', legend: '{{network}}' }],
      }),
    )
    .withPanel(
      stat({
        title: 'Agents by controller state',
        description:
          'Agents the controller pulled in its last round, by state (ok, unreachable, timeout, http-error, invalid).',
        queries: [{ expr: 'sum by (state) (podmesh_controller_agents)', legend: '{{state}}' }],
      }),
    );

  d.withRow(new RowBuilder('Matrix'))
    .withPanel(
      matrix({
        title: 'Loss: source (rows) × target (columns)',
        description:
          'Worst share of probes lost over the sliding window, over the selected paths, protocols and sizes (max of podmesh_pair_loss_ratio). Click a cell for the pair.',
        queries: [
          {
            expr: `max by (source_node, target_node) (podmesh_pair_loss_ratio{${PAIR}})`,
          },
        ],
        row: 'source_node',
        column: 'target_node',
        rowTitle: 'source',
        unit: 'percentunit',
        steps: LOSS_STEPS,
        link: pairUrl,
        rowLink: nodeUrl,
      }),
    )
    .withPanel(
      matrix({
        title: 'Median RTT, last 5 minutes: source (rows) × target (columns)',
        description:
          'Median round trip of answered small probes over the last 5 minutes, the selected paths and protocols pooled (histogram_quantile over podmesh_pair_round_trip_seconds). Green under 5 ms, red from 50 ms (PodmeshPairLatencyHigh’s threshold). Click a cell for the pair, a row header for the node.',
        queries: [
          {
            expr: pairQuantile(
              0.5,
              'source_node, target_node',
              `source_node=~"$source_node", target_node=~"$target_node", ${SMALL}`,
              '5m',
            ),
          },
        ],
        row: 'source_node',
        column: 'target_node',
        rowTitle: 'source',
        unit: 's',
        steps: RTT_STEPS,
        link: pairUrl,
        rowLink: nodeUrl,
      }),
    );

  d.withRow(new RowBuilder('Worst pairs'))
    .withPanel(
      table({
        title: 'Worst pairs by loss',
        description:
          'The 10 pairs (per path, protocol and size) with the highest loss over the sliding window.',
        queries: [{ expr: `topk(10, max by (${PAIR_LABELS}) (podmesh_pair_loss_ratio{${PAIR}}))` }],
        unit: 'percentunit',
        steps: LOSS_STEPS,
        colored: true,
        links: worstPairLinks,
        transformations: worstFirst('loss'),
      }),
    )
    .withPanel(
      table({
        title: 'Worst pairs by p99 RTT over the time range',
        description:
          'The 10 pairs (per path and protocol) with the highest 99th-percentile round trip of answered small probes over the whole time range picked above (histogram_quantile over podmesh_pair_round_trip_seconds).',
        queries: [
          {
            expr: `topk(10, ${pairQuantile(
              0.99,
              'source_node, target_node, path, protocol',
              `source_node=~"$source_node", target_node=~"$target_node", ${SMALL}`,
              '$__range',
            )})`,
          },
        ],
        unit: 's',
        links: worstPairLinks,
        transformations: worstFirst('p99 RTT'),
      }),
    );

  d.withRow(new RowBuilder('Findings and coverage'))
    .withPanel(
      findingsTable({
        title: 'Active findings',
        description:
          'What the controller’s triage concluded (see docs/triage.md). A finding’s series disappears when it clears, so an empty table means nothing is wrong.',
        noValue: 'No active findings',
      }),
    )
    .withPanel(
      table({
        title: 'Agent coverage',
        description:
          '1 if the node has a Ready agent of this kind (pod network or host), else 0 with the reason (podmesh_node_coverage).',
        queries: [{ expr: 'max by (node, network, reason) (podmesh_node_coverage)' }],
        steps: [
          [null, 'red'],
          [1, 'green'],
        ],
        colored: true,
        links: [{ title: 'Open this node', url: nodeUrl('${__data.fields.node}') }],
        transformations: [
          { id: 'sortBy', options: { sort: [{ field: 'Value' }] } },
          { id: 'organize', options: { renameByName: { Value: 'covered' } } },
        ],
      }),
    );

  d.withRow(new RowBuilder('Over time'))
    .withPanel(
      timeseries({
        title: 'Loss by source node',
        description:
          'Worst loss over the sliding window among each source node’s pairs (podmesh_pair_loss_ratio).',
        queries: [
          {
            expr: `max by (source_node) (podmesh_pair_loss_ratio{${PAIR}})`,
            legend: '{{source_node}}',
          },
        ],
        unit: 'percentunit',
        min: 0,
      }),
    )
    .withPanel(
      timeseries({
        title: 'RTT p50 and p99 by zone pair',
        description:
          'Round trips of answered small probes between zones (source zone → target zone), every pair of the selected paths and protocols pooled (podmesh_pair_round_trip_seconds, zones from podmesh_agent_info). A zone pair slower than the others points at the link between two zones.',
        queries: [
          {
            expr: zonePairQuantile(0.5, SMALL, '$__rate_interval'),
            legend: 'p50 {{source_zone}} → {{target_zone}}',
          },
          {
            expr: zonePairQuantile(0.99, SMALL, '$__rate_interval'),
            legend: 'p99 {{source_zone}} → {{target_zone}}',
          },
        ],
        unit: 's',
        min: 0,
      }),
    )
    .withPanel(
      new HeatmapBuilder()
        .title('RTT distribution')
        .description(
          'Round-trip times of answered probes from the selected source nodes over time (podmesh_rtt_seconds histogram buckets).',
        )
        .datasource(DS)
        .calculate(false)
        .span(12)
        .height(8)
        .yAxis(new YAxisConfigBuilder().unit('s'))
        .withTarget(
          new DataqueryBuilder()
            .datasource(DS)
            .refId('A')
            .range()
            .format(PromQueryFormat.Heatmap)
            .legendFormat('{{le}}')
            .expr(
              withMatcher(
                'sum by (le) (increase(podmesh_rtt_seconds_bucket{source_node=~"$source_node", path=~"$path", protocol=~"$protocol"}[$__rate_interval]))',
                CLUSTER_MATCHER,
              ),
            ),
        ),
    );

  return finish(d, [findingsAnnotation(), changesAnnotation()]);
}
