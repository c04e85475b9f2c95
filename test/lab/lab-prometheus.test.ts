// End to end through a real Prometheus: Debian's prometheus binary (a child process of this
// test, temp TSDB, loopback port) scrapes the namespace lab's agents and an in-process
// controller, and evaluates the committed alert rules (alerts/podmesh-rules.yaml). The agents
// use Kubernetes discovery against a fake API server (their peers from the agent Pods and
// Nodes, the DNS replicas from kube-dns' EndpointSlice), as in a cluster; Prometheus gets the
// Pods' discovery labels and applies the shipped PodMonitor's relabelings. Checks that every
// dashboard query, with its cluster variable set, returns data in the phase where it should
// (healthy, or under a fault for the loss and findings panels), and that each lab fault (20%
// loss node-1<->node-2, one DNS replica down, node-3 partitioned) brings its own alert to
// pending or firing and no other.
// Needs root, iproute2, nftables, dnsmasq, conntrack and the prometheus package.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { parse } from 'yaml';
import { triage } from '../../src/analysis/triage.ts';
import { coverage } from '../../src/controller/coverage.ts';
import type { AgentDirectory, Controller } from '../../src/controller/controller.ts';
import { serveController } from '../../src/server/controller-app.ts';
import {
  dashboardExpressions,
  substitute,
  variableValues,
  type GrafanaDashboard,
} from '../../dashboards/src/promql.ts';
import {
  apiServerSliceObject,
  endpointSliceObject,
  FakeApiServer,
  nodeObject,
  podObject,
} from '../support/fake-apiserver.ts';
import { TlsApiServer } from '../support/tls-apiserver.ts';
import {
  Prometheus,
  PROMETHEUS_BIN,
  relabelConfigFromOperator,
  type PromAlert,
} from '../support/prometheus.ts';
import { labSuite } from './gate.ts';
import { labController } from './lab-controller.ts';
import { AGENT_PORTS, Lab, REPO, allLabLeftovers, type Undo } from './lab.ts';

const NEEDS =
  'the Prometheus lab needs root and iproute2, nftables, dnsmasq (dnsmasq-base), conntrack, prometheus';
const RULES = path.join(REPO, 'alerts/podmesh-rules.yaml');
const POD_MONITOR = path.join(REPO, 'deploy/components/prometheus-operator/pod-monitor.yaml');
const DASHBOARDS = path.join(REPO, 'dashboards');
/** Port targets live on this process's underlay address: no lab fault below touches it. */
const WEB_PORT = 18080;
const DB_PORT = 18081;
// DNSFailureRatioHigh waits for a whole minute of its condition before going pending
// (min_over_time[1m]), so detection takes just over a minute; PairLossHigh goes pending as soon
// as its window's counts show the loss.
const DETECT_MS = 100_000;
const QUIET_MS = 90_000;
/** After the expected alert appears, how long no other alert may be pending or firing. */
const SETTLE_MS = 15_000;
/** The `cluster` target label every series carries, and the dashboards' cluster variable. */
const CLUSTER = 'lab';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The shipped PodMonitor's relabelings, as the Prometheus relabel_configs the operator makes. */
function podMonitorRelabelings(): Record<string, unknown>[] {
  const pm = parse(fs.readFileSync(POD_MONITOR, 'utf8')) as {
    spec: { podMetricsEndpoints: { relabelings?: Record<string, unknown>[] }[] };
  };
  const eps = pm.spec.podMetricsEndpoints;
  if (eps.length !== 1) throw new Error(`${POD_MONITOR}: expected one podMetricsEndpoint`);
  return (eps[0]!.relabelings ?? []).map(relabelConfigFromOperator);
}

interface Query {
  readonly where: string;
  readonly file: string;
  readonly raw: string;
  readonly kind: 'panel' | 'variable';
  readonly values: Map<string, string>;
}

