// podmesh-dns: cluster DNS as every agent sees it. Which node can't get answers from which
// server (the Service VIP or one replica), how long lookups take, the rcodes and the answers
// the probe had to throw away.

import { RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import {
  SUCCESS_STEPS,
  UIDS,
  dashboard,
  finish,
  labelVariable,
  matrix,
  table,
  timeseries,
} from './common.ts';

const AGENT = 'source_node=~"$source_node", network=~"$network"';
const SERIES = `${AGENT}, server=~"$server", query=~"$query", transport=~"$transport"`;
// The duration histogram has no server or query label (it would multiply the buckets).
const HIST = `${AGENT}, transport=~"$transport"`;

function latency(q: string, name: string): { expr: string; legend: string } {
  return {
    expr: `histogram_quantile(${q}, sum by (server_kind, transport, le) (rate(podmesh_dns_request_duration_seconds_bucket{${HIST}}[$__rate_interval])))`,
    legend: `${name} {{server_kind}} {{transport}}`,
  };
}

export function dns(): Dashboard {
  const d = dashboard({
    uid: UIDS.dns,
    title: 'podmesh / DNS',
    description:
      'DNS lookups from every agent to the DNS Service VIP and to each DNS replica: answered share, latency, rcodes, discarded answers.',
    variables: [
      labelVariable({
        name: 'source_node',
        label: 'Source node',
        metric: 'podmesh_dns_window_requests',
      }),
      labelVariable({ name: 'network', label: 'Network', metric: 'podmesh_dns_window_requests' }),
      labelVariable({ name: 'server', label: 'Server', metric: 'podmesh_dns_window_requests' }),
      labelVariable({ name: 'query', label: 'Query', metric: 'podmesh_dns_window_requests' }),
      labelVariable({
        name: 'transport',
        label: 'Transport',
        metric: 'podmesh_dns_window_requests',
      }),
    ],
  });

  d.withRow(new RowBuilder('Answered'))
    .withPanel(
      matrix({
        title: 'Answered: node (rows) × server (columns)',
        description:
          'Worst share of lookups answered correctly over the sliding window, over the selected queries and transports (min of podmesh_dns_answered_ratio). Column "service" is the DNS Service VIP; the others are replicas, named by the node they run on.',
        queries: [{ expr: `min by (source_node, server) (podmesh_dns_answered_ratio{${SERIES}})` }],
        row: 'source_node',
        column: 'server',
        rowTitle: 'node',
        unit: 'percentunit',
        steps: SUCCESS_STEPS,
      }),
    )
    .withPanel(
      timeseries({
        title: 'Answered by server and query',
        description:
          'Worst answered share across the selected nodes, per server, query kind and transport (podmesh_dns_answered_ratio).',
        queries: [
          {
            expr: `min by (server, query, transport) (podmesh_dns_answered_ratio{${SERIES}})`,
            legend: '{{server}} {{query}}/{{transport}}',
          },
        ],
        unit: 'percentunit',
        min: 0,
        max: 1,
      }),
    );

  d.withRow(new RowBuilder('Latency and results'))
    .withPanel(
      timeseries({
        title: 'Lookup latency percentiles',
        description:
          'Percentiles of the time of lookups the server responded to, from the podmesh_dns_request_duration_seconds histogram, per server kind (service VIP or replica) and transport. Not split by server or query.',
        queries: [latency('0.5', 'p50'), latency('0.9', 'p90'), latency('0.99', 'p99')],
        unit: 's',
        min: 0,
      }),
    )
    .withPanel(
      timeseries({
        title: 'Results by rcode',
        description:
          'Lookups per second by result: noerror, nodata, nxdomain (answered) and servfail, refused, other-rcode, timeout, unreachable, malformed, error.',
        queries: [
          {
            expr: `sum by (result) (rate(podmesh_dns_requests_total{${SERIES}}[$__rate_interval]))`,
            legend: '{{result}}',
          },
        ],
        unit: 'reqps',
        min: 0,
      }),
    )
    .withPanel(
      table({
        title: 'Results by server over the time range',
        description: 'Lookups per server and result over the dashboard’s time range.',
        queries: [
          {
            expr: `sum by (server, query, transport, result) (increase(podmesh_dns_requests_total{${SERIES}}[$__range]))`,
          },
        ],
        unit: 'short',
        transformations: [
          { id: 'sortBy', options: { sort: [{ field: 'server' }] } },
          { id: 'organize', options: { renameByName: { Value: 'lookups' } } },
        ],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Discarded answers',
        description:
          'Datagrams the DNS probe threw away without ending a lookup: malformed (not a DNS response) or mismatched (wrong id, source or question). A node shows 0 until its first discard.',
        queries: [
          {
            expr: `sum by (source_node, reason) (rate(podmesh_dns_discarded_answers_total{${AGENT}}[$__rate_interval])) or on (source_node) (sum by (source_node) (podmesh_dns_window_requests{${AGENT}}) * 0)`,
            legend: '{{source_node}} {{reason}}',
          },
        ],
        unit: 'pps',
        min: 0,
      }),
    );

  d.withRow(new RowBuilder('Sample size')).withPanel(
    timeseries({
      title: 'Lookups in window',
      description:
        'Lookups completed in the sliding window per server: the sample size behind the answered ratio.',
      queries: [
        {
          expr: `sum by (server) (podmesh_dns_window_requests{${SERIES}})`,
          legend: '{{server}}',
        },
      ],
      unit: 'short',
      min: 0,
      w: 24,
    }),
  );

  return finish(d);
}
