// podmesh-node: drill-down for one node, both ways. Loss and round trips toward it (every
// source's probes to its agents, pooled: what the rest of the cluster sees of it) and from it
// (its own agents' probes), its peers one by one with links to each pair, and the findings about
// it, listed and as annotations. The overview's row headers, worst-pair and coverage tables
// open it with the node, data source, cluster and time range carried.

import { RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import {
  LOSS_STEPS,
  RTT_STEPS,
  UIDS,
  dashboard,
  changesAnnotation,
  findingsAnnotation,
  findingsStat,
  findingsTable,
  finish,
  labelVariable,
  pairUrl,
  pathProtocolVariables,
  stat,
  table,
  timeseries,
  worstFirst,
} from './common.ts';
import { pairQuantile } from './rtt.ts';

const FILTER = 'path=~"$path", protocol=~"$protocol"';
const TOWARD = `target_node=~"$node", ${FILTER}`;
const FROM = `source_node=~"$node", ${FILTER}`;
/** Findings about the node itself, a pair it is in, or one of its networks. */
const SUBJECT = '(.*->)?$node((/|<?->).*)?';

export function node(): Dashboard {
  const d = dashboard({
    uid: UIDS.node,
    title: 'podmesh / Node',
    description:
      'One node, both ways: loss and round trips toward it (the rest of the cluster’s view) and from it, its peers, and the findings about it.',
    variables: [
      labelVariable({
        name: 'node',
        label: 'Node',
        metric: 'podmesh_node_coverage',
        multi: false,
      }),
      ...pathProtocolVariables(),
    ],
  });

  d.withRow(new RowBuilder('Now'))
    .withPanel(
      findingsStat({
        title: 'Findings about this node',
        description:
          'Open findings of the controller’s triage whose subject is this node, one of its networks or a pair it is in (podmesh_finding_active).',
        subject: SUBJECT,
      }),
    )
    .withPanel(
      stat({
        title: 'Worst loss toward it',
        description:
          'Highest share of probes lost over the sliding window among every source’s series toward this node (podmesh_pair_loss_ratio).',
        queries: [{ expr: `max(podmesh_pair_loss_ratio{${TOWARD}})` }],
        unit: 'percentunit',
        steps: LOSS_STEPS,
      }),
    )
    .withPanel(
      stat({
        title: 'p99 RTT toward it, last 5 minutes',
        description:
          'The 99th percentile of the round trips of every source’s answered small probes to this node, pooled (podmesh_pair_round_trip_seconds).',
        queries: [{ expr: pairQuantile(0.99, '', TOWARD, '5m') }],
        unit: 's',
        steps: RTT_STEPS,
      }),
    )
    .withPanel(
      stat({
        title: 'p99 RTT from it, last 5 minutes',
        description:
          'The 99th percentile of the round trips of this node’s agents’ answered small probes to their peers, pooled (podmesh_pair_round_trip_seconds).',
        queries: [{ expr: pairQuantile(0.99, '', FROM, '5m') }],
        unit: 's',
        steps: RTT_STEPS,
      }),
    );

  d.withRow(new RowBuilder('Toward this node'))
    .withPanel(
      timeseries({
        title: 'Loss toward it, by source node',
        description:
          'Worst share of probes lost over the sliding window from each source node to this node (podmesh_pair_loss_ratio). Every source at once: the node; one source: that pair.',
        queries: [
          {
            expr: `max by (source_node) (podmesh_pair_loss_ratio{${TOWARD}})`,
            legend: '{{source_node}}',
          },
        ],
        unit: 'percentunit',
        min: 0,
      }),
    )
    .withPanel(
      timeseries({
        title: 'RTT toward it, p50 and p99 by protocol',
        description:
          'Round trips of every source’s answered small probes to this node, pooled per protocol (podmesh_pair_round_trip_seconds).',
        queries: [
          {
            expr: pairQuantile(0.5, 'protocol', TOWARD, '$__rate_interval'),
            legend: 'p50 {{protocol}}',
          },
          {
            expr: pairQuantile(0.99, 'protocol', TOWARD, '$__rate_interval'),
            legend: 'p99 {{protocol}}',
          },
        ],
        unit: 's',
        min: 0,
      }),
    );

  d.withRow(new RowBuilder('From this node'))
    .withPanel(
      timeseries({
        title: 'Loss from it, by target node',
        description:
          'Worst share of probes lost over the sliding window from this node’s agents to each target node (podmesh_pair_loss_ratio).',
        queries: [
          {
            expr: `max by (target_node) (podmesh_pair_loss_ratio{${FROM}})`,
            legend: '{{target_node}}',
          },
        ],
        unit: 'percentunit',
        min: 0,
      }),
    )
    .withPanel(
      timeseries({
        title: 'RTT from it, p50 and p99 by protocol',
        description:
          'Round trips of this node’s agents’ answered small probes to their peers, pooled per protocol (podmesh_pair_round_trip_seconds).',
        queries: [
          {
            expr: pairQuantile(0.5, 'protocol', FROM, '$__rate_interval'),
            legend: 'p50 {{protocol}}',
          },
          {
            expr: pairQuantile(0.99, 'protocol', FROM, '$__rate_interval'),
            legend: 'p99 {{protocol}}',
          },
        ],
        unit: 's',
        min: 0,
      }),
    );

  d.withRow(new RowBuilder('Peers and findings'))
    .withPanel(
      table({
        title: 'Peers toward it: p99 RTT over the time range',
        description:
          'Each source node’s 99th-percentile round trip to this node over the whole time range picked above, per path and protocol (podmesh_pair_round_trip_seconds). Click a row for the pair.',
        queries: [
          {
            expr: pairQuantile(
              0.99,
              'source_node, target_node, path, protocol',
              TOWARD,
              '$__range',
            ),
          },
        ],
        unit: 's',
        steps: RTT_STEPS,
        colored: true,
        links: [
          {
            title: 'Open this pair',
            url: pairUrl('${__data.fields.source_node}', '${__data.fields.target_node}'),
          },
        ],
        transformations: worstFirst('p99 RTT'),
      }),
    )
    .withPanel(
      findingsTable({
        title: 'Findings about this node',
        description:
          'What the controller’s triage holds now about this node, its networks or a pair it is in (docs/triage.md). Empty when nothing is wrong.',
        subject: SUBJECT,
        noValue: 'No findings about this node',
      }),
    );

  return finish(d, [findingsAnnotation(SUBJECT), changesAnnotation('$node')]);
}
