// The one catalogue of every metric podmesh exports: name, type, help, labels, buckets.
// Code creates metrics only through createMetrics(), docs/metrics.md is generated from this
// list (`npm run docs:metrics`), and dashboards and alert rules may use only names found here.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENESS_BUCKETS } from '../core/lateness.ts';
import { SlotHistogram } from './slot-histogram.ts';

/** The closed set of label names. Node names only: never Pod IPs or Pod names. */
export const LABEL_NAMES = [
  'source_node',
  'target_node',
  'network',
  'path',
  'protocol',
  'size',
  'scope',
  'direction',
  'quantile',
  'reason',
  'result',
  'thread',
  'version',
  'node_version',
  'node',
  'state',
  'resource',
  'server_kind',
  'server',
  'query',
  'transport',
  'target',
  'expected',
  'kind',
  'subject',
  'severity',
  'source',
  'zone',
] as const;
export type LabelName = (typeof LABEL_NAMES)[number];

const PAIR = [
  'source_node',
  'target_node',
  'path',
  'protocol',
  'size',
] as const satisfies readonly LabelName[];

/** RTT buckets from 50 µs: loopback and same-node paths live well under a millisecond. */
export const RTT_BUCKETS = [
  0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005,
  0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];
/**
 * Per-pair RTT buckets (podmesh_pair_round_trip_seconds), coarser than RTT_BUCKETS because there
 * is one histogram per core peer and probe kind (96 at the default 32 peers): each bucket costs
 * a series per pair. 1-2.5-5 per decade where pod networks live, from a same-node veth hop
 * (20-60 µs) through a zone (100-500 µs) and across zones (0.5-2 ms) to a struggling overlay or
 * another region (5-50 ms). 0.05 is PairLatencyHigh's threshold, so the share of round trips
 * above it is exact, not interpolated; past 100 ms a pod network is broken and only "how
 * broken" remains: 0.5 s, then +Inf up to probes.timeoutMs (1 s), past which a probe is lost.
 * histogram_quantile is then within one bucket (a factor of 2-2.5) of the true quantile; with
 * RTT_BUCKETS' 21 a pair would cost 24 series instead of 15 (2,304 series at the default 32
 * peers against 1,440). Only small probes: an mtu probe's round trip is the small one's plus
 * serialisation (~1 µs at 10 Gb/s), and what it tells (MTU black holes) is in the loss series.
 */
export const PAIR_RTT_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];
/** DNS lookup time: from a loopback answer (~100 µs) to a timeout (seconds). */
export const DNS_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

const DNS_SERIES = [
  'source_node',
  'network',
  'server_kind',
  'server',
  'query',
  'transport',
] as const satisfies readonly LabelName[];

const APISERVER_SERIES = [
  'source_node',
  'network',
  'server_kind',
  'server',
] as const satisfies readonly LabelName[];

const PORT_SERIES = [
  'source_node',
  'network',
  'target',
  'expected',
] as const satisfies readonly LabelName[];

interface Def<T extends 'counter' | 'gauge' | 'histogram', L extends readonly LabelName[]> {
  readonly name: string;
  readonly type: T;
  readonly help: string;
  readonly labels: L;
  readonly buckets?: readonly number[];
  /**
   * A histogram observed on the probe hot path with a child per pair: kept in slots
   * (slot-histogram.ts, ~30 ns an observation) instead of prom-client's Histogram (~0.8 µs).
   */
  readonly slots?: true;
}

function def<T extends 'counter' | 'gauge' | 'histogram', const L extends readonly LabelName[]>(
  d: Def<T, L>,
): Def<T, L> {
  return d;
}

/** A histogram kept in slots (`slots: true`), typed so createMetrics' result says so. */
function slotDef<const L extends readonly LabelName[]>(
  d: Def<'histogram', L> & { readonly slots: true },
): Def<'histogram', L> & { readonly slots: true } {
  return d;
}

