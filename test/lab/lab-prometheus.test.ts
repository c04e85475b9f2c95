// End to end through a real Prometheus: Debian's prometheus binary (a child process of this
// test, temp TSDB, loopback port) scrapes the namespace lab's agents and an in-process
// controller, and evaluates the committed alert rules (alerts/podmesh-rules.yaml). Checks that
// every dashboard query returns data in the phase where it should (healthy, or under a fault
// for the loss and findings panels), and that each lab fault (20% loss node-1<->node-2, one DNS
// replica down, node-3 partitioned) brings its own alert to pending or firing and no other.
// Needs root, iproute2, nftables, dnsmasq, conntrack and the prometheus package.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { triage } from '../../src/analysis/triage.ts';
import { SystemClock } from '../../src/core/clock.ts';
import { coverage } from '../../src/controller/coverage.ts';
import { Controller, type AgentDirectory } from '../../src/controller/controller.ts';
import { serveController } from '../../src/server/controller-app.ts';
import {
  dashboardExpressions,
  substitute,
  variableValues,
  type GrafanaDashboard,
} from '../../dashboards/src/promql.ts';
import { Prometheus, PROMETHEUS_BIN, type PromAlert } from '../support/prometheus.ts';
import { labSuite } from './gate.ts';
import { AGENT_PORTS, Lab, REPO, allLabLeftovers, type Undo } from './lab.ts';

const NEEDS =
  'the Prometheus lab needs root and iproute2, nftables, dnsmasq (dnsmasq-base), conntrack, prometheus';
const RULES = path.join(REPO, 'alerts/podmesh-rules.yaml');
const DASHBOARDS = path.join(REPO, 'dashboards');
/** Port targets live on this process's underlay address: no lab fault below touches it. */
const WEB_PORT = 18080;
const DB_PORT = 18081;
const DETECT_MS = 60_000;
const QUIET_MS = 90_000;
/** After the expected alert appears, how long no other alert may be pending or firing. */
const SETTLE_MS = 15_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Dashboard queries that can't return data in this lab, and why (reported, not skipped). */
const NO_DATA_EXPECTED: Record<string, string> = {
  'podmesh-agent-health.json: panel "Discovery sync age" A':
    'podmesh_discovery_last_sync_timestamp_seconds exists only with Kubernetes discovery; the lab agents use static peers',
};

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
          probes: { intervalMs: 250, timeoutMs: 200 },
          dns: { intervalMs: 500, timeoutMs: 400 },
          window: { seconds: 10 },
        },
      });
      const rootIp = lab.rootIp;
      web = net.createServer((s) => {
        s.on('error', () => undefined);
        s.resume();
      });
      await new Promise<void>((resolve, reject) => {
        web!.once('error', reject);
        web!.listen(WEB_PORT, rootIp, resolve);
      });
      await lab.startAgents(
        {},
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
      controller = new Controller({
        clock: new SystemClock(),
        directory,
        pullIntervalMs: 1000,
        pullConcurrency: 8,
        pullTimeoutMs: 800,
        version: 'lab',
        triage,
        log: () => undefined,
      });
      const served = await serveController(controller, '127.0.0.1', 0);
      controllerServer = served.server;
      // One job, as the PodMonitor makes ("namespace/name"), with the target labels it adds.
      prom = await Prometheus.start({
        intervalS: 1,
        ruleFiles: [RULES],
        jobs: [
          {
            job: 'podmesh/podmesh',
            targets: [
              ...agents.map((a) => ({
                address: `${a.address}:${AGENT_PORTS.http}`,
                labels: { namespace: 'podmesh', pod: podName(a), container: 'agent' },
              })),
              {
                address: `127.0.0.1:${served.port}`,
                labels: {
                  namespace: 'podmesh',
                  pod: 'podmesh-controller-0',
                  container: 'controller',
                },
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
        const res = await P().query(toPromQL(q, overrides[q.file] ?? {}));
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
     * Injects a fault and waits for the expected alert (pending or firing). From then on, for
     * SETTLE_MS, no other alert may be pending or firing (except `tolerated` ones, pending
     * only); no other alert may fire at any time. Alerts that were pending only before the
     * expected one appeared (the windows crossing thresholds at different moments) are logged.
     */
    async function faultPhase(
      t: ExecutionContext,
      name: string,
      inject: () => Promise<Undo>,
      expected: (a: PromAlert) => boolean,
      o: {
        tolerated?: (a: PromAlert) => boolean;
        overrides?: Record<string, Record<string, string>>;
      } = {},
    ): Promise<void> {
      t.timeout(QUIET_MS * 2 + DETECT_MS + SETTLE_MS + 60_000);
      await waitQuiet(t, `${name}: before`);
      const t0 = Date.now();
      const undo = await inject();
      const others = new Map<string, Seen>();
      const settleViolations = new Set<string>();
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
          const s = others.get(k) ?? { firstMs: ms, lastMs: ms, states: new Set<string>() };
          s.lastMs = ms;
          s.states.add(a.state);
          others.set(k, s);
          const tolerated = o.tolerated?.(a) === true && a.state === 'pending';
          if (matchedAt !== undefined && !tolerated) settleViolations.add(`${k} ${a.state}`);
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
      t.deepEqual(
        [...settleViolations],
        [],
        `${name}: other alerts pending/firing after the expected one`,
      );
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
          // Known cascade, reported (not fixed here): the DNS Service sends half the lookups of
          // node-1 and node-2 to the replica on the other node, across the lossy link, so their
          // Service failure ratio passes 10 %, and no rule holds it back for pair loss.
          tolerated: (a) =>
            a.labels['alertname'] === 'PodmeshDNSFailureRatioHigh' &&
            ['node-1', 'node-2'].includes(a.labels['source_node'] ?? ''),
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

    test.serial('partition of node-3: PodmeshNodeUnreachable only', (t) => {
      const cut = new Set(
        L()
          .agents.filter((a) => a.node.name === 'node-3')
          .map((a) => `${a.address}:${AGENT_PORTS.http}`),
      );
      return faultPhase(
        t,
        'partition node-3',
        () => L().partition('node-3'),
        (a) => a.labels['alertname'] === 'PodmeshNodeUnreachable' && a.labels['node'] === 'node-3',
        {
          // Prometheus can't scrape the cut-off node's agents either; the rule's `for: 5m`
          // is what keeps that from firing (see the report: up has no node label to join on).
          tolerated: (a) =>
            a.labels['alertname'] === 'PodmeshAgentDown' && cut.has(a.labels['instance'] ?? ''),
        },
      );
    });

    test.serial('every dashboard query returned data in some phase', (t) => {
      for (const q of queries)
        t.log(`${hadData.has(q.where) ? `[${hadData.get(q.where)}]` : '[NO DATA]'} ${q.where}`);
      const missing = queries.filter((q) => !hadData.has(q.where)).map((q) => q.where);
      for (const w of missing) t.log(`no data: ${w}: ${NO_DATA_EXPECTED[w] ?? 'UNEXPLAINED'}`);
      t.deepEqual(
        missing.filter((w) => NO_DATA_EXPECTED[w] === undefined),
        [],
        'queries without data and without a known reason',
      );
    });
  },
);
