// Every podmesh setting, declared once: its key, type, default, meaning and where it may come
// from. The loader, the env-var and CLI-flag names, `--help` and docs/configuration.md are all
// derived from this table, so a setting can't exist in one place and be missing in another.

import { isIP } from 'node:net';
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);
const ipv4 = z
  .string()
  .refine((s) => isIP(s) === 4, { message: 'must be an IPv4 address such as 10.0.0.5' });
const nodeName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, {
    message: 'must be a Kubernetes node name (lower-case letters, digits, "-" and ".")',
  });

/** A peer as written in the config file's static list. */
export const staticPeerSchema = z.strictObject({
  node: nodeName,
  network: z.enum(['pod', 'host']).default('pod'),
  zone: z.string().default(''),
  address: ipv4,
  stampPort: port.default(9862),
  tcpPort: port.default(9863),
  httpPort: port.default(9860),
});
export type StaticPeer = z.infer<typeof staticPeerSchema>;

const dnsName = z
  .string()
  .max(253)
  .regex(/^$|^[A-Za-z0-9_]([-A-Za-z0-9_]*)?(\.[A-Za-z0-9_]([-A-Za-z0-9_]*)?)*\.?$/, {
    message: 'must be a DNS name such as kubernetes.default (letters, digits, "-", "_" and dots)',
  });

/** A DNS replica as written in the config file's static list (dns.replicas). */
export const staticDnsReplicaSchema = z.strictObject({
  address: ipv4,
  /** Default: dns.port. */
  port: port.min(1).optional(),
  /** Node the replica runs on; its label value. Default: "replica-<n>". */
  node: nodeName.optional(),
});
export type StaticDnsReplica = z.infer<typeof staticDnsReplicaSchema>;

/** A port target as written in the config file (ports.targets). */
export const portTargetSchema = z.strictObject({
  /** The `target` label value: never an address. */
  name: z
    .string()
    .min(1)
    .max(63)
    .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, {
      message:
        'must be a short name (lower-case letters, digits, "-" and "."), used as the target label',
    }),
  address: ipv4,
  port: port.min(1),
  /** "open": it should accept connections; "closed": it must not (a policy that has to hold). */
  expect: z.enum(['open', 'closed']).default('open'),
});
export type PortTarget = z.infer<typeof portTargetSchema>;

/** Where a value may be set. "file" is always allowed; env and flag only for scalars. */
export interface Setting {
  readonly key: string;
  readonly schema: z.ZodType;
  readonly default: unknown;
  readonly help: string;
  /** Scalars can come from env vars and flags too; lists only from the file. */
  readonly scalar: boolean;
}

function s(key: string, schema: z.ZodType, def: unknown, help: string, scalar = true): Setting {
  return { key, schema, default: def, help, scalar };
}

const ms = (min: number, max: number) => z.number().int().min(min).max(max);