export const CATALOGUE = {
  probesSent: def({
    name: 'podmesh_probes_sent_total',
    type: 'counter',
    labels: PAIR,
    help: 'Probes sent to a peer agent (each completes as answered or lost).',
  }),
  probesLost: def({
    name: 'podmesh_probes_lost_total',
    type: 'counter',
    labels: PAIR,
    help: 'Probes that got no valid answer in time, whatever the reason.',
  }),
  probeFailures: def({
    name: 'podmesh_probe_failures_total',
    type: 'counter',
    labels: [...PAIR, 'reason'],
    help: 'Failed probes by closed reason: timeout, refused, unreachable, permission, malformed, error.',
  }),
  stampLost: def({
    name: 'podmesh_stamp_lost_total',
    type: 'counter',
    labels: [...PAIR, 'direction'],
    help: "STAMP probes lost, split by direction from the reflector's own sequence numbers: forward (to the peer) or reverse (back).",
  }),
  stampDuplicates: def({
    name: 'podmesh_stamp_duplicates_total',
    type: 'counter',
    labels: PAIR,
    help: 'Duplicate STAMP answers received.',
  }),
  stampReordered: def({
    name: 'podmesh_stamp_reordered_total',
    type: 'counter',
    labels: PAIR,
    help: 'STAMP answers that arrived after the answer to a later probe.',
  }),
  pairLossRatio: def({
    name: 'podmesh_pair_loss_ratio',
    type: 'gauge',
    labels: PAIR,
    help: 'Share of probes lost over the sliding window (window.seconds).',
  }),
  pairWindowProbes: def({
    name: 'podmesh_pair_window_probes',
    type: 'gauge',
    labels: PAIR,
    help: 'Probes completed in the sliding window: the sample size behind the loss ratio.',
  }),
  windowExpected: def({
    name: 'podmesh_window_expected_probes',
    type: 'gauge',
    labels: ['source_node', 'network', 'kind'],
    help: "How many completed probes one series' sliding window holds when every run is on time: window.seconds / the interval, by kind: pair (probes.intervalMs; per pair, protocol and size), dns (dns.intervalMs; per server, query and transport), port (ports.intervalMs; per target). The alert rules derive the sample size a window needs before it counts from it.",
  }),
  pairRtt: def({
    name: 'podmesh_pair_rtt_seconds',
    type: 'gauge',
    labels: [...PAIR, 'quantile'],
    help: "Deprecated (removed in the release after next; use podmesh_pair_round_trip_seconds, which aggregates): round-trip time quantiles (0.5, 0.9, 0.99) of answered probes over the sliding window; STAMP excludes the reflector's dwell time.",
  }),
  pairRttHistogram: slotDef({
    name: 'podmesh_pair_round_trip_seconds',
    type: 'histogram',
    labels: PAIR,
    buckets: PAIR_RTT_BUCKETS,
    slots: true,
    help: "Round-trip time of answered small probes to each core peer (mtu probes' round trips are the small ones' plus serialisation: they are watched for loss), per protocol and path; STAMP excludes the reflector's dwell time. Counts since the agent started, so histogram_quantile() over rate() of the buckets gives any quantile over any group of pairs (a node, a zone pair) and any time range.",
  }),
  pairLastSuccess: def({
    name: 'podmesh_pair_last_success_timestamp_seconds',
    type: 'gauge',
    labels: PAIR,
    help: 'Unix time of the last answered probe to the peer.',
  }),
  rtt: def({
    name: 'podmesh_rtt_seconds',
    type: 'histogram',
    labels: ['source_node', 'path', 'protocol', 'size', 'scope'],
    buckets: RTT_BUCKETS,
    help: 'Round-trip time of answered probes from this agent, by scope (same-node, same-zone, cross-zone).',
  }),

  dnsRequests: def({
    name: 'podmesh_dns_requests_total',
    type: 'counter',
    labels: [...DNS_SERIES, 'result'],
    help: 'DNS lookups by server kind (service: the resolv.conf nameserver, i.e. the DNS Service VIP; replica: one DNS Pod queried directly), server, query kind, transport and result (noerror, nodata, nxdomain, servfail, refused, other-rcode, timeout, unreachable, malformed, error). A short-name lookup that walks the search list counts once.',
  }),
  dnsDuration: def({
    name: 'podmesh_dns_request_duration_seconds',
    type: 'histogram',
    labels: ['source_node', 'network', 'server_kind', 'transport'],
    buckets: DNS_BUCKETS,
    help: 'Time of DNS lookups the server responded to (any rcode; a short name includes every search-list step), by server kind and transport.',
  }),
  dnsAnsweredRatio: def({
    name: 'podmesh_dns_answered_ratio',
    type: 'gauge',
    labels: DNS_SERIES,
    help: 'Share of DNS lookups over the sliding window that the server answered correctly (noerror, nodata or nxdomain); timeouts, servfail, refused, malformed answers lower it.',
  }),
  dnsWindowRequests: def({
    name: 'podmesh_dns_window_requests',
    type: 'gauge',
    labels: DNS_SERIES,
    help: 'DNS lookups completed in the sliding window: the sample size behind podmesh_dns_answered_ratio.',
  }),
  dnsDiscarded: def({
    name: 'podmesh_dns_discarded_answers_total',
    type: 'counter',
    labels: ['source_node', 'network', 'reason'],
    help: 'Datagrams the DNS probe threw away without ending a lookup, by reason: malformed (not a DNS response) or mismatched (a response for no query in flight: wrong id, source or question).',
  }),

  portChecks: def({
    name: 'podmesh_port_checks_total',
    type: 'counter',
    labels: [...PORT_SERIES, 'result'],
    help: 'TCP connects to a configured port target (ports.targets), by result: open, refused, timeout, unreachable, error. expected says whether the target should accept (open) or must not (closed, e.g. a NetworkPolicy that has to hold).',
  }),
  portOpenRatio: def({
    name: 'podmesh_port_open_ratio',
    type: 'gauge',
    labels: PORT_SERIES,
    help: 'Share of connects to the port target over the sliding window that were accepted. For expected="open" anything below 1 is a problem; for expected="closed" anything above 0 is.',
  }),
  portWindowChecks: def({
    name: 'podmesh_port_window_checks',
    type: 'gauge',
    labels: PORT_SERIES,
    help: 'Connects to the port target completed in the sliding window: the sample size behind podmesh_port_open_ratio.',
  }),
  portConnectDuration: def({
    name: 'podmesh_port_connect_duration_seconds',
    type: 'histogram',
    labels: ['source_node', 'network', 'target'],
    buckets: RTT_BUCKETS,
    help: 'Connect time of accepted connects to a port target.',
  }),

  apiserverChecks: def({
    name: 'podmesh_apiserver_checks_total',
    type: 'counter',
    labels: [...APISERVER_SERIES, 'result'],
    help: 'Checks of the Kubernetes API server (apiserver.*): a TCP connect, a TLS handshake and, with apiserver.readyz, an anonymous GET /readyz, to the `kubernetes` Service VIP (server_kind service) and each endpoint directly (endpoint), by result: ok (connected and handshaken; any /readyz status, 401/403 included), refused, timeout, unreachable, tls-error, error.',
  }),
  apiserverOkRatio: def({
    name: 'podmesh_apiserver_ok_ratio',
    type: 'gauge',
    labels: APISERVER_SERIES,
    help: 'Share of API server checks over the sliding window that reached it (result ok). Anything below 1 from some nodes and not others: triage names them (apiserver-unreachable).',
  }),
  apiserverWindowChecks: def({
    name: 'podmesh_apiserver_window_checks',
    type: 'gauge',
    labels: APISERVER_SERIES,
    help: 'API server checks completed in the sliding window: the sample size behind podmesh_apiserver_ok_ratio.',
  }),
  apiserverConnectDuration: def({
    name: 'podmesh_apiserver_connect_duration_seconds',
    type: 'histogram',
    labels: ['source_node', 'network', 'server_kind'],
    buckets: DNS_BUCKETS,
    help: 'TCP connect time of API server checks whose connect completed, by server kind (service: through the VIP; endpoint: directly).',
  }),
  apiserverTlsDuration: def({
    name: 'podmesh_apiserver_tls_handshake_duration_seconds',
    type: 'histogram',
    labels: ['source_node', 'network', 'server_kind'],
    buckets: DNS_BUCKETS,
    help: "TLS handshake time (after the connect) of API server checks whose handshake completed, by server kind. The server's certificate is not verified: only reachability and time are measured, and no credentials are sent.",
  }),

  peers: def({
    name: 'podmesh_peers',
    type: 'gauge',
    labels: ['source_node', 'network'],
    help: 'Peers this agent currently probes (bounded by peers.limit).',
  }),
  coveragePeriod: def({
    name: 'podmesh_coverage_period_seconds',
    type: 'gauge',
    labels: ['source_node', 'network'],
    help: 'Time in which this agent probes every other agent at least once: probes.intervalMs when its core set holds them all, the rotation period with peers.rotation (docs/scale.md), +Inf when some are never probed.',
  }),
  agentInfo: def({
    name: 'podmesh_agent_info',
    type: 'gauge',
    labels: ['source_node', 'network', 'zone'],
    help: "Always 1; zone is the agent's node's zone (zone setting, else the Node's topology.kubernetes.io/zone label; empty until known). Recording rules join pair series on it for zone pairs.",
  }),
  icmpEnabled: def({
    name: 'podmesh_icmp_enabled',
    type: 'gauge',
    labels: ['source_node', 'network', 'reason'],
    help: '1 if ICMP probes run; 0 with the reason (permission, disabled, error) if not.',
  }),
  timestampSource: def({
    name: 'podmesh_timestamp_source',
    type: 'gauge',
    labels: ['source_node', 'network', 'protocol', 'source'],
    help: "1 per running probe kind, labelled with where its RTT timestamps come from: `kernel` (software TX/RX stamps for udp and icmp, the handshake RTT from TCP_INFO for tcp; docs/timestamps.md) or `userspace` (the addon could not load: RTTs include the agent's own scheduling).",
  }),
  eventLoopDelay: def({
    name: 'podmesh_event_loop_delay_seconds',
    type: 'gauge',
    labels: ['source_node', 'network', 'thread', 'quantile'],
    help: 'Event-loop delay quantiles: how late the loop came round. Main thread (HTTP, metrics): a 50 ms sampling timer, its tick taken out. Probe engine thread: how late its timer slots fired, measured only while it probes.',
  }),
  lateness: def({
    name: 'podmesh_probe_lateness_seconds',
    type: 'histogram',
    labels: ['source_node', 'network', 'protocol'],
    buckets: LATENESS_BUCKETS,
    help: "How long after its due time each probe was actually started: the prober's own scheduling health.",
  }),
  lateRatio: def({
    name: 'podmesh_probe_late_ratio',
    type: 'gauge',
    labels: ['source_node', 'network'],
    help: 'Share of probes over the sliding window started more than probes.lateMs after their due time. High means the agent is too starved (CPU throttling, a busy node) for its latency numbers to be trusted.',
  }),
  schedulerSkipped: def({
    name: 'podmesh_probe_skipped_total',
    type: 'counter',
    labels: ['source_node', 'network'],
    help: 'Probe runs skipped because the previous run to the same peer was still in flight.',
  }),
  engineRestarts: def({
    name: 'podmesh_engine_restarts_total',
    type: 'counter',
    labels: ['source_node', 'network'],
    help: 'Times the probe engine thread died and was started again (with capped backoff).',
  }),
  socketReopens: def({
    name: 'podmesh_socket_reopens_total',
    type: 'counter',
    labels: ['source_node', 'network', 'kind'],
    help: 'Probe and responder sockets that failed (their event-loop poll stopped with an error, which would leave them deaf) and were reopened, by kind: stamp_sender, stamp_reflector, icmp. Probes in flight on the failed socket end as errors.',
  }),
  reflectorPackets: def({
    name: 'podmesh_reflector_packets_total',
    type: 'counter',
    labels: ['source_node', 'network', 'result'],
    help: 'Packets received by the STAMP reflector by result: reflected, malformed, auth_failed, loop, rate_limited, verify_limited, stale, replayed.',
  }),
  reflectorSessions: def({
    name: 'podmesh_reflector_sessions',
    type: 'gauge',
    labels: ['source_node', 'network'],
    help: 'STAMP sender sessions the reflector keeps state for.',
  }),
  tcpAccepted: def({
    name: 'podmesh_tcp_listener_connections_total',
    type: 'counter',
    labels: ['source_node', 'network'],
    help: 'Connections accepted by the TCP listener that peers probe.',
  }),
  discoveryLastSync: def({
    name: 'podmesh_discovery_last_sync_timestamp_seconds',
    type: 'gauge',
    labels: ['source_node', 'network', 'resource'],
    help: 'Unix time of the last successful list, watch event or bookmark from the API server, per watched resource (pods, nodes, endpointslices, apiserver-endpointslices). Sync age: time() minus this.',
  }),
  discoveryRestarts: def({
    name: 'podmesh_discovery_restarts_total',
    type: 'counter',
    labels: ['source_node', 'network', 'resource', 'reason'],
    help: 'Informer restarts per watched resource, by reason: error (with capped backoff) or watchdog (a watch gone silent).',
  }),
  controllerAgents: def({
    name: 'podmesh_controller_agents',
    type: 'gauge',
    labels: ['state'],
    help: 'Agents the controller pulled in its last round, by state: ok, unreachable, timeout, http-error, invalid.',
  }),
  controllerLastCollection: def({
    name: 'podmesh_controller_last_collection_timestamp_seconds',
    type: 'gauge',
    labels: [],
    help: "Unix time the controller last finished pulling every agent's row.",
  }),
  controllerCollectionDuration: def({
    name: 'podmesh_controller_collection_duration_seconds',
    type: 'gauge',
    labels: [],
    help: 'How long the last round of pulling agent rows took.',
  }),
  nodeCoverage: def({
    name: 'podmesh_node_coverage',
    type: 'gauge',
    labels: ['node', 'network', 'reason'],
    help: '1 if the node has a Ready agent of this kind (network pod or host), else 0; reason: ready, missing, unschedulable, pending, sandbox-error, crash-loop, image-pull, config-error, not-ready, terminating.',
  }),
  findingActive: def({
    name: 'podmesh_finding_active',
    type: 'gauge',
    labels: ['kind', 'severity', 'subject'],
    help: "1 per finding the controller's triage holds now (kind: node-isolated, overlay-broken, mtu-blackhole, dns-replica ...; subject: the node, pair, zone pair, DNS server or port target it is about). The series is removed when the finding clears.",
  }),
  findingsOpened: def({
    name: 'podmesh_findings_opened_total',
    type: 'counter',
    labels: ['kind'],
    help: 'Findings opened since the controller started, by kind.',
  }),
  clusterChanges: def({
    name: 'podmesh_cluster_changes_total',
    type: 'counter',
    labels: ['kind', 'node'],
    help: 'Changes the controller saw in the cluster for "what changed" on findings (kind: pod-restarted, pod-replaced, node-rebooted, network-policy-changed ...; node: where, empty for a NetworkPolicy). The dashboards draw them as annotations.',
  }),
  nodeEventsDropped: def({
    name: 'podmesh_node_events_dropped_total',
    type: 'counter',
    labels: ['reason'],
    help: 'Finding transitions not written as an Event on their Node, by reason: cap (over controller.nodeEventsPerRound in one round) or unknown-node (no such Node in the informer).',
  }),
  buildInfo: def({
    name: 'podmesh_build_info',
    type: 'gauge',
    labels: ['version', 'node_version'],
    help: 'Always 1; labels carry the podmesh and Node.js versions.',
  }),
} as const;

