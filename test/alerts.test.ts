// The alert rules (alerts/podmesh-rules.yaml) as Prometheus sees them: promtool checks the file
// and runs its unit tests (alerts/tests/), every alert carries what Alertmanager and the on-call
// need (severity, summary, description, a runbook that exists), every alert is tested both
// firing and in a near miss, and the copies in deploy/components (the PrometheusRule, the
// plain-Prometheus rule file) are generated from it.
//
// Then "one fault, one alert": a simulated 3-node cluster (pod and host agents, two DNS
// replicas, two port targets, a controller) is put through each fault the lab can inject, and
// promtool evaluates the real rules over it; exactly the alerts named for that fault may fire.
//
// Needs promtool (Debian: prometheus); set PROMTOOL to use another binary.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { parse, stringify } from 'yaml';
import {
  DEFAULT_AGENT_SELECTOR,
  PLAIN_RULES_PATH,
  PROMETHEUS_RULE_PATH,
  RULES_PATH,
  RUNBOOK_BASE_URL,
  renderPrometheusRule,
  runbookFile,
  withAgentSelector,
} from '../src/gen-alerts.ts';

const ROOT = new URL('../', import.meta.url);
const path = (p: string): string => new URL(p, ROOT).pathname;
const read = (p: string): string => readFileSync(path(p), 'utf8');
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';

interface Rule {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}
interface RuleFile {
  readonly groups: readonly { readonly name: string; readonly rules: readonly Rule[] }[];
}
interface AlertTest {
  readonly alertname: string;
  readonly eval_time: string;
  readonly exp_alerts?: readonly {
    readonly exp_labels?: Record<string, string>;
    readonly exp_annotations?: Record<string, string>;
  }[];
}
interface TestCase {
  readonly name?: string;
  readonly alert_rule_test?: readonly AlertTest[];
}

const rules = parse(read(RULES_PATH)) as RuleFile;
const alerts = rules.groups.flatMap((g) => g.rules.filter((r) => r.alert !== undefined));
const alertNames = alerts.map((a) => a.alert!);
const testFiles = readdirSync(path('alerts/tests'))
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((f) => `alerts/tests/${f}`);

