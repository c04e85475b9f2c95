// podmesh-pair: drill-down for one source → target pair. Loss and RTT per path, protocol and
// size, the way back (target → source), STAMP's forward/reverse split and why probes failed;
// findings about either node as annotations, and links to both nodes' drill-downs.

import {
  DashboardLinkBuilder,
  DashboardLinkType,
  RowBuilder,
  type Dashboard,
} from '@grafana/grafana-foundation-sdk/dashboard';
import {
  LOSS_STEPS,
  RTT_STEPS,
  UIDS,
  dashboard,
  changesAnnotation,
  findingsAnnotation,
  finish,
  labelVariable,
  nodeUrl,
  pairNodeVariables,
  pathProtocolVariables,
  stat,
  timeseries,
} from './common.ts';
import { pairQuantile } from './rtt.ts';

const FILTER = 'path=~"$path", protocol=~"$protocol", size=~"$size"';
const PAIR = `source_node=~"$source_node", target_node=~"$target_node", ${FILTER}`;
const BACK = `source_node=~"$target_node", target_node=~"$source_node", ${FILTER}`;
const UDP = `source_node=~"$source_node", target_node=~"$target_node", path=~"$path", protocol="udp", size=~"$size"`;
const SERIES = 'path, protocol, size';

/**
 * Probes lost per second by `by`. The lost counter's series only exist after the first loss,
 * so where probes were sent but none lost this falls back to 0 (from the sent counter)
 * instead of showing no data.
 */
function lostRate(by: string, sel: string): string {
  const rate = (metric: string): string =>
    `sum by (${by}) (rate(${metric}{${sel}}[$__rate_interval]))`;
  return `${rate('podmesh_probes_lost_total')} or on (${by}) ${rate('podmesh_probes_sent_total')} * 0`;
}
const SERIES_LEGEND = '{{protocol}} {{size}} {{path}}';
/** The pair RTT histogram holds small probes only: no size filter. */
const HIST =
  'source_node=~"$source_node", target_node=~"$target_node", path=~"$path", protocol=~"$protocol"';

/** A top-bar link to one end's node drill-down, carrying data source, cluster and time. */
function nodeLink(end: 'source_node' | 'target_node'): DashboardLinkBuilder {
  return new DashboardLinkBuilder(`Node $${end}`)
    .type(DashboardLinkType.Link)
    .url(nodeUrl(`\${${end}}`))
    .asDropdown(false)
    .keepTime(false)
    .includeVars(false)
    .targetBlank(false)
    .icon('dashboard')
    .tooltip(`The node drill-down for $${end}`);
}