type Catalogue = typeof CATALOGUE;
type LabelsOf<D> = D extends Def<infer _T, infer L> ? L[number] : never;
type MetricOf<D> = D extends { readonly slots: true }
  ? SlotHistogram<LabelsOf<D>>
  : D extends Def<'counter', infer _L>
    ? Counter<LabelsOf<D>>
    : D extends Def<'gauge', infer _L>
      ? Gauge<LabelsOf<D>>
      : Histogram<LabelsOf<D>>;
export type Metrics = { readonly [K in keyof Catalogue]: MetricOf<Catalogue[K]> };

/** Metrics only the controller exports; every other one belongs to agents. */
const CONTROLLER_KEYS: ReadonlySet<string> = new Set([
  'controllerAgents',
  'controllerLastCollection',
  'controllerCollectionDuration',
  'nodeCoverage',
  'findingActive',
  'findingsOpened',
  'clusterChanges',
  'nodeEventsDropped',
]);

export type Role = 'agent' | 'controller';

export function roleOf(key: keyof Catalogue): Role {
  return CONTROLLER_KEYS.has(key) ? 'controller' : 'agent';
}

/**
 * Creates the catalogued metrics in `registry` (never the global one). Only the role's own
 * metrics are registered, so an agent's /metrics doesn't list controller metrics; the others
 * are created unregistered, which keeps the returned object fully typed.
 */