/** Runs promtool; fails the test (never skips) when it isn't installed. */
function promtool(t: ExecutionContext, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(PROMTOOL, args, { encoding: 'utf8', cwd: path('.') });
  if (r.error !== undefined) {
    t.fail(
      `cannot run ${PROMTOOL} (${r.error.message}): install the Debian package \`prometheus\` ` +
        '(apt-get install prometheus), which provides /usr/bin/promtool, or set PROMTOOL',
    );
    return { ok: false, out: '' };
  }
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

test('promtool accepts the rule file', (t) => {
  const r = promtool(t, ['check', 'rules', RULES_PATH]);
  t.true(r.ok, r.out);
  const count = rules.groups.reduce((n, g) => n + g.rules.length, 0);
  t.true(r.out.includes(`SUCCESS: ${count} rules found`), r.out);
});

test('there are promtool unit tests', (t) => {
  t.true(testFiles.length > 0, 'no alerts/tests/*.yaml');
});

for (const file of testFiles) {
  test(`promtool test rules ${file}`, (t) => {
    const r = promtool(t, ['test', 'rules', file]);
    t.true(r.ok, r.out);
    t.regex(r.out, /SUCCESS/);
  });
}

test('every alert has a severity, a summary, a description and a runbook that exists', (t) => {
  t.true(alerts.length >= 13, `only ${alerts.length} alerts`);
  // One name may come at two severities (PairLossHigh: a warning, and critical when heavier),
  // never twice at the same one.
  const bySeverity = alerts.map((a) => `${a.alert!} ${a.labels?.severity ?? ''}`);
  t.is(new Set(bySeverity).size, bySeverity.length, 'an alert name twice at one severity');
  for (const a of alerts) {
    const name = a.alert!;
    t.regex(name, /^Podmesh[A-Z][A-Za-z]+$/);
    t.true(['critical', 'warning', 'info'].includes(a.labels?.severity ?? ''), `${name}: severity`);
    t.truthy(a.for, `${name}: no \`for\`, it would fire on one evaluation`);
    for (const key of ['summary', 'description'])
      t.true((a.annotations?.[key]?.trim().length ?? 0) > 10, `${name}: ${key}`);
    t.is(a.annotations?.runbook_url, `${RUNBOOK_BASE_URL}${runbookFile(name)}`, name);
    t.true(existsSync(path(`docs/runbooks/${runbookFile(name)}`)), `${name}: no runbook page`);
  }
  for (const r of rules.groups.flatMap((g) => g.rules.filter((x) => x.record !== undefined)))
    t.regex(r.record!, /^podmesh:[a-z0-9_]+:[a-z0-9_]+$/, 'level:metric:operations');
});

test('runbook file names follow kebab-case', (t) => {
  t.is(runbookFile('PodmeshMTUBlackHole'), 'podmesh-mtu-black-hole.md');
  t.is(runbookFile('PodmeshDNSReplicaFailing'), 'podmesh-dns-replica-failing.md');
  t.is(runbookFile('PodmeshPairLossHigh'), 'podmesh-pair-loss-high.md');
});

test('every runbook page belongs to an alert and the index lists them all', (t) => {
  const pages = readdirSync(path('docs/runbooks')).filter((f) => f.endsWith('.md'));
  const expected = new Set(alertNames.map(runbookFile));
  for (const p of pages) if (p !== 'README.md') t.true(expected.has(p), `${p}: no such alert`);
  const index = read('docs/runbooks/README.md');
  for (const name of alertNames) {
    t.true(index.includes(`(${runbookFile(name)})`), `README.md does not link ${name}`);
    const page = read(`docs/runbooks/${runbookFile(name)}`);
    t.true(page.startsWith(`# ${name}\n`), `${runbookFile(name)} must start with "# ${name}"`);
    for (const section of ['## Meaning', '## Confirm', '## Fix'])
      t.true(page.includes(`\n${section}`), `${runbookFile(name)}: no "${section}" section`);
  }
});

test('every alert has a firing test that checks its annotations and a near-miss test', (t) => {
  const cases = testFiles.flatMap((f) => (parse(read(f)) as { tests: TestCase[] }).tests);
  for (const name of alertNames) {
    const mine = cases.map((c) => (c.alert_rule_test ?? []).filter((a) => a.alertname === name));
    const firing = mine.flat().filter((a) => (a.exp_alerts ?? []).length > 0);
    t.true(firing.length > 0, `${name}: no test where it fires`);
    for (const f of firing)
      for (const e of f.exp_alerts!)
        for (const key of ['summary', 'description', 'runbook_url'])
          t.truthy(e.exp_annotations?.[key], `${name}: a firing test does not check ${key}`);
    // A near miss is a case where the alert is checked and never expected to fire (the quiet
    // check before `for` runs out inside a firing case doesn't count).
    const nearMiss = mine.filter(
      (m) => m.length > 0 && m.every((a) => (a.exp_alerts ?? []).length === 0),
    );
    t.true(nearMiss.length > 0, `${name}: no near-miss test where it stays quiet`);
  }
});

test('the PrometheusRule (component prometheus-operator) is generated from the rule file', (t) => {
  const text = read(RULES_PATH);
  const committed = read(PROMETHEUS_RULE_PATH);
  t.is(committed, renderPrometheusRule(text), `run: npx tsx src/gen-alerts.ts`);
  const obj = parse(committed) as {
    metadata: { namespace: string; labels: Record<string, string> };
    spec: { groups: unknown };
  };
  t.is(obj.metadata.namespace, 'podmesh');
  t.is(obj.metadata.labels['app.kubernetes.io/name'], 'podmesh');
  t.deepEqual(obj.spec.groups, rules.groups);
  t.notThrows(() => new PrometheusRule(obj as never).validate());
  t.is(read(PLAIN_RULES_PATH), text, `the plain-Prometheus copy: run npx tsx src/gen-alerts.ts`);
  t.throws(() => renderPrometheusRule('groups: []\n'), { message: /no groups/ });
  t.throws(() => renderPrometheusRule('groups: [\n'));
});

// ---------------------------------------------------------------------------------------------
// One fault, one alert.

type Net = 'pod' | 'host';
interface Agent {
  readonly node: string;
  readonly net: Net;
}
const NODES = ['node-1', 'node-2', 'node-3'];
const AGENTS: readonly Agent[] = NODES.flatMap((node) =>
  (['pod', 'host'] as const).map((net) => ({ node, net })),
);
/** Cluster DNS replicas are Pods on these nodes (their `server` label is the node). */
const REPLICAS = ['node-1', 'node-2'];
/** Port target "web" (expected open) is a Pod on node-2; "metadata" is expected closed. */
const WEB: Agent = { node: 'node-2', net: 'pod' };
const PROBES: readonly (readonly [protocol: string, size: string])[] = [
  ['udp', 'small'],
  ['udp', 'mtu'],
  ['tcp', 'small'],
];
const same = (a: Agent, b: Agent): boolean => a.node === b.node && a.net === b.net;

interface Fault {
  readonly name: string;
  /** Alert name (without the Podmesh prefix) → how many instances fire. */
  readonly fires: Readonly<Record<string, number>>;
  /** Label sets, each of which must be among the firing alerts. */
  readonly where?: readonly Readonly<Record<string, string>>[];
  /** The IP path from an agent to an endpoint (an agent, a replica, a port target) is cut. */
  readonly cut?: (src: Agent, dst: Agent) => boolean;
  readonly loss?: (src: Agent, dst: Agent, protocol: string, size: string) => number | undefined;
  readonly rtt?: (src: Agent, dst: Agent) => number | undefined;
  readonly agent?: (a: Agent) => 'pending' | 'scrape-failing' | 'unscraped' | undefined;
  readonly replicasDown?: readonly string[];
  readonly vipBroken?: boolean;
  readonly dnsBlocked?: string;
  readonly upstreamDown?: boolean;
  readonly dnsSlow?: (a: Agent) => boolean;
  readonly late?: (a: Agent) => number;
  readonly webBlocked?: boolean;
  readonly closedPortOpen?: boolean;
  /** The API server (VIP and endpoints) is blocked from this node's agents. */
  readonly apiBlockedFrom?: string;
  readonly controller?: 'stuck' | { readonly cannotPull: number };
  /** Findings the controller's triage holds (podmesh_finding_active). */
  readonly findings?: readonly { kind: string; severity: string; subject: string }[];
  /** The agents' Kubernetes discovery has heard nothing from the API server for a while. */
  readonly apiDown?: boolean;
}

const partition =
  (node: string) =>
  (s: Agent, d: Agent): boolean =>
    (s.node === node) !== (d.node === node);
// A node dropping inbound VXLAN: cross-node traffic to or from it whose target is a Pod breaks
// (docs/lab.md: pod-to-pod and host-to-pod break, host-to-host and pod-to-host don't).
const vxlan =
  (node: string) =>
  (s: Agent, d: Agent): boolean =>
    s.node !== d.node && d.net === 'pod' && (s.node === node || d.node === node);
const between = (a: string, b: string, s: Agent, d: Agent): boolean =>
  (s.node === a && d.node === b) || (s.node === b && d.node === a);
// Prometheus runs on a node the fault leaves alone, so it can't scrape the agents that the
// fault cuts off from the other nodes: their `up` is 0 and their own series are gone.
const unscrapable =
  (node: string, net?: Net) =>
  (a: Agent): 'scrape-failing' | undefined =>
    a.node === node && (net === undefined || a.net === net) ? 'scrape-failing' : undefined;

const FAULTS: readonly Fault[] = [
  { name: 'healthy cluster', fires: {} },
  {
    // node-1's and node-2's lookups through the DNS Service that land on the replica across
    // the lossy link fail, or wait for TCP retransmissions, too: pair loss explains them, and
    // only PairLossHigh fires.
    name: '20% loss between node-1 and node-2 (lab: fault loss)',
    fires: { PairLossHigh: 8 },
    // 20% pages: each lossy pair's alert is critical (and warning, which Alertmanager inhibits).
    where: [
      {
        alertname: 'PodmeshPairLossHigh',
        severity: 'critical',
        source_node: 'node-1',
        target_node: 'node-2',
        path: 'pod-to-pod',
      },
    ],
    loss: (s, d) => (between('node-1', 'node-2', s, d) ? 0.2 : undefined),
    dnsSlow: (a) => a.node === 'node-1' || a.node === 'node-2',
  },
  {
    name: 'node-3 partitioned (lab: fault partition)',
    fires: { NodeUnreachable: 1 },
    where: [{ alertname: 'PodmeshNodeUnreachable', node: 'node-3' }],
    cut: partition('node-3'),
    agent: unscrapable('node-3'),
    controller: { cannotPull: 2 },
  },
  {
    name: 'node-1, home of a DNS replica, partitioned',
    fires: { NodeUnreachable: 1 },
    where: [{ alertname: 'PodmeshNodeUnreachable', node: 'node-1' }],
    cut: partition('node-1'),
    agent: unscrapable('node-1'),
  },
  {
    // Documented: a port target living on the cut-off node is unreachable too, and says so.
    name: 'node-2, home of a DNS replica and of port target web, partitioned',
    fires: { NodeUnreachable: 1, PortUnreachable: 2 },
    where: [{ alertname: 'PodmeshNodeUnreachable', node: 'node-2' }],
    cut: partition('node-2'),
    agent: unscrapable('node-2'),
  },
  {
    name: 'inbound VXLAN dropped on node-3 (lab: fault vxlan)',
    fires: { PodNetworkCrossNodeFailing: 1 },
    where: [{ alertname: 'PodmeshPodNetworkCrossNodeFailing', node: 'node-3' }],
    cut: vxlan('node-3'),
    agent: unscrapable('node-3', 'pod'),
  },
  {
    name: 'inbound VXLAN dropped on node-1, home of a DNS replica',
    fires: { PodNetworkCrossNodeFailing: 1 },
    where: [{ alertname: 'PodmeshPodNetworkCrossNodeFailing', node: 'node-1' }],
    cut: vxlan('node-1'),
    agent: unscrapable('node-1', 'pod'),
  },
  {
    name: 'MTU black hole on the underlay (lab: fault mtu)',
    fires: { MTUBlackHole: 6 },
    loss: (s, d, _p, size) => (size === 'mtu' && s.node !== d.node ? 1 : undefined),
  },
  {
    name: "node-2 pod agent's TCP port dropped (lab: fault port node-2/pod 9863)",
    fires: { PairLossHigh: 5 },
    where: [{ alertname: 'PodmeshPairLossHigh', source_node: 'node-2', target_node: 'node-2' }],
    loss: (_s, d, protocol) => (protocol === 'tcp' && same(d, WEB) ? 1 : undefined),
  },
  {
    name: 'DNS replica on node-1 down (lab: fault dns-down coredns-1)',
    fires: { DNSReplicaFailing: 1 },
    where: [{ alertname: 'PodmeshDNSReplicaFailing', server: 'node-1' }],
    replicasDown: ['node-1'],
  },
  {
    name: 'every DNS replica down (lab: fault dns-down)',
    fires: { DNSFailureRatioHigh: 6 },
    replicasDown: REPLICAS,
  },
  {
    name: 'DNS Service VIP broken (lab: fault dns-vip)',
    fires: { DNSFailureRatioHigh: 6 },
    vipBroken: true,
  },
  {
    name: 'DNS blocked out of node-3 (lab: fault dns-block node-3)',
    fires: { DNSFailureRatioHigh: 2 },
    where: [{ alertname: 'PodmeshDNSFailureRatioHigh', source_node: 'node-3', network: 'pod' }],
    dnsBlocked: 'node-3',
  },
  {
    name: "cluster DNS's upstream down",
    fires: { DNSExternalLookupsFailing: 3 },
    upstreamDown: true,
  },
  {
    name: 'cluster DNS slow',
    fires: { DNSLatencyHigh: 12 },
    dnsSlow: () => true,
  },
  {
    name: 'port target web blocked',
    fires: { PortUnreachable: 2 },
    where: [{ alertname: 'PodmeshPortUnreachable', target: 'web', network: 'host' }],
    webBlocked: true,
  },
  {
    // A firewall on node-2 drops TCP to the API server: its two agents reach neither the VIP
    // nor an endpoint (lab: lab-apiserver.test.ts).
    name: 'the API server blocked from node-2',
    fires: { ApiServerUnreachable: 1 },
    where: [{ alertname: 'PodmeshApiServerUnreachable', source_node: 'node-2' }],
    apiBlockedFrom: 'node-2',
  },
  {
    name: 'a port that must stay closed accepts connections',
    fires: { PortUnexpectedlyOpen: 2 },
    closedPortOpen: true,
  },
  {
    name: "node-2's pod agent starved: its own latency and DNS timings inflate",
    fires: { AgentStarved: 1 },
    late: (a) => (same(a, WEB) ? 0.3 : 0),
    rtt: (s) => (same(s, WEB) ? 0.2 : undefined),
    dnsSlow: (a) => same(a, WEB),
  },
  {
    name: '80ms round trips between node-1 and node-2',
    fires: { PairLatencyHigh: 8 },
    rtt: (s, d) => (between('node-1', 'node-2', s, d) ? 0.08 : undefined),
  },
  {
    // The controller's triage judges each path against its own hour: node-2's round trips went
    // from 0.5 ms to 2 ms, far under PairLatencyHigh's 50 ms, and its latency-node finding is
    // what fires.
    name: "node-2's round trips quadruple against their own baseline (0.5 ms to 2 ms)",
    fires: { LatencyShift: 1 },
    where: [{ alertname: 'PodmeshLatencyShift', kind: 'latency-node', subject: 'node-2' }],
    rtt: (s, d) =>
      s.node !== d.node && (s.node === 'node-2' || d.node === 'node-2') ? 0.002 : undefined,
    findings: [{ kind: 'latency-node', severity: 'warning', subject: 'node-2' }],
  },
  {
    name: "node-2's host agent Pod stuck Pending",
    fires: { AgentMissing: 1 },
    agent: (a) => (a.node === 'node-2' && a.net === 'host' ? 'pending' : undefined),
  },
  {
    name: "Prometheus can't scrape node-2's host agent",
    fires: { AgentDown: 1 },
    agent: (a) => (a.node === 'node-2' && a.net === 'host' ? 'scrape-failing' : undefined),
  },
  {
    name: "node-2's host agent is not a scrape target at all",
    fires: { AgentNotScraped: 1 },
    agent: (a) => (a.node === 'node-2' && a.net === 'host' ? 'unscraped' : undefined),
  },
  { name: 'controller stuck', fires: { ControllerDown: 1 }, controller: 'stuck' },
  {
    // Every agent keeps probing the peers it knew; only the discovery alert says anything.
    name: 'Kubernetes API server unreachable for the agents since 10 minutes before',
    fires: { DiscoveryStale: 1 },
    apiDown: true,
  },
  {
    name: "controller can't read two agents",
    fires: { ControllerCannotPullAgents: 1 },
    controller: { cannotPull: 2 },
  },
];

const STEPS = 50; // 12.5 minutes at 15 s: every `for` (10m at most) has run out by EVAL
const EVAL = '12m';
const constant = (v: number): string => `${v}x${STEPS}`;
const labels = (l: Record<string, string>): string =>
  `{${Object.entries(l)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(',')}}`;

function scenarioSeries(f: Fault): { series: string; values: string }[] {
  const out: { series: string; values: string }[] = [];
  const add = (name: string, l: Record<string, string>, values: string): void => {
    out.push({ series: `${name}${labels(l)}`, values });
  };
  const state = (a: Agent): ReturnType<NonNullable<Fault['agent']>> => f.agent?.(a);
  const probed = AGENTS.filter((a) => state(a) !== 'pending');
  const scraped = probed.filter((a) => state(a) === undefined);
  const cut = (s: Agent, d: Agent): boolean => f.cut?.(s, d) ?? false;
  const pod = (a: Agent): string =>
    `podmesh-agent-${a.net === 'host' ? 'host-' : ''}${a.node.slice(-1)}`;
  // As the PodMonitor labels an agent's target: `node` is the Pod's node.
  const target = (a: Agent): Record<string, string> => ({
    job: 'podmesh/podmesh',
    namespace: 'podmesh',
    pod: pod(a),
    container: 'agent',
    node: a.node,
  });
  const self = (a: Agent): Record<string, string> => ({
    ...target(a),
    source_node: a.node,
    network: a.net,
  });

  for (const a of probed)
    if (state(a) !== 'unscraped')
      add('up', target(a), constant(state(a) === 'scrape-failing' ? 0 : 1));
  for (const s of scraped) {
    const peers = probed.filter((d) => !same(s, d));
    add('podmesh_peers', self(s), constant(peers.length));
    // Healthy: synced at every step; during an API outage frozen since 10 minutes earlier.
    for (const resource of ['pods', 'nodes', 'endpointslices'])
      add(
        'podmesh_discovery_last_sync_timestamp_seconds',
        { ...self(s), resource },
        f.apiDown ? constant(-600) : `0+15x${STEPS}`,
      );
    // What a full window holds at the default settings (60 s; probes every 1 s, DNS lookups
    // and port connects every 5 s): the rules derive their minimum sample sizes from it.
    for (const [kind, n] of [
      ['pair', 60],
      ['dns', 12],
      ['port', 12],
    ] as const)
      add('podmesh_window_expected_probes', { ...self(s), kind }, constant(n));
    add('podmesh_probe_late_ratio', self(s), constant(f.late?.(s) ?? 0));
    for (const d of peers) {
      for (const [protocol, size] of PROBES) {
        const l = {
          ...target(s),
          source_node: s.node,
          target_node: d.node,
          path: `${s.net}-to-${d.net}`,
          protocol,
          size,
        };
        const loss = cut(s, d) ? 1 : (f.loss?.(s, d, protocol, size) ?? 0);
        add('podmesh_pair_loss_ratio', l, constant(loss));
        add('podmesh_pair_window_probes', l, constant(60));
        if (size === 'small' && loss < 1)
          add(
            'podmesh_pair_rtt_seconds',
            { ...l, quantile: '0.9' },
            constant(f.rtt?.(s, d) ?? 0.0005),
          );
      }
    }

    // DNS, as the lab's dnsmasq replicas behind an nftables VIP behave. A lookup and its answer
    // both cross the path to the replica's Pod, so loss on it fails 1 - (1 - loss)^2 of them;
    // the VIP spreads lookups evenly over the replicas.
    const blocked = f.dnsBlocked === s.node;
    const replicaAnswered = (r: string): number => {
      const to: Agent = { node: r, net: 'pod' };
      if (blocked || (f.replicasDown ?? []).includes(r) || cut(s, to)) return 0;
      return (1 - (f.loss?.(s, to, 'udp', 'small') ?? 0)) ** 2;
    };
    const vip =
      f.vipBroken || blocked
        ? 0
        : REPLICAS.reduce((sum, r) => sum + replicaAnswered(r), 0) / REPLICAS.length;
    for (const server of ['service', ...REPLICAS]) {
      const kind = server === 'service' ? 'service' : 'replica';
      const answered = server === 'service' ? vip : replicaAnswered(server);
      for (const query of ['service', 'external']) {
        const l = { ...self(s), server_kind: kind, server, query, transport: 'udp' };
        const ok = query === 'external' && f.upstreamDown ? 0 : answered;
        add('podmesh_dns_answered_ratio', l, constant(ok));
        add('podmesh_dns_window_requests', l, constant(12));
      }
    }
    const slow = f.dnsSlow?.(s) ?? false;
    for (const kind of ['service', 'replica']) {
      const l = { ...self(s), server_kind: kind, transport: 'udp' };
      for (const [le, fast, late] of [
        ['0.005', 4, 0],
        ['0.25', 4, 0],
        ['0.5', 4, 4],
        ['+Inf', 4, 4],
      ] as const)
        add(
          'podmesh_dns_request_duration_seconds_bucket',
          { ...l, le },
          `0+${slow ? late : fast}x${STEPS}`,
        );
      add('podmesh_dns_request_duration_seconds_count', l, `0+4x${STEPS}`);
    }

    for (const [name, expected, open] of [
      ['web', 'open', f.webBlocked || cut(s, WEB) ? 0 : 1],
      ['metadata', 'closed', f.closedPortOpen ? 1 : 0],
    ] as const) {
      const l = { ...self(s), target: name, expected };
      add('podmesh_port_open_ratio', l, constant(open));
      add('podmesh_port_window_checks', l, constant(12));
    }
    // The API server checks: the VIP and two endpoints, 6 checks a window each.
    for (const [kind, server] of [
      ['service', 'service'],
      ['endpoint', '10.0.0.1:6443'],
      ['endpoint', '10.0.0.2:6443'],
    ] as const) {
      const l = { ...self(s), server_kind: kind, server };
      add('podmesh_apiserver_ok_ratio', l, constant(f.apiBlockedFrom === s.node ? 0 : 1));
      add('podmesh_apiserver_window_checks', l, constant(6));
    }
  }

  // The controller (on node-1) and what it reports.
  const controller = { job: 'podmesh/podmesh', namespace: 'podmesh', container: 'controller' };
  add('up', { ...controller, pod: 'podmesh-controller-1' }, constant(1));
  add(
    'podmesh_controller_last_collection_timestamp_seconds',
    { ...controller, pod: 'podmesh-controller-1' },
    f.controller === 'stuck' ? constant(0) : `0+15x${STEPS}`,
  );
  for (const x of f.findings ?? [])
    add(
      'podmesh_finding_active',
      { ...controller, pod: 'podmesh-controller-1', ...x },
      constant(1),
    );
  const cannotPull = typeof f.controller === 'object' ? f.controller.cannotPull : 0;
  for (const [st, n] of [
    ['ok', probed.length - cannotPull],
    ['timeout', cannotPull],
  ] as const)
    add(
      'podmesh_controller_agents',
      { ...controller, pod: 'podmesh-controller-1', state: st },
      constant(n),
    );
  for (const a of AGENTS) {
    const pending = state(a) === 'pending';
    add(
      'podmesh_node_coverage',
      {
        ...controller,
        pod: 'podmesh-controller-1',
        node: a.node,
        network: a.net,
        reason: pending ? 'pending' : 'ready',
      },
      constant(pending ? 0 : 1),
    );
  }
  return out;
}

function scenarioTest(f: Fault): unknown {
  const fires = Object.entries(f.fires).sort(([a], [b]) => a.localeCompare(b));
  return {
    name: f.name,
    interval: '15s',
    input_series: scenarioSeries(f),
    promql_expr_test: [
      {
        // One incident per alert and label set: an alert at two severities (PairLossHigh) counts
        // once; a `where` naming a severity checks that one.
        expr: 'count by (alertname) (max without (severity) (ALERTS{alertstate="firing"}))',
        eval_time: EVAL,
        exp_samples: fires.map(([name, n]) => ({
          labels: `{alertname="Podmesh${name}"}`,
          value: n,
        })),
      },
      ...(f.where ?? []).map((l) => ({
        expr:
          l['severity'] === undefined
            ? `count(max without (severity) (ALERTS${labels({ ...l, alertstate: 'firing' })})) > 0`
            : `count(ALERTS${labels({ ...l, alertstate: 'firing' })}) > 0`,
        eval_time: EVAL,
        exp_samples: [{ labels: '{}', value: 1 }],
      })),
    ],
  };
}

test('every alert is the answer to one of the simulated faults', (t) => {
  const covered = new Set(FAULTS.flatMap((f) => Object.keys(f.fires).map((n) => `Podmesh${n}`)));
  t.deepEqual(
    alertNames.filter((n) => !covered.has(n)),
    [],
    'alerts no scenario fires',
  );
});

/** Runs one scenario through promtool against the real rule file (or the given text of one). */
function runScenario(
  t: ExecutionContext,
  f: Fault,
  o: { rules?: string; job?: string } = {},
): { ok: boolean; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-alerts-'));
  try {
    const file = join(dir, 'scenario.yaml');
    let rulesFile = path(RULES_PATH);
    if (o.rules !== undefined) {
      rulesFile = join(dir, 'rules.yaml');
      writeFileSync(rulesFile, o.rules);
    }
    const test = scenarioTest(f) as { input_series: { series: string }[] };
    if (o.job !== undefined)
      for (const s of test.input_series)
        s.series = s.series.replace('job="podmesh/podmesh"', `job=${JSON.stringify(o.job)}`);
    writeFileSync(
      file,
      stringify({
        rule_files: [rulesFile],
        evaluation_interval: '30s',
        tests: [test],
      }),
    );
    return promtool(t, ['test', 'rules', file]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const f of FAULTS) {
  const fires = Object.entries(f.fires).map(([n, c]) => `${n} x${c}`);
  test(`fault: ${f.name} -> ${fires.length > 0 ? fires.join(', ') : 'nothing'}`, (t) => {
    const r = runScenario(t, f);
    t.true(r.ok, r.out);
  });
}

test('the scenarios can fail: an alert that should stay quiet is caught', (t) => {
  // The partition, claimed to fire only PairLossHigh: promtool must disagree.
  const partitioned = FAULTS.find((f) => f.name.startsWith('node-3 partitioned'))!;
  const r = runScenario(t, { ...partitioned, fires: { PairLossHigh: 8 }, where: [] });
  t.false(r.ok, r.out);
  t.regex(r.out, /got: \{alertname="PodmeshNodeUnreachable"\} 1/);
});

test('the agent selector is set in one place: a pack for another job name alerts on its agents', (t) => {
  const rules = read(RULES_PATH);
  const custom = withAgentSelector(rules, 'job="kubernetes-pods", container="agent"');
  t.false(custom.includes(DEFAULT_AGENT_SELECTOR));
  // Four expressions and the header that names the selector.
  t.is(custom.split('{job="kubernetes-pods", container="agent"}').length - 1, 5);
  t.throws(() => withAgentSelector('groups: []\n', 'job="x"'), { message: /not used/ });
  t.throws(() => withAgentSelector(rules, '{job="x"}'), { message: /without braces/ });
  const down = FAULTS.find((f) => f.name === "Prometheus can't scrape node-2's host agent")!;
  // Targets of a job the shipped selector doesn't match: the shipped pack stays quiet...
  const shipped = runScenario(t, down, { job: 'kubernetes-pods' });
  t.false(shipped.ok, shipped.out);
  // ...and the pack written for that job fires.
  const r = runScenario(t, down, { job: 'kubernetes-pods', rules: custom });
  t.true(r.ok, r.out);
});