export const SETTINGS: readonly Setting[] = [
  s(
    'node',
    nodeName.optional(),
    undefined,
    'Node this agent runs on (the downward API fills it in a cluster). Default: the host name.',
  ),
  s(
    'network',
    z.enum(['pod', 'host']),
    'pod',
    'Which network this agent sits on: "pod" (pod network) or "host" (hostNetwork).',
  ),
  s(
    'zone',
    z.string().max(63),
    '',
    'Topology zone of this node, used for peer selection and the scope label.',
  ),
  s(
    'address',
    ipv4,
    '0.0.0.0',
    'Address to bind the STAMP reflector, TCP listener and probe sockets to.',
  ),
  s(
    'advertiseAddress',
    ipv4.optional(),
    undefined,
    'Address peers use to reach this agent. Default: the bind address, or the first non-internal IPv4 address when bound to 0.0.0.0.',
  ),
  s(
    'httpAddress',
    ipv4,
    '0.0.0.0',
    'Address the HTTP server (/metrics, /healthz, /readyz, /api/v1/results) binds to.',
  ),
  s('httpPort', port, 9860, 'HTTP port for /metrics, health and the results API.'),
  s(
    'web.configFile',
    z.string(),
    '',
    'Web config file securing the HTTP server, in the format of Prometheus exporter-toolkit (--web.config.file): tls_server_config (cert_file, key_file, client_ca_file, client_auth_type, min_version) and basic_auth_users (name: bcrypt hash). Everything but /healthz and /readyz then needs what it asks for (docs/security.md). Empty: plain HTTP, no authentication.',
  ),
  s(
    'http.maxConnections',
    z.number().int().min(8).max(100_000),
    256,
    "Most open connections to the HTTP server (agent and controller). Beyond it a new connection closes the least recently used idle one, or is refused if none is idle; requests other than /healthz and /readyz are answered 503 once they would hold more than seven eighths of it, so the kubelet's probes keep answering through a flood. Keep it well under the open-files limit.",
  ),
  s(
    'http.headersTimeoutMs',
    ms(100, 600_000),
    10_000,
    "HTTP: a request's headers must arrive within this time; a connection that sends nothing, or drips its headers, is closed. Must not exceed http.requestTimeoutMs.",
  ),
  s(
    'http.requestTimeoutMs',
    ms(100, 3_600_000),
    30_000,
    'HTTP: a whole request must arrive within this time, and a connection on which nothing moves (a client that stops reading its answer) is closed after it.',
  ),
  s(
    'http.keepAliveTimeoutMs',
    ms(100, 600_000),
    5_000,
    'HTTP: a keep-alive connection with no new request for this long is closed.',
  ),
  s(
    'stampPort',
    port,
    9862,
    'UDP port of the STAMP session-reflector (RFC 8762; 862 is the IANA port but needs privilege).',
  ),
  s('tcpPort', port, 9863, 'TCP port of the listener peers connect to for tcp probes.'),
  s(
    'logLevel',
    z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
    'info',
    'Log level.',
  ),

  s('probes.intervalMs', ms(50, 600_000), 1000, 'Time between two probes of one kind to one peer.'),
  s(
    'probes.timeoutMs',
    ms(10, 600_000),
    1000,
    'A probe not answered within this time counts as lost. Must not exceed probes.intervalMs.',
  ),
  s(
    'probes.jitter',
    z.number().min(0).max(0.5),
    0.1,
    'Random spread of each interval, as a fraction of it, so agents do not probe in lock-step.',
  ),
  s(
    'probes.concurrency',
    z.number().int().min(1).max(10_000),
    256,
    'Most probes in flight at once per engine.',
  ),
  s('probes.udp', z.boolean(), true, 'Run STAMP (UDP) probes.'),
  s(
    'probes.icmp',
    z.boolean(),
    true,
    'Run ICMP echo probes (a ping socket where net.ipv4.ping_group_range allows it, else a raw socket with CAP_NET_RAW; turned off with a log line if neither).',
  ),
  s('probes.tcp', z.boolean(), true, 'Run TCP connect probes.'),
  s(
    'probes.mtu',
    z.boolean(),
    true,
    'Also send MTU-sized udp and icmp probes beside the small ones.',
  ),
  s(
    'probes.mtuBytes',
    z.union([z.literal('auto'), z.number().int().min(576).max(65535)]),
    'auto',
    'IP packet size of MTU probes; "auto" reads the MTU of the interface that holds the advertise address.',
  ),
  s(
    'probes.mtuMaxBytes',
    z.number().int().min(576).max(65535),
    9000,
    'Upper bound for "auto" MTU probes (loopback reports 65536).',
  ),

  s(
    'probes.lateMs',
    ms(1, 60_000),
    50,
    "A probe started more than this long after its due time counts as late (podmesh_probe_late_ratio); a starved agent's latency is held back by triage.",
  ),

  s(
    'ports.targets',
    z.array(portTargetSchema),
    [],
    'Port targets (file only): [{name, address, port, expect: open|closed}]. Each agent connects to each every ports.intervalMs; "closed" checks a port that must stay unreachable (e.g. a NetworkPolicy).',
    false,
  ),
  s(
    'ports.intervalMs',
    ms(100, 3_600_000),
    5000,
    'Time between two connects to one port target. The target sees one connect per agent per interval: keep it modest on large clusters.',
  ),
  s(
    'ports.timeoutMs',
    ms(10, 60_000),
    2000,
    'A connect not accepted or refused within this time is a timeout (a silent drop: policy or firewall). Must not exceed ports.intervalMs.',
  ),

  s(
    'apiserver.enabled',
    z.boolean(),
    true,
    'Agents check the Kubernetes API server: a TCP connect, a TLS handshake (certificate not verified: only reachability and time; no credentials are ever sent) and optionally an anonymous GET /readyz, to the `kubernetes` Service VIP and each endpoint directly, every apiserver.intervalMs. One connection per target per interval, none kept open.',
  ),
  s(
    'apiserver.intervalMs',
    ms(100, 3_600_000),
    10_000,
    'Time between two checks of one API server target. The API server sees one connection per agent per target per interval: keep it modest on large clusters. Triage judges a target once the window holds 4 checks and the alert once it holds 3, so keep window.seconds at 4 intervals or more (60 s / 10 s = 6).',
  ),
  s(
    'apiserver.timeoutMs',
    ms(10, 60_000),
    3000,
    'A check whose connect or TLS handshake is not done within this time is a timeout. Must not exceed apiserver.intervalMs.',
  ),
  s(
    'apiserver.readyz',
    z.boolean(),
    true,
    'After the handshake, GET /readyz without credentials: 200 is ready, 401/403 (anonymous requests not allowed) still proves the API server was reached.',
  ),
  s(
    'apiserver.service',
    z.string().regex(/^$|^none$|^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$/, {
      message: 'must be address:port (IPv4), empty, or none',
    }),
    '',
    'The `kubernetes` Service VIP as address:port. Empty: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT from the Pod env (no VIP check outside a cluster); none: no VIP check.',
  ),
  s(
    'apiserver.endpoints',
    z.array(z.strictObject({ address: ipv4, port: port.min(1) })),
    [],
    'API server endpoints checked directly (file only): [{address, port}]. Empty: in a cluster, the addresses of the `kubernetes` EndpointSlice in `default`, watched read-only.',
    false,
  ),

  s(
    'stamp.authKey',
    z.string().optional(),
    undefined,
    'Shared key for authenticated STAMP (HMAC-SHA-256), as hex or base64, at least 16 bytes. Unset: unauthenticated mode.',
  ),
  s(
    'stamp.maxSessions',
    z.number().int().min(1).max(1_000_000),
    4096,
    'Most sender sessions the reflector keeps state for (least recently used evicted).',
  ),
  s(
    'stamp.maxRepliesPerSecond',
    z.number().int().min(1).max(1_000_000),
    10_000,
    'Reflector reply rate limit, in total; packets beyond it are dropped and counted.',
  ),
  s(
    'stamp.maxRepliesPerSecondPerSource',
    z.number().int().min(1).max(1_000_000),
    1000,
    'Reflector replies per second to one source address (and, with stamp.authKey, HMAC checks per second for it), charged before the total; a flood from one address cannot spend the replies other peers need. A sender at the shortest interval sends 40 a second.',
  ),
  s(
    'stamp.reflectorPorts',
    z.array(port.min(1)).max(64),
    [862, 9862, 9872],
    "Source ports of other STAMP reflectors (file only): packets from them (and from the reflector's own port) are never answered, so no two reflectors can be made to answer each other. Default: the IANA STAMP port and the pod (9862) and host (9872) agents' ports of the shipped manifests.",
    false,
  ),
  s(
    'stamp.maxClockSkewMs',
    ms(100, 3_600_000),
    30_000,
    "With stamp.authKey: a test packet whose timestamp differs from the reflector's clock by more than this is dropped as stale (replay protection). Nodes kept by NTP agree to milliseconds; 30 s tolerates a node whose time sync has been broken for days.",
  ),

  s(
    'peers.limit',
    z.number().int().min(0).max(10_000),
    32,
    'Most peers one agent probes (chosen by rendezvous hashing on node names); with peers.rotation, the probe budget in peers probed all the time.',
  ),
  s(
    'peers.watchers',
    z.number().int().min(0).max(64),
    8,
    "Nodes whose agents hold each node in their core set (a guaranteed in-degree, docs/scale.md): half from the node's own zone. Guaranteed while the core set has room for 1 + ceil(k/2) + k peers.",
  ),
  s(
    'peers.rotation',
    z.boolean(),
    false,
    'Visit every peer outside the core set in turn (docs/scale.md), so every node pair is measured within the coverage period (podmesh_coverage_period_seconds). Rotating peers get no per-pair series. Off by default: a rotating peer adds its results to the row, and from about 100 nodes the controller cannot yet hold the rows this makes (docs/scale.md, "Not done yet").',
  ),
  s(
    'peers.core',
    z.number().int().min(0).max(10_000),
    14,
    'With peers.rotation, when the candidates do not fit in peers.limit: peers probed all the time; the rest of the budget pays for rotating visits (one probe of each kind a slot).',
  ),
  s(
    'peers.static',
    z.array(staticPeerSchema),
    [],
    'Static peer list (file only): [{node, network, zone, address, stampPort, tcpPort, httpPort}].',
    false,
  ),

  s(
    'discovery.mode',
    z.enum(['auto', 'static', 'kubernetes']),
    'auto',
    'Where peers come from. auto: kubernetes when running in a cluster (KUBERNETES_SERVICE_HOST set) and peers.static is empty, else static.',
  ),
  s(
    'kubernetes.namespace',
    z.string().max(63),
    '',
    "Namespace of the agent Pods. Empty: POD_NAMESPACE, the service account's namespace, the kubeconfig context's, else podmesh.",
  ),
  s(
    'kubernetes.podSelector',
    z.string().min(1),
    'app.kubernetes.io/name=podmesh,app.kubernetes.io/component=agent',
    'Label selector matching the Pods of both agent DaemonSets.',
  ),
  s(
    'kubernetes.dnsNamespace',
    z.string().max(63),
    'kube-system',
    'Namespace of the cluster DNS Service.',
  ),
  s(
    'kubernetes.dnsService',
    z.string().max(63),
    'kube-dns',
    'Cluster DNS Service whose EndpointSlices list the DNS replicas; empty turns replica discovery off.',
  ),
  s(
    'kubernetes.nodeGraceMs',
    ms(0, 3_600_000),
    60_000,
    'How long a node may be cordoned or NotReady before its agents stop being probed; shorter blips cause no churn.',
  ),
  s(
    'kubernetes.watchdogMs',
    ms(10_000, 3_600_000),
    600_000,
    'A watch with no event, bookmark or reconnect for this long is restarted; watches also ask the server to end them after half this time.',
  ),
  s(
    'kubernetes.plumbingNamespaces',
    z.string().regex(/^$|^[a-z0-9-]+(,[a-z0-9-]+)*$/, {
      message: 'must be namespace names separated by commas, such as kube-system,calico-system',
    }),
    'kube-system',
    'Controller: namespaces whose CNI, kube-proxy and CoreDNS Pods are watched (read-only) for triage; each needs pods get/list/watch (docs/security.md). Empty turns plumbing watching off.',
  ),
  s(
    'kubernetes.plumbingSelectors',
    z
      .array(
        z.string().regex(/^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]+$/, { message: 'must be key=value' }),
      )
      .max(64),
    [
      'k8s-app=calico-node',
      'k8s-app=cilium',
      'app=flannel',
      'k8s-app=kube-proxy',
      'k8s-app=aws-node',
      'component=antrea-agent',
      'k8s-app=kube-router',
      'name=weave-net',
      'k8s-app=kube-dns',
    ],
    'Controller: labels (key=value, file only) of the plumbing Pods: the value kube-proxy is the Service proxy, kube-dns is CoreDNS, any other is a CNI agent.',
    false,
  ),
  s(
    'kubernetes.dnsConfigMaps',
    z.string().regex(/^$|^[a-z0-9-]+\/[a-z0-9.-]+(,[a-z0-9-]+\/[a-z0-9.-]+)*$/, {
      message: 'must be namespace/name pairs separated by commas, such as kube-system/coredns',
    }),
    'kube-system/coredns,kube-system/coredns-custom,kube-system/kube-dns,kube-system/node-local-dns',
    'Controller: the cluster DNS ConfigMaps (the Corefile; AKS adds coredns-custom, GKE\'s kube-dns and NodeLocal DNSCache have their own) watched for "what changed" on DNS findings, each by name; only a digest of the data is kept. Each needs configmaps list/watch narrowed by resourceNames (docs/security.md). Empty turns it off.',
  ),
  s(
    'kubernetes.plumbingSandboxWindowMs',
    ms(60_000, 86_400_000),
    600_000,
    "Controller: how long a FailedCreatePodSandBox Event counts towards a node's sandbox errors after its last occurrence.",
  ),
  s(
    'kubernetes.changeHorizonMs',
    ms(60_000, 86_400_000),
    900_000,
    'Controller: how long a change seen in the cluster (a CNI, kube-proxy or CoreDNS Pod restarted, flipped Ready or rolled out; a sandbox-error burst; a Node rebooted or flipped Ready; a NetworkPolicy created, changed or deleted; a Corefile ConfigMap changed) is kept for "what changed" on findings.',
  ),
  s(
    'kubernetes.changeLookbackMs',
    ms(0, 86_400_000),
    600_000,
    'Controller: how long before a finding opened a change on its nodes is attached to it as "what changed"; older ones are not offered as its cause. Must not be above kubernetes.changeHorizonMs.',
  ),
  s(
    'controller.pullIntervalMs',
    ms(500, 600_000),
    5000,
    "Controller: how often a round of pulling every agent's /api/v1/results starts (counted from the start of the last; a round that takes longer is followed at once).",
  ),
  s(
    'controller.pullConcurrency',
    z.number().int().min(1).max(1000),
    32,
    'Controller: agents pulled at once.',
  ),
  s(
    'controller.pullTimeoutMs',
    ms(100, 60_000),
    3000,
    'Controller: how long one agent may take to answer.',
  ),
  s(
    'controller.pullScheme',
    z.enum(['http', 'https']),
    'http',
    "Controller: how it talks to agents' HTTP port; https when the agents run with a web config that has tls_server_config. Pulls never follow redirects.",
  ),
  s(
    'controller.pullCaFile',
    z.string(),
    '',
    "Controller, https: PEM file of the CA(s) that signed the agents' certificates. Empty: the system's CAs.",
  ),
  s(
    'controller.pullServerName',
    z.string().max(253),
    '',
    "Controller, https: the name the agents' certificate must carry (agents are reached by Pod IP, so a shared certificate names a Service such as podmesh-agent.podmesh.svc). Empty: the agent's address.",
  ),
  s(
    'controller.pullCertFile',
    z.string(),
    '',
    'Controller, https: PEM client certificate to present to agents whose web config verifies client certificates (with controller.pullKeyFile).',
  ),
  s('controller.pullKeyFile', z.string(), '', "Controller, https: the client certificate's key."),
  s(
    'controller.pullUsername',
    z.string().regex(/^[^:]*$/, { message: 'a basic-auth user name cannot contain ":"' }),
    '',
    "Controller: basic-auth user for the agents' web config basic_auth_users (with controller.pullPasswordFile).",
  ),
  s(
    'controller.pullPasswordFile',
    z.string(),
    '',
    "Controller: file holding that user's password (a mounted Secret; one trailing newline is ignored). A file, not a value, so the password stays out of the config and the environment.",
  ),
  s(
    'controller.roundTimeoutMs',
    ms(100, 3_600_000),
    30_000,
    'Controller: deadline of one round of pulls; agents not answered by then are marked timeout and the round completes. Must not be below controller.pullTimeoutMs.',
  ),
  s(
    'controller.nodeEvents',
    z.boolean(),
    true,
    "Controller: also write each node-scoped finding's opening and clearing as an Event on that Node (in `default`, where `kubectl describe node` shows it). Needs the Role podmesh-node-events in `default`.",
  ),
  s(
    'controller.nodeEventsPerRound',
    z.number().int().min(1).max(1000),
    50,
    'Controller: at most this many Node Events per round; the rest are dropped and counted in podmesh_node_events_dropped_total{reason="cap"}.',
  ),
  s(
    'controller.nodeConditions',
    z.boolean(),
    false,
    'Controller, opt-in: set the Node condition PodmeshNetworkProblem (True while a node-scoped finding of severity warning or critical is open on the Node, False once the last clears), for remediation tools that watch conditions. Needs patch on nodes/status: the component deploy/components/node-conditions grants it and turns this on.',
  ),
  s(
    'dns.enabled',
    z.boolean(),
    true,
    'Run DNS checks: every DNS name below, to the resolver in dns.resolvConf (the DNS Service VIP) and to every DNS replica directly.',
  ),
  s(
    'dns.intervalMs',
    ms(100, 3_600_000),
    5000,
    'Time between two lookups of one (server, name, transport). Each agent sends (1 + replicas) x (names, +1 for the service FQDN over TCP) lookups per interval: with the defaults and 2 replicas 3 x 4 = 12 per 5 s, about 2.4 per second, plus one query per extra search-list step of the short name. The cluster DNS sees that times the number of agents: keep it modest on large clusters.',
  ),
  s(
    'dns.timeoutMs',
    ms(10, 60_000),
    2000,
    'A lookup not answered within this time is a timeout; the short name walks its whole search list within this budget. Must not exceed dns.intervalMs.',
  ),
  s(
    'dns.resolvConf',
    z.string().min(1),
    '/etc/resolv.conf',
    "Path of the resolver configuration to read: its first nameserver is the DNS Service VIP, its search list and ndots expand the short name the way the Pod's resolver does.",
  ),
  s(
    'dns.port',
    port.min(1),
    53,
    'DNS port of the resolv.conf nameserver and of static replicas that give none (53; other values for the demo and tests).',
  ),
  s(
    'dns.clusterDomain',
    dnsName.min(1),
    'cluster.local',
    'Cluster DNS domain, used to derive dns.serviceName.',
  ),
  s(
    'dns.serviceName',
    dnsName,
    '',
    'Service FQDN to look up, sent as-is. Empty: kubernetes.default.svc.<dns.clusterDomain>.',
  ),
  s(
    'dns.shortName',
    dnsName,
    'kubernetes.default',
    "Short name looked up through the search list exactly as the Pod's resolver would (ndots, search order); which candidate answered is reported. Empty turns it off.",
  ),
  s(
    'dns.podName',
    dnsName,
    '',
    'A Pod or headless-service name to look up, sent as-is. Empty turns it off.',
  ),
  s(
    'dns.externalName',
    dnsName,
    'example.com',
    'A name outside the cluster to look up, sent as-is (the DNS servers forward it). Empty turns it off.',
  ),
  s('dns.tcp', z.boolean(), true, 'Also send the service FQDN over TCP.'),
  s(
    'dns.replicas',
    z.array(staticDnsReplicaSchema),
    [],
    'Static DNS replicas (file only): [{address, port, node}]. Kubernetes discovery adds the DNS Service EndpointSlices.',
    false,
  ),
  s(
    'triage.latencyBaselineMinutes',
    z.number().int().min(1).max(1440),
    60,
    "Controller: how far back each link's RTT baseline reaches (the latency findings compare a link with its own history); a shift lasting longer than half of it becomes the new normal.",
  ),
  s(
    'triage.latencyMinBaselineSamples',
    z.number().int().min(1).max(60),
    20,
    "Controller: samples (of 60 per baseline window: one a minute by default) a link's RTT baseline needs before latency findings judge it; until then they stay silent.",
  ),
  s(
    'triage.latencyMaxLinks',
    z.number().int().min(0).max(1_000_000),
    10_000,
    'Controller: links whose RTT history is kept at most (about 2 KB each); links beyond it get no latency findings. 0 turns the latency findings off.',
  ),
  s(
    'window.seconds',
    z.number().int().min(5).max(3600),
    60,
    'Length of the sliding window behind loss ratios and RTT quantiles. It must hold at least 2 probes per pair (window.seconds x 1000 / probes.intervalMs; fewer is refused, and the agent warns when DNS lookups or port connects fall short the same way): the alert rules count a window once it holds half of that, at most 20 (podmesh_window_expected_probes).',
  ),
  s(
    'engine.worker',
    z.boolean(),
    true,
    'Run the probe engine (every probe kind, DNS, port targets) and the responders on a worker thread, so a busy main thread does not delay probes. Off: everything on the main thread (tests, troubleshooting).',
  ),
  s(
    'shutdown.drainMs',
    ms(0, 120_000),
    2000,
    'On SIGTERM: time between turning readiness off and closing, so endpoints stop sending probes here.',
  ),
];

export const SETTINGS_BY_KEY: ReadonlyMap<string, Setting> = new Map(
  SETTINGS.map((x) => [x.key, x]),
);

/** PODMESH_PROBES_INTERVAL_MS for probes.intervalMs. */
export function envName(key: string): string {
  return (
    'PODMESH_' +
    key
      .replace(/\./g, '_')
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .toUpperCase()
  );
}

/** --probes-interval-ms for probes.intervalMs. */
export function flagName(key: string): string {
  return (
    '--' +
    key
      .replace(/\./g, '-')
      .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
      .toLowerCase()
  );
}