function loadQueries(): Query[] {
  const out: Query[] = [];
  for (const file of fs
    .readdirSync(DASHBOARDS)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const d = JSON.parse(fs.readFileSync(path.join(DASHBOARDS, file), 'utf8')) as GrafanaDashboard;
    const values = variableValues(d);
    for (const f of dashboardExpressions(d, file))
      if (f.kind === 'panel' || f.kind === 'variable')
        out.push({ where: f.where, file, raw: f.raw, kind: f.kind, values });
  }
  return out;
}

/** A Grafana label_values(selector, label) variable as the instant query Grafana's amounts to. */
function toPromQL(q: Query, overrides: Record<string, string>): string {
  const values = new Map([...q.values, ...Object.entries(overrides)]);
  const expr = substitute(q.raw, values);
  if (q.kind === 'panel') return expr;
  const lv = /^label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)$/.exec(expr.trim());
  if (lv === null) throw new Error(`unsupported variable query: ${expr}`);
  return `group by (${lv[2]}) (${lv[1]})`;
}

const alertKey = (a: PromAlert): string => {
  const { alertname, ...rest } = a.labels;
  const ls = Object.entries(rest)
    .filter(([k]) => k !== 'severity')
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `${alertname ?? '?'}{${ls}}`;
};

labSuite(
  'Prometheus lab',
  ['ip', 'nft', 'bridge', 'dnsmasq', 'conntrack', 'prometheus'],
  NEEDS,
  () => {
    let lab: Lab | undefined;
    let controller: Controller | undefined;
    let controllerServer: import('node:http').Server | undefined;
    let prom: Prometheus | undefined;
    let web: net.Server | undefined;
    let api: FakeApiServer | undefined;
    let tlsApi: TlsApiServer | undefined;
    const L = (): Lab => lab!;
    const P = (): Prometheus => prom!;
    const queries = loadQueries();
    /** Query `where` → the phase in which it first returned data. */
    const hadData = new Map<string, string>();

    test.before(async (t) => {
      t.timeout(180_000);
      const started = Date.now();
      lab = await Lab.up({
        nodes: 3,
        podsPerNode: 1,
        agents: false,
        agentSettings: {
          // Peers and DNS replicas from the API server, not from the lab's static lists.
          discovery: { mode: 'kubernetes' },
          kubernetes: { namespace: 'podmesh', dnsService: 'kube-dns' },
          peers: { static: [] },
          probes: { intervalMs: 250, timeoutMs: 200 },
          dns: { intervalMs: 500, timeoutMs: 400, replicas: [] },
          window: { seconds: 10 },
          // Every API server endpoint the EndpointSlice lists (below), 10 checks a window.
          apiserver: { intervalMs: 1000, timeoutMs: 800 },
        },
      });
      const rootIp = lab.rootIp;
      // The API server on the lab's root-side address, where every agent reaches it (a
      // partitioned node loses it too, as a partitioned node loses its control plane).
      api = await FakeApiServer.start({ host: rootIp });
      for (const n of lab.nodes) api.upsert(nodeObject({ name: n.name, zone: n.zone }));
      api.upsert(
        endpointSliceObject({
          name: 'kube-dns-lab',
          endpoints: lab.dnsReplicas.map((r) => ({ ip: r.ip, node: r.node.name, pod: r.name })),
        }),
      );
      // The API server as the agents check it (apiserver family): a TLS stand-in on the root
      // address, listed by the `kubernetes` EndpointSlice they follow (no VIP in this lab).
      tlsApi = await TlsApiServer.start(rootIp);
      api.upsert(apiServerSliceObject({ ips: [rootIp], port: tlsApi.port }));
      const kubeconfig = path.join(lab.dir, 'kubeconfig.yaml');
      fs.writeFileSync(kubeconfig, api.kubeConfigYaml('podmesh'));
      web = net.createServer((s) => {
        s.on('error', () => undefined);
        s.resume();
      });
      await new Promise<void>((resolve, reject) => {
        web!.once('error', reject);
        web!.listen(WEB_PORT, rootIp, resolve);
      });
      await lab.startAgents(
        { KUBECONFIG: kubeconfig },
        {
          ports: {
            intervalMs: 500,
            timeoutMs: 400,
            targets: [
              { name: 'web', address: rootIp, port: WEB_PORT, expect: 'open' },
              { name: 'db', address: rootIp, port: DB_PORT, expect: 'closed' },
            ],
          },
        },
      );
      const agents = lab.agents;
      const podName = (a: (typeof agents)[number]): string =>
        `podmesh-agent-${a.network}-${a.node.name}`;
      for (const a of agents)
        api.upsert(
          podObject({
            name: podName(a),
            node: a.node.name,
            ip: a.address,
            hostNetwork: a.network === 'host',
            ports: AGENT_PORTS,
          }),
        );
      // What a Kubernetes directory would report for this lab: every node Ready with a Ready
      // agent of each kind, so the controller exports podmesh_node_coverage.
      const directory: AgentDirectory = {
        endpoints: () => agents.map((a) => ({ node: a.node.name, network: a.network, url: a.url })),
        coverage: () =>
          coverage(
            L().nodes.map((n) => ({ name: n.name, ready: true, unschedulable: false })),
            agents.map((a) => ({
              name: podName(a),
              node: a.node.name,
              network: a.network,
              phase: 'Running',
              ready: true,
              terminating: false,
              containers: [{ ready: true, restartCount: 0 }],
            })),
          ),
      };
      controller = labController(lab, { directory, triage });
      const served = await serveController(controller, '127.0.0.1', 0);
      controllerServer = served.server;
      // One job, as the PodMonitor makes ("namespace/name"), with the target labels the
      // operator adds, the discovery labels its own relabelings read (the controller's node is
      // node-1, as if it ran there), and those relabelings from deploy/components/prometheus-operator/pod-monitor.yaml.
      const meta = (container: string, node: string): Record<string, string> => ({
        // As a multi-cluster store sees podmesh's series: every dashboard query is run with
        // the cluster variable set to it (CLUSTER), so a query that drops it shows no data.
        cluster: CLUSTER,
        namespace: 'podmesh',
        container,
        __meta_kubernetes_pod_container_name: container,
        __meta_kubernetes_pod_node_name: node,
      });
      prom = await Prometheus.start({
        intervalS: 1,
        ruleFiles: [RULES],
        jobs: [
          {
            job: 'podmesh/podmesh',
            relabelConfigs: podMonitorRelabelings(),
            targets: [
              ...agents.map((a) => ({
                address: `${a.address}:${AGENT_PORTS.http}`,
                labels: { ...meta('agent', a.node.name), pod: podName(a) },
              })),
              {
                address: `127.0.0.1:${served.port}`,
                labels: { ...meta('controller', 'node-1'), pod: 'podmesh-controller-0' },
              },
            ],
          },
        ],
      });
      t.log(
        `lab ${lab.prefix}: ${agents.length} agents, controller on :${served.port}, prometheus ${prom.url} (${PROMETHEUS_BIN}); up in ${Date.now() - started} ms`,
      );
    });

    test.afterEach.always(async () => {
      await lab?.heal();
    });

    test.after.always('nothing is left behind', async (t) => {
      const dir = prom?.dir;
      await prom?.stop();
      await controller?.stop();
      await new Promise((r) => (controllerServer ? controllerServer.close(r) : r(undefined)));
      await new Promise((r) => (web ? web.close(r) : r(undefined)));
      await api?.close();
      await tlsApi?.close();
      if (dir !== undefined) t.false(fs.existsSync(dir), 'prometheus temp dir removed');
      if (lab === undefined) return;
      const prefix = lab.prefix;
      await lab.down();
      t.deepEqual(
        allLabLeftovers().filter((x) => x.includes(prefix)),
        [],
      );
    });

    /** Runs every query that has had no data yet; records those that return some now. */
    async function checkQueries(
      t: ExecutionContext,
      phase: string,
      overrides: Record<string, Record<string, string>> = {},
    ): Promise<void> {
      const now: string[] = [];
      for (const q of queries) {
        if (hadData.has(q.where)) continue;
        const res = await P().query(toPromQL(q, { cluster: CLUSTER, ...overrides[q.file] }));
        if (res.length > 0) {
          hadData.set(q.where, phase);
          now.push(q.where);
        }
      }
      t.log(`${phase}: ${now.length} queries returned data for the first time`);
      for (const w of now) if (phase !== 'healthy') t.log(`  ${w}`);
    }

    async function waitQuiet(t: ExecutionContext, what: string): Promise<void> {
      const started = Date.now();
      for (;;) {
        const active = await P().alerts();
        if (active.length === 0) {
          t.log(`${what}: no alert pending or firing after ${Date.now() - started} ms`);
          return;
        }
        if (Date.now() - started > QUIET_MS) {
          // What still fails, to tell a lab that didn't heal from a rule that doesn't clear.
          const failing = await P().query(
            'podmesh_dns_answered_ratio < 1 or podmesh:pair_loss_ratio:max_protocol > 0',
          );
          throw new Error(
            `${what}: alerts still active: ${active.map(alertKey).join('; ')}; still failing: ${failing.map((s) => `${JSON.stringify(s.metric)}=${s.value[1]}`).join('; ')}`,
          );
        }
        await sleep(500);
      }
    }

    interface Seen {
      firstMs: number;
      lastMs: number;
      states: Set<string>;
    }

    /**
     * Injects a fault and waits for the expected alert (pending or firing), then watches for
     * SETTLE_MS more. No other alert may be pending or firing at any moment of the phase, not
     * even before the expected one appears (windows crossing thresholds at different moments
     * are the rules' business: see PodmeshDNSFailureRatioHigh's min_over_time).
     */
    /**
     * When an alert other than the expected one shows up, logs what its expression saw, so a
     * failure says why (the lab's Prometheus is gone once the test ends).
     */
    async function explain(
      t: ExecutionContext,
      name: string,
      a: PromAlert,
      ms: number,
    ): Promise<void> {
      if (a.labels['alertname'] !== 'PodmeshDNSFailureRatioHigh') return;
      const sel = `{source_node="${a.labels['source_node'] ?? ''}",network="${a.labels['network'] ?? ''}",server_kind="service"}`;
      const exprs = [
        `podmesh:dns_failure_ratio:by_server${sel}`,
        `count_over_time(podmesh:dns_failure_ratio:by_server${sel}[90s])`,
        `min_over_time(podmesh:dns_failure_ratio:by_server${sel}[1m])`,
        `max_over_time(podmesh:dns_failure_ratio:by_server${sel}[1m])`,
        `count_over_time(podmesh:dns_failure_ratio:by_server${sel}[1m] offset 30s)`,
        `sum by (query) (podmesh_dns_window_requests${sel})`,
        `podmesh:dns_replica_failing_sources:ratio`,
        `podmesh_dns_answered_ratio{source_node="${a.labels['source_node'] ?? ''}",network="${a.labels['network'] ?? ''}"}`,
        `sum by (query, transport, server_kind, result) (increase(podmesh_dns_requests_total{source_node="${a.labels['source_node'] ?? ''}",network="${a.labels['network'] ?? ''}",result!="noerror"}[2m]))`,
        ...[0, 15, 30, 45, 60, 75, 90, 105].map(
          (o) =>
            `max_over_time(podmesh:dns_failure_ratio:by_server${sel}[15s]${o === 0 ? '' : ` offset ${o}s`})`,
        ),
      ];
      for (const e of exprs) {
        const r = await P()
          .query(e)
          .catch((err: Error) => err.message);
        t.log(
          `${name}: at ${ms} ms ${e} = ${typeof r === 'string' ? r : JSON.stringify(r.map((x) => [x.metric, x.value[1]]))}`,
        );
      }
    }

    async function faultPhase(
      t: ExecutionContext,
      name: string,
      inject: () => Promise<Undo>,
      expected: (a: PromAlert) => boolean,
      o: { overrides?: Record<string, Record<string, string>> } = {},
    ): Promise<void> {
      t.timeout(QUIET_MS * 2 + DETECT_MS + SETTLE_MS + 60_000);
      await waitQuiet(t, `${name}: before`);
      const t0 = Date.now();
      const undo = await inject();
      const others = new Map<string, Seen>();
      const violations = new Set<string>();
      let matchedAt: number | undefined;
      let matched: PromAlert[] = [];
      for (;;) {
        const ms = Date.now() - t0;
        const active = await P().alerts();
        const mine = active.filter(expected);
        if (mine.length > 0 && matchedAt === undefined) {
          matchedAt = ms;
          matched = mine;
          t.log(
            `${name}: ${mine.map((a) => `${alertKey(a)} ${a.state}`).join('; ')} after ${ms} ms`,
          );
        }
        for (const a of active.filter((x) => !expected(x))) {
          const k = alertKey(a);
          if (!others.has(k)) await explain(t, name, a, ms);
          const s = others.get(k) ?? { firstMs: ms, lastMs: ms, states: new Set<string>() };
          s.lastMs = ms;
          s.states.add(a.state);
          others.set(k, s);
          // The issue's rule: no other alert reaches pending or firing, before or after.
          violations.add(`${k} ${a.state}`);
        }
        if (matchedAt === undefined && ms > DETECT_MS) break;
        if (matchedAt !== undefined && ms > matchedAt + SETTLE_MS) break;
        await sleep(500);
      }
      await checkQueries(t, name, o.overrides);
      for (const [k, s] of others)
        t.log(
          `${name}: also seen ${k} [${[...s.states].join(',')}] from ${s.firstMs} to ${s.lastMs} ms`,
        );
      const healStarted = Date.now();
      await undo();
      await waitQuiet(t, `${name}: healed`);
      t.log(`${name}: quiet ${Date.now() - healStarted} ms after the undo`);

      t.not(matchedAt, undefined, `${name}: the expected alert within ${DETECT_MS} ms`);
      t.true(matched.length > 0);
      t.deepEqual([...violations], [], `${name}: other alerts pending or firing during the fault`);
      t.deepEqual(
        [...others].filter(([, s]) => s.states.has('firing')).map(([k]) => k),
        [],
        `${name}: other alerts firing`,
      );
    }

    test.serial('healthy: targets up, rules loaded, dashboard queries, no alert', async (t) => {
      t.timeout(150_000);
      const started = Date.now();
      // Every target scraped (agents over the lab's underlay, the controller on loopback).
      for (;;) {
        const ts = await P().targets();
        if (ts.length === L().agents.length + 1 && ts.every((x) => x.health === 'up')) break;
        if (Date.now() - started > 30_000)
          throw new Error(`targets not all up: ${JSON.stringify(ts)}`);
        await sleep(500);
      }
      // Windows full (10 s), rates need two samples in 1m, findings need controller rounds.
      await sleep(20_000);
      const rules = await P().ruleHealth();
      t.true(rules.length > 20, `rules loaded: ${rules.length}`);
      t.deepEqual(
        rules.filter((r) => r.health === 'err').map((r) => `${r.name}: ${r.lastError ?? ''}`),
        [],
      );
      await waitQuiet(t, 'healthy');
      await checkQueries(t, 'healthy');
      // The PodMonitor's relabeling: each agent's `up` carries its Pod's node, the controller's
      // doesn't (its podmesh_node_coverage keeps its own `node`).
      const up = await P().query('up');
      t.deepEqual(
        up
          .map(
            (s) =>
              `${s.metric['container'] ?? '?'}/${s.metric['pod'] ?? '?'}@${s.metric['node'] ?? '-'}`,
          )
          .sort(),
        [
          ...L().agents.map(
            (a) => `agent/podmesh-agent-${a.network}-${a.node.name}@${a.node.name}`,
          ),
          'controller/podmesh-controller-0@-',
        ].sort(),
      );
      t.is(
        (await P().query('podmesh_node_coverage')).filter((s) => s.metric['node'] === undefined)
          .length,
        0,
      );
      // Kubernetes discovery: every agent watches the API server and found its 5 peers there;
      // with no apiserver.endpoints set it also follows the kubernetes Service's EndpointSlice.
      const synced = await P().query(
        'group by (source_node, network, resource) (podmesh_discovery_last_sync_timestamp_seconds)',
      );
      const watched = ['apiserver-endpointslices', 'endpointslices', 'nodes', 'pods'];
      t.is(synced.length, L().agents.length * watched.length, 'every resource per agent');
      t.deepEqual([...new Set(synced.map((s) => s.metric['resource']))].sort(), watched);
      const peers = await P().query('podmesh_peers');
      t.true(
        peers.length === L().agents.length &&
          peers.every((s) => s.value[1] === String(L().agents.length - 1)),
      );
      // The pair RTT histogram's rules on real scrapes (target labels, two agents a node, both
      // stating their zone): quantiles per pair, toward each node and per zone pair. The lab's
      // nodes alternate zone-a and zone-b (node-1 and node-3 in a, node-2 in b), and pod-to-pod
      // pairs always cross nodes: three ordered zone pairs, none inside zone-b.
      for (const r of ['pair', 'node', 'zone_pair'])
        for (const q of ['p50', 'p99'])
          t.true(
            (await P().query(`podmesh:${r}_round_trip_seconds:${q}_rate5m`)).length > 0,
            `podmesh:${r}_round_trip_seconds:${q}_rate5m has data`,
          );
      const zones = await P().query(
        'podmesh:zone_pair_round_trip_seconds:p50_rate5m{protocol="udp", path="pod-to-pod"}',
      );
      t.deepEqual(
        zones
          .map((s) => `${s.metric['source_zone'] ?? '?'}>${s.metric['target_zone'] ?? '?'}`)
          .sort(),
        ['zone-a>zone-a', 'zone-a>zone-b', 'zone-b>zone-a'],
      );
      // The web target is open and db closed from every agent: the ports panels show real data.
      const open = await P().query('podmesh_port_open_ratio{target="web"}');
      t.true(open.length === L().agents.length && open.every((s) => s.value[1] === '1'));
    });

    test.serial('20% loss node-1<->node-2: PodmeshPairLossHigh only', (t) =>
      faultPhase(
        t,
        'loss 20% node-1<->node-2',
        () => L().loss('node-1', 'node-2', 20),
        (a) =>
          a.labels['alertname'] === 'PodmeshPairLossHigh' &&
          [a.labels['source_node'], a.labels['target_node']].sort().join() === 'node-1,node-2',
        {
          // The pair drill-down for the faulted pair (Grafana: the user picks it).
          overrides: { 'podmesh-pair.json': { source_node: 'node-1', target_node: 'node-2' } },
        },
      ),
    );

    test.serial('DNS replica coredns-1 down: PodmeshDNSReplicaFailing only', (t) => {
      const r = L().dnsReplicas[0]!;
      return faultPhase(
        t,
        `dns replica ${r.name} down`,
        () => L().dnsReplicasDown([r.name]),
        (a) =>
          a.labels['alertname'] === 'PodmeshDNSReplicaFailing' &&
          (a.labels['server'] ?? '').startsWith(r.node.name),
      );
    });

    // Prometheus can't scrape the cut-off node's agents either: PodmeshAgentDown holds back for
    // a node with a network fault (joined on the `node` label the PodMonitor gives `up`).
    test.serial('partition of node-3: PodmeshNodeUnreachable only', (t) =>
      faultPhase(
        t,
        'partition node-3',
        () => L().partition('node-3'),
        (a) => a.labels['alertname'] === 'PodmeshNodeUnreachable' && a.labels['node'] === 'node-3',
      ),
    );

    test.serial('every dashboard query returned data in some phase', (t) => {
      for (const q of queries)
        t.log(`${hadData.has(q.where) ? `[${hadData.get(q.where)}]` : '[NO DATA]'} ${q.where}`);
      t.true(queries.length > 0);
      t.deepEqual(
        queries.filter((q) => !hadData.has(q.where)).map((q) => q.where),
        [],
        'dashboard queries that never returned data',
      );
    });
  },
);