export function createMetrics(registry: Registry, role: Role = 'agent'): Metrics {
  const out: Record<string, unknown> = {};
  for (const [key, d] of Object.entries(CATALOGUE) as [
    keyof Catalogue,
    Def<'counter' | 'gauge' | 'histogram', readonly LabelName[]>,
  ][]) {
    const mine = roleOf(key) === role || key === 'buildInfo';
    const common = {
      name: d.name,
      help: d.help,
      labelNames: [...d.labels],
      registers: mine ? [registry] : [],
    };
    if (d.slots === true) {
      const h = new SlotHistogram(d.name, d.help, d.labels, d.buckets ?? []);
      if (mine) registry.registerMetric(h.asRegistryMetric());
      out[key] = h;
      continue;
    }
    out[key] =
      d.type === 'counter'
        ? new Counter(common)
        : d.type === 'gauge'
          ? new Gauge(common)
          : new Histogram({ ...common, buckets: [...(d.buckets ?? [])] });
  }
  return out as Metrics;
}

export function catalogueNames(): string[] {
  return Object.values(CATALOGUE).map((d) => d.name);
}

/** docs/metrics.md, generated so the page can't drift from the code. */
export function renderMetricsDoc(): string {
  const lines = [
    '# podmesh metrics',
    '',
    '<!-- Generated from src/metrics/catalogue.ts by `npm run docs:metrics`; a test keeps it in sync. -->',
    '',
    'Every metric podmesh exports. Names use base units (`_seconds`, `_total`, `_ratio`); labels come from a closed set, and carry node names only (never Pod IPs or Pod names).',
    '',
    '| name | type | labels | meaning |',
    '| --- | --- | --- | --- |',
  ];
  for (const d of Object.values(CATALOGUE)) {
    lines.push(
      `| \`${d.name}\` | ${d.type} | ${d.labels.map((l) => `\`${l}\``).join(', ')} | ${d.help.replace(/\|/g, '\\|')} |`,
    );
  }
  lines.push(
    '',
    '## Labels',
    '',
    '| label | values |',
    '| --- | --- |',
    '| `source_node` | node the measuring agent runs on |',
    '| `target_node` | node of the peer agent probed |',
    '| `network` | `pod` (pod-network agent) or `host` (hostNetwork agent) |',
    '| `path` | `pod-to-pod`, `pod-to-host`, `host-to-pod`, `host-to-host`: which networks the probe leaves from and arrives on |',
    '| `protocol` | `udp` (STAMP, RFC 8762), `icmp` (echo), `tcp` (connect) |',
    '| `size` | `small`, or `mtu` for probes padded to the interface MTU (an MTU black hole shows as small fine, mtu lost) |',
    '| `scope` | `same-node`, `same-zone`, `cross-zone` |',
    '| `direction` | `forward` (sender to reflector), `reverse` (reflector to sender) |',
    '| `quantile` | `0.5`, `0.9`, `0.99` |',
    '| `reason` | failure reasons `timeout`, `refused`, `unreachable`, `permission`, `malformed`, `error`; for `podmesh_icmp_enabled` also `ok`, `disabled`; for `podmesh_dns_discarded_answers_total` `malformed`, `mismatched` |',
    '| `result` | reflector outcome: `reflected`, `malformed`, `auth_failed`, `loop` (a reflected packet: from a reflector port or carrying reflector fields), `rate_limited` (over the reply budget of its source or in total), `verify_limited` (over the HMAC-check budget), `stale` (timestamp outside `stamp.maxClockSkewMs`), `replayed` (answered before); DNS outcome: `noerror` (records of the asked type), `nodata` (name exists, no such records), `nxdomain`, `servfail`, `refused`, `other-rcode`, `timeout`, `unreachable` (the kernel refused: TCP reset, no route, blocked send), `malformed` (an answer that is not a valid answer to the query), `error`; port target outcome: `open`, `refused`, `timeout`, `unreachable`, `error`; API server check outcome: `ok`, `refused`, `timeout`, `unreachable`, `tls-error`, `error` |',
    '| `server_kind` | `service` (the first nameserver of the resolv.conf, i.e. the DNS Service VIP) or `replica` (one DNS server Pod, queried directly); for the API server checks `service` (the `kubernetes` Service VIP) or `endpoint` (one API server address, directly) |',
    '| `server` | `service` for the VIP; for a replica the node it runs on (`<node>#2`, `#3`... for more replicas on one node, by Pod name or list order; `replica-<n>` when the node is unknown). Never an address, except for the API server checks: `service` for the VIP, the `address:port` of an endpoint (the few addresses of the control plane) |',
    '| `query` | `service` (service FQDN as-is), `short` (short name through the search list and ndots), `pod` (Pod or headless-service name), `external` (a name outside the cluster) |',
    '| `transport` | `udp` or `tcp`: what the lookup was sent over (a truncated UDP answer retried over TCP still counts as `udp`) |',
    '| `thread` | `main` or `engine` |',
    '| `source` | timestamp source: `kernel` or `userspace` |',
    "| `zone` | the agent's node's zone (`topology.kubernetes.io/zone`), empty when unknown |",
    '| `version`, `node_version` | build information |',
    '| `node` | a node, for controller metrics about a node as a whole (coverage) |',
    "| `resource` | a watched Kubernetes resource: `pods`, `nodes`, `endpointslices` (the cluster DNS Service's), `apiserver-endpointslices` (the `kubernetes` Service's, in `default`) |",
    "| `target` | a port target's configured name (`ports.targets[].name`), never an address |",
    '| `expected` | `open` (the target should accept connections) or `closed` (it must not: a policy that has to hold) |',
    "| `kind` | finding kind from the controller's triage (see docs/triage.md); for `podmesh_socket_reopens_total` the socket; for `podmesh_window_expected_probes` the check: `pair`, `dns`, `port` |",
    '| `subject` | what a finding is about: a node (`node-2`), a pair (`node-1->node-2`), a zone pair (`zone-a<->zone-b`), a DNS server (`service`, `node-3`) or a port target, optionally with the network (`node-2/pod`) |',
    '| `severity` | `critical`, `warning` or `info` |',
    '| `state` | agent state as the controller saw it: `ok`, `unreachable`, `timeout`, `http-error`, `invalid` |',
    '',
    'Series of a peer that leaves (or is no longer selected) are removed, so departed nodes do not linger as stale zeros; so are the DNS series of a replica that leaves.',
    '',
    'DNS load: each agent runs one lookup per (server, query, transport) every `dns.intervalMs` (default 5 s). With the defaults (service FQDN over UDP and TCP, short name, external name) that is 4 lookups per server, so with a VIP and 2 replicas 12 lookups per 5 s, about 2.4 per second per agent (plus one query per extra search-list step of the short name: with ndots 5 and a cluster search list, `kubernetes.default` takes 2). Across N agents the cluster DNS sees N times that.',
    '',
  );
  return lines.join('\n');
}
