// podmesh-agent-health: whether the agents themselves can be trusted. A starved agent (CPU
// throttling, a busy node) starts probes late and reports latency that isn't the network's;
// this dashboard shows probe rate, lateness, event-loop delay, engine restarts, the reflector,
// discovery freshness, peers and ICMP availability.

import { RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { UIDS, dashboard, finish, labelVariable, table, timeseries } from './common.ts';

const AGENT = 'source_node=~"$source_node", network=~"$network"';
const BY_AGENT = 'source_node, network';
const AGENT_LEGEND = '{{source_node}}/{{network}}';
/** Every agent sets podmesh_peers from its first peer list on, so it anchors "0 so far". */
const ZERO = `sum by (${BY_AGENT}) (podmesh_peers{${AGENT}}) * 0`;

function lateness(q: string, name: string): { expr: string; legend: string } {
  return {
    expr: `histogram_quantile(${q}, sum by (${BY_AGENT}, le) (rate(podmesh_probe_lateness_seconds_bucket{${AGENT}}[$__rate_interval])))`,
    legend: `${name} ${AGENT_LEGEND}`,
  };
}

export function agentHealth(): Dashboard {
  const d = dashboard({
    uid: UIDS.agentHealth,
    title: 'podmesh / Agent health',
    description:
      'The agents’ own health: probe rate and lateness, event-loop delay, engine restarts, reflector, discovery, peers, ICMP.',
    variables: [
      labelVariable({ name: 'source_node', label: 'Node', metric: 'podmesh_peers' }),
      labelVariable({ name: 'network', label: 'Network', metric: 'podmesh_peers' }),
    ],
  });

  d.withRow(new RowBuilder('Probing'))
    .withPanel(
      timeseries({
        title: 'Probes sent per second',
        description:
          'Probes started per second by each source node and protocol (podmesh_probes_sent_total; the pair series carry the path instead of the network).',
        queries: [
          {
            expr: 'sum by (source_node, protocol) (rate(podmesh_probes_sent_total{source_node=~"$source_node"}[$__rate_interval]))',
            legend: '{{source_node}} {{protocol}}',
          },
        ],
        unit: 'pps',
        min: 0,
      }),
    )
    .withPanel(
      timeseries({
        title: 'Late probes (share over the window)',
        description:
          'Share of probes started more than probes.lateMs after their due time (podmesh_probe_late_ratio). High means the agent is too starved for its latency numbers to be trusted.',
        queries: [
          {
            expr: `max by (${BY_AGENT}) (podmesh_probe_late_ratio{${AGENT}})`,
            legend: AGENT_LEGEND,
          },
        ],
        unit: 'percentunit',
        min: 0,
      }),
    )
    .withPanel(
      timeseries({
        title: 'Probe lateness',
        description:
          'How long after its due time each probe actually started: p50 and p99 from the podmesh_probe_lateness_seconds histogram.',
        queries: [lateness('0.5', 'p50'), lateness('0.99', 'p99')],
        unit: 's',
        min: 0,
      }),
    )
    .withPanel(
      timeseries({
        title: 'Event-loop delay p99',
        description:
          'Event-loop delay of the main thread (HTTP, metrics) and of the probe engine thread (podmesh_event_loop_delay_seconds, quantile 0.99).',
        queries: [
          {
            expr: `max by (${BY_AGENT}, thread) (podmesh_event_loop_delay_seconds{quantile="0.99", ${AGENT}})`,
            legend: `${AGENT_LEGEND} {{thread}}`,
          },
        ],
        unit: 's',
        min: 0,
      }),
    );

  d.withRow(new RowBuilder('Restarts and skips'))
    .withPanel(
      timeseries({
        title: 'Engine restarts',
        description:
          'Times the probe engine thread died and was restarted, per interval (podmesh_engine_restarts_total); 0 until the first restart.',
        queries: [
          {
            expr: `sum by (${BY_AGENT}) (increase(podmesh_engine_restarts_total{${AGENT}}[$__rate_interval])) or on (${BY_AGENT}) ${ZERO}`,
            legend: AGENT_LEGEND,
          },
        ],
        unit: 'short',
        min: 0,
      }),
    )
    .withPanel(
      timeseries({
        title: 'Skipped probe runs',
        description:
          'Probe runs skipped because the previous run to the same peer was still in flight (podmesh_probe_skipped_total); 0 until the first skip.',
        queries: [
          {
            expr: `sum by (${BY_AGENT}) (rate(podmesh_probe_skipped_total{${AGENT}}[$__rate_interval])) or on (${BY_AGENT}) ${ZERO}`,
            legend: AGENT_LEGEND,
          },
        ],
        unit: 'ops',
        min: 0,
      }),
    );

  d.withRow(new RowBuilder('Reflector and listener'))
    .withPanel(
      timeseries({
        title: 'Reflector packets by result',
        description:
          'Packets the STAMP reflector received per second, by result: reflected, malformed, auth_failed, loop, rate_limited (podmesh_reflector_packets_total).',
        queries: [
          {
            expr: `sum by (source_node, result) (rate(podmesh_reflector_packets_total{${AGENT}}[$__rate_interval]))`,
            legend: '{{source_node}} {{result}}',
          },
        ],
        unit: 'pps',
        min: 0,
      }),
    )
    .withPanel(
      timeseries({
        title: 'Reflector sessions and TCP accepts',
        description:
          'STAMP sender sessions the reflector keeps state for, and connections per second accepted by the TCP listener peers probe.',
        queries: [
          {
            expr: `sum by (${BY_AGENT}) (podmesh_reflector_sessions{${AGENT}})`,
            legend: `sessions ${AGENT_LEGEND}`,
          },
          {
            expr: `sum by (${BY_AGENT}) (rate(podmesh_tcp_listener_connections_total{${AGENT}}[$__rate_interval]))`,
            legend: `tcp accepts/s ${AGENT_LEGEND}`,
          },
        ],
        unit: 'short',
        min: 0,
      }),
    );

  d.withRow(new RowBuilder('Discovery and peers'))
    .withPanel(
      timeseries({
        title: 'Peers',
        description: 'Peers each agent currently probes (podmesh_peers, bounded by peers.limit).',
        queries: [{ expr: `max by (${BY_AGENT}) (podmesh_peers{${AGENT}})`, legend: AGENT_LEGEND }],
        unit: 'short',
        min: 0,
      }),
    )
    .withPanel(
      timeseries({
        title: 'Discovery sync age',
        description:
          'Seconds since the last list, watch event or bookmark from the API server per watched resource (time() − podmesh_discovery_last_sync_timestamp_seconds). Only agents using Kubernetes discovery report it.',
        queries: [
          {
            expr: `time() - max by (${BY_AGENT}, resource) (podmesh_discovery_last_sync_timestamp_seconds{${AGENT}})`,
            legend: `${AGENT_LEGEND} {{resource}}`,
          },
        ],
        unit: 's',
        min: 0,
      }),
    )
    .withPanel(
      table({
        title: 'ICMP probes',
        description:
          '1 if the agent runs ICMP probes; 0 with the reason (permission, disabled, error) if not (podmesh_icmp_enabled).',
        queries: [{ expr: `max by (${BY_AGENT}, reason) (podmesh_icmp_enabled{${AGENT}})` }],
        steps: [
          [null, 'orange'],
          [1, 'green'],
        ],
        colored: true,
        transformations: [{ id: 'organize', options: { renameByName: { Value: 'enabled' } } }],
      }),
    )
    .withPanel(
      table({
        title: 'Versions',
        description: 'podmesh and Node.js versions running, with how many processes run each.',
        queries: [{ expr: 'count by (version, node_version) (podmesh_build_info)' }],
        transformations: [{ id: 'organize', options: { renameByName: { Value: 'processes' } } }],
      }),
    );

  return finish(d);
}
