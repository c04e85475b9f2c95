// podmesh-ports: the configured port targets (ports.targets). Whether each source node reaches
// each target the way it should: open targets accept, closed ones (a NetworkPolicy that has to
// hold) refuse or time out; connect results and connect time. And the API server checks (the
// `kubernetes` VIP and each endpoint directly): reached from each node, TLS handshake time.

import { RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import {
  SUCCESS_STEPS,
  UIDS,
  dashboard,
  finish,
  labelVariable,
  matrix,
  timeseries,
} from './common.ts';

const SEL = 'source_node=~"$source_node", network=~"$network", target=~"$target"';
/** The API server checks carry no `target` label (server_kind and server instead). */
const API_SEL = 'source_node=~"$source_node", network=~"$network"';

export function ports(): Dashboard {
  const d = dashboard({
    uid: UIDS.ports,
    title: 'podmesh / Ports',
    description:
      'TCP connects from every agent to the configured port targets: open ratio against what is expected, results and connect time.',
    variables: [
      labelVariable({
        name: 'source_node',
        label: 'Source node',
        metric: 'podmesh_port_window_checks',
      }),
      labelVariable({ name: 'network', label: 'Network', metric: 'podmesh_port_window_checks' }),
      labelVariable({ name: 'target', label: 'Port target', metric: 'podmesh_port_window_checks' }),
    ],
  });

  d.withRow(new RowBuilder('As expected?'))
    .withPanel(
      matrix({
        title: 'As expected: source node (rows) × port target (columns)',
        description:
          'Share of connects over the sliding window that behaved as configured: accepted for expected="open" targets, not accepted for expected="closed" ones. 1 is healthy; anything lower is a problem (from podmesh_port_open_ratio).',
        queries: [
          {
            expr: `min by (source_node, target) (podmesh_port_open_ratio{expected="open", ${SEL}} or (1 - podmesh_port_open_ratio{expected="closed", ${SEL}}))`,
          },
        ],
        row: 'source_node',
        column: 'target',
        rowTitle: 'source',
        unit: 'percentunit',
        steps: SUCCESS_STEPS,
      }),
    )
    .withPanel(
      timeseries({
        title: 'Open ratio by source node',
        description:
          'Share of connects accepted over the sliding window (podmesh_port_open_ratio). For expected="open" anything below 1 is a problem; for expected="closed" anything above 0 is.',
        queries: [
          {
            expr: `max by (source_node, target, expected) (podmesh_port_open_ratio{${SEL}})`,
            legend: '{{source_node}} → {{target}} (expected {{expected}})',
          },
        ],
        unit: 'percentunit',
        min: 0,
        max: 1,
      }),
    );

  d.withRow(new RowBuilder('Connects'))
    .withPanel(
      timeseries({
        title: 'Checks by result',
        description:
          'Connects per second by target and result: open, refused, timeout, unreachable, error (podmesh_port_checks_total).',
        queries: [
          {
            expr: `sum by (target, result) (rate(podmesh_port_checks_total{${SEL}}[$__rate_interval]))`,
            legend: '{{target}} {{result}}',
          },
        ],
        unit: 'reqps',
        min: 0,
      }),
    )
    .withPanel(
      timeseries({
        title: 'Connect time',
        description:
          'Median and 99th percentile connect time of accepted connects per target (podmesh_port_connect_duration_seconds histogram). Targets that never accept have no line.',
        queries: [
          {
            expr: `histogram_quantile(0.5, sum by (target, le) (rate(podmesh_port_connect_duration_seconds_bucket{${SEL}}[$__rate_interval])))`,
            legend: 'p50 {{target}}',
          },
          {
            expr: `histogram_quantile(0.99, sum by (target, le) (rate(podmesh_port_connect_duration_seconds_bucket{${SEL}}[$__rate_interval])))`,
            legend: 'p99 {{target}}',
          },
        ],
        unit: 's',
        min: 0,
      }),
    )
    .withPanel(
      timeseries({
        title: 'Checks in window',
        description:
          'Connects completed in the sliding window per source node and target: the sample size behind the open ratio.',
        queries: [
          {
            expr: `sum by (source_node, target) (podmesh_port_window_checks{${SEL}})`,
            legend: '{{source_node}} → {{target}}',
          },
        ],
        unit: 'short',
        min: 0,
        w: 24,
      }),
    );

  d.withRow(new RowBuilder('API server'))
    .withPanel(
      matrix({
        title: 'API server reached: source node (rows) × way (columns)',
        description:
          'Share of API server checks (TCP connect, TLS handshake, anonymous /readyz) over the sliding window that reached it, the worst agent of each node: through the `kubernetes` VIP (service) and the endpoints directly (endpoint, the worst endpoint). The VIP alone failing is the Service translation on that node; the endpoints too, the path to the control plane (podmesh_apiserver_ok_ratio).',
        queries: [
          {
            expr: `min by (source_node, server_kind) (podmesh_apiserver_ok_ratio{${API_SEL}})`,
          },
        ],
        row: 'source_node',
        column: 'server_kind',
        rowTitle: 'source',
        unit: 'percentunit',
        steps: SUCCESS_STEPS,
      }),
    )
    .withPanel(
      timeseries({
        title: 'API server TLS handshake time',
        description:
          'Median and 99th percentile TLS handshake time (after the connect) of API server checks, through the VIP and to the endpoints directly (podmesh_apiserver_tls_handshake_duration_seconds histogram).',
        queries: [
          {
            expr: `histogram_quantile(0.5, sum by (server_kind, le) (rate(podmesh_apiserver_tls_handshake_duration_seconds_bucket{${API_SEL}}[$__rate_interval])))`,
            legend: 'p50 {{server_kind}}',
          },
          {
            expr: `histogram_quantile(0.99, sum by (server_kind, le) (rate(podmesh_apiserver_tls_handshake_duration_seconds_bucket{${API_SEL}}[$__rate_interval])))`,
            legend: 'p99 {{server_kind}}',
          },
        ],
        unit: 's',
        min: 0,
      }),
    );

  return finish(d);
}