export function pair(): Dashboard {
  const d = dashboard({
    uid: UIDS.pair,
    title: 'podmesh / Pair',
    description:
      'One source → target pair: loss, RTT quantiles, the reverse direction, STAMP forward/reverse loss and failure reasons.',
    variables: [
      ...pairNodeVariables(false),
      ...pathProtocolVariables(),
      labelVariable({ name: 'size', label: 'Size', metric: 'podmesh_pair_window_probes' }),
    ],
  });

  d.withRow(new RowBuilder('Now'))
    .withPanel(
      stat({
        title: 'Loss (worst series)',
        description: 'Highest loss over the sliding window among the selected series.',
        queries: [{ expr: `max(podmesh_pair_loss_ratio{${PAIR}})` }],
        unit: 'percentunit',
        steps: LOSS_STEPS,
      }),
    )
    .withPanel(
      stat({
        title: 'Median RTT, last 5 minutes (slowest series)',
        description:
          'Highest median round trip of answered small probes over the last 5 minutes among the selected paths and protocols (podmesh_pair_round_trip_seconds). Red from 50 ms, PodmeshPairLatencyHigh’s threshold.',
        queries: [{ expr: `max(${pairQuantile(0.5, 'path, protocol', HIST, '5m')})` }],
        unit: 's',
        steps: RTT_STEPS,
      }),
    )
    .withPanel(
      stat({
        title: 'Probes in window',
        description:
          'Probes completed in the sliding window, summed over the selected series: the sample size behind the loss ratio.',
        queries: [{ expr: `sum(podmesh_pair_window_probes{${PAIR}})` }],
        unit: 'short',
      }),
    )
    .withPanel(
      stat({
        title: 'Since last answer',
        description:
          'Time since the most recent answered probe on the selected series (the freshest series counts).',
        queries: [{ expr: `time() - max(podmesh_pair_last_success_timestamp_seconds{${PAIR}})` }],
        unit: 's',
        steps: [
          [null, 'green'],
          [10, 'yellow'],
          [60, 'red'],
        ],
      }),
    );

  d.withRow(new RowBuilder('Loss'))
    .withPanel(
      timeseries({
        title: 'Loss: source → target',
        description: 'Share of probes lost over the sliding window (podmesh_pair_loss_ratio).',
        queries: [
          {
            expr: `max by (${SERIES}) (podmesh_pair_loss_ratio{${PAIR}})`,
            legend: SERIES_LEGEND,
          },
        ],
        unit: 'percentunit',
        min: 0,
      }),
    )
    .withPanel(
      timeseries({
        title: 'Loss: target → source (the way back)',
        description:
          'The same pair measured from the other end. Loss in one direction only points at something asymmetric (a policy, a route, conntrack).',
        queries: [
          {
            expr: `max by (${SERIES}) (podmesh_pair_loss_ratio{${BACK}})`,
            legend: SERIES_LEGEND,
          },
        ],
        unit: 'percentunit',
        min: 0,
      }),
    )
    .withPanel(
      timeseries({
        title: 'STAMP loss: forward vs reverse',
        description:
          'UDP (STAMP) probes lost per second: all of them, and split by the reflector’s own sequence numbers into forward (lost on the way to the target) and reverse (lost on the way back). The split series appear once a loss is attributed.',
        queries: [
          {
            expr: lostRate('size', UDP),
            legend: 'all lost {{size}}',
          },
          {
            expr: `sum by (direction, size) (rate(podmesh_stamp_lost_total{${PAIR}}[$__rate_interval]))`,
            legend: '{{direction}} {{size}}',
          },
        ],
        unit: 'pps',
        min: 0,
      }),
    )
    .withPanel(
      timeseries({
        title: 'Failures by reason',
        description:
          'Probes lost per second, in total and by closed reason (timeout, refused, unreachable, permission, malformed, error). The per-reason series appear with the first failure.',
        queries: [
          {
            expr: lostRate('protocol', PAIR),
            legend: 'all lost {{protocol}}',
          },
          {
            expr: `sum by (protocol, reason) (rate(podmesh_probe_failures_total{${PAIR}}[$__rate_interval]))`,
            legend: '{{reason}} {{protocol}}',
          },
        ],
        unit: 'pps',
        min: 0,
      }),
    );

  d.withRow(new RowBuilder('Latency'))
    .withPanel(
      timeseries({
        title: 'RTT p50, p90, p99',
        description:
          'Round-trip quantiles of answered small probes per path and protocol, from the podmesh_pair_round_trip_seconds histogram over each point’s rate interval; STAMP excludes the reflector’s dwell time. Within one bucket (a factor of 2-2.5) of the true quantile.',
        queries: (
          [
            [0.5, 'p50'],
            [0.9, 'p90'],
            [0.99, 'p99'],
          ] as const
        ).map(([q, name]) => ({
          expr: pairQuantile(q, 'path, protocol', HIST, '$__rate_interval'),
          legend: `${name} {{protocol}} {{path}}`,
        })),
        unit: 's',
        min: 0,
      }),
    )
    .withPanel(
      timeseries({
        title: 'Probes sent per second',
        description:
          'Probe rate on each series (podmesh_probes_sent_total): a drop means the agent stopped probing the pair.',
        queries: [
          {
            expr: `sum by (${SERIES}) (rate(podmesh_probes_sent_total{${PAIR}}[$__rate_interval]))`,
            legend: SERIES_LEGEND,
          },
        ],
        unit: 'pps',
        min: 0,
      }),
    );

  d.link(nodeLink('source_node')).link(nodeLink('target_node'));
  return finish(d, [
    findingsAnnotation('(.*->)?($source_node|$target_node)((/|<?->).*)?'),
    changesAnnotation('$source_node|$target_node'),
  ]);
}
