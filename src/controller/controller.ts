// `podmesh controller`: pulls every agent's row on an interval, keeps the latest matrix and
// coverage, exports controller metrics and reports a node that loses coverage (once, on the
// transition) through an EventSink. It only reads what agents measured; agents never depend on
// it, so monitoring goes on while it is down.

import { Registry } from 'prom-client';
import type { Snapshot } from '../analysis/types.ts';
import { API_VERSION } from '../api/agent-row.ts';
import type { CoverageReport, NodeCoverage } from '../api/coverage.ts';
import type { Change } from '../api/changes.ts';
import type { Finding, FindingsReport } from '../api/findings.ts';
import { AGENT_STATES, type Matrix } from '../api/matrix.ts';
import type { PlumbingReport } from '../api/plumbing.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { createMetrics, type Metrics } from '../metrics/catalogue.ts';
import { MatrixCollector } from './collector.ts';
import { SUMMARY_GROUPINGS, type MatrixSummary } from '../api/matrix-summary.ts';
import { summariseMatrix } from './matrix-summary.ts';
import { FindingTracker } from './findings.ts';
import { NODE_EVENT_DROPS, planNodeEvents, type NodeEvent } from './node-events.ts';
import {
  conditionWrites,
  type NodeConditionView,
  type NodeConditionWrite,
} from './node-conditions.ts';
import type { RttHistory } from './latency-history.ts';
import type { AgentEndpoint } from './matrix.ts';
import type { PullFetch } from './pull-client.ts';

/** Where the controller learns which agents exist and whether nodes are covered. */
export interface AgentDirectory {
  endpoints(): readonly AgentEndpoint[];
  /** undefined when the directory can't tell (static lists, the demo). */
  coverage(): readonly NodeCoverage[] | undefined;
}

export interface EventSink {
  coverageLost(node: string, network: 'pod' | 'host', reason: string, detail: string): void;
  coverageRestored(node: string, network: 'pod' | 'host'): void;
  findingOpened?(f: Finding): void;
  findingCleared?(f: Finding): void;
  /** A node-scoped finding's transition as an Event on its Node (node-events.ts). */
  nodeEvent?(e: NodeEvent): void;
}

/** The opt-in Node condition (controller.nodeConditions, node-conditions.ts). */
export interface NodeConditionOptions {
  /** Every Node the informer holds, with its PodmeshNetworkProblem condition. */
  readonly nodes: () => readonly NodeConditionView[];
  readonly write: (w: NodeConditionWrite) => void;
}

/** Node Events (controller.nodeEvents): which Nodes exist, and the per-round cap. */
export interface NodeEventOptions {
  /** The Nodes the controller's informer holds; no Event is written on any other. */
  readonly knownNodes: () => Iterable<string>;
  readonly maxPerRound: number;
}

/** Triage: the matrix read the way an expert would (src/analysis); injected for tests. */
export type TriageFn = (s: Snapshot) => Finding[];

export interface ControllerOptions {
  readonly clock: Clock;
  readonly directory: AgentDirectory;
  readonly pullIntervalMs: number;
  readonly pullConcurrency: number;
  readonly pullTimeoutMs: number;
  /** How agents are reached when their HTTP port is secured (pull-client.ts). */
  readonly pullFetch?: PullFetch;
  /** The whole round's deadline (controller.roundTimeoutMs); the collector's default if absent. */
  readonly roundTimeoutMs?: number;
  readonly version: string;
  readonly events?: EventSink;
  /** Absent: node-scoped findings are not written on their Nodes. */
  readonly nodeEvents?: NodeEventOptions;
  /** Absent (the default): no Node condition is written. */
  readonly nodeConditions?: NodeConditionOptions;
  /** Without it the controller reports no findings (and says so in /api/v1/findings). */
  readonly triage?: TriageFn;
  /** The cluster's CNI/proxy/CoreDNS health for triage (plumbing.ts); absent without Kubernetes. */
  readonly plumbing?: () => PlumbingReport | undefined;
  /** What changed around an open finding's start (changes.ts); absent without Kubernetes. */
  readonly changes?: (f: Finding, sinceMs: number) => readonly Change[];
  /** Each link's RTT history, handed to triage as baselines (the latency kinds need it). */
  readonly latencyHistory?: RttHistory;
  readonly log: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

export class Controller {
  readonly registry = new Registry();
  /** The catalogued metrics; public for run.ts's counting of "what changed" (changes.ts). */
  readonly m: Metrics;
  private readonly collector: MatrixCollector;
  private latest: Matrix | undefined;
  /** The latest matrix's summaries, made on first request (a UI refreshes them). */
  private summaries = new WeakMap<Matrix, Map<string, MatrixSummary>>();
  private latestCoverage: readonly NodeCoverage[] | undefined;
  private readonly tracker = new FindingTracker();
  private latestFindings: FindingsReport | undefined;
  private wasCovered = new Map<string, boolean>();
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly opts: ControllerOptions) {
    this.m = createMetrics(this.registry, 'controller');
    this.m.buildInfo.set({ version: opts.version, node_version: process.version }, 1);
    this.collector = new MatrixCollector({
      clock: opts.clock,
      concurrency: opts.pullConcurrency,
      timeoutMs: opts.pullTimeoutMs,
      ...(opts.pullFetch !== undefined ? { fetch: opts.pullFetch } : {}),
      ...(opts.roundTimeoutMs !== undefined ? { roundTimeoutMs: opts.roundTimeoutMs } : {}),
    });
  }

  start(): void {
    this.tick();
  }

  matrix(): Matrix | undefined {
    return this.latest;
  }

  /**
   * The latest matrix summarised by `by` (zone or node), or undefined before the first round
   * and for any other grouping. Computed once per matrix and grouping.
   */
  matrixSummary(by: string): MatrixSummary | undefined {
    const m = this.latest;
    const grouping = SUMMARY_GROUPINGS.find((g) => g === by);
    if (m === undefined || grouping === undefined) return undefined;
    let made = this.summaries.get(m);
    if (made === undefined) this.summaries.set(m, (made = new Map<string, MatrixSummary>()));
    let s = made.get(grouping);
    if (s === undefined) made.set(grouping, (s = summariseMatrix(m, grouping)));
    return s;
  }

  coverage(): readonly NodeCoverage[] | undefined {
    return this.latestCoverage;
  }

  /** What /api/v1/coverage serves: the last round's coverage, null when nobody can tell. */
  coverageReport(): CoverageReport {
    return { apiVersion: API_VERSION, kind: 'Coverage', nodes: this.latestCoverage ?? null };
  }

  /** The findings of the last round, or undefined before the first round ends. */
  findings(): FindingsReport | undefined {
    return this.latestFindings;
  }

  /** One round: pull rows, assemble, export, report coverage transitions. */
  async round(): Promise<Matrix> {
    const started = this.opts.clock.nowMs();
    const matrix = await this.collector.collect(this.opts.directory.endpoints());
    this.latest = matrix;
    for (const s of AGENT_STATES)
      this.m.controllerAgents.set({ state: s }, matrix.agents.filter((a) => a.state === s).length);
    const ended = this.opts.clock.nowMs();
    this.m.controllerLastCollection.set(ended / 1000);
    this.m.controllerCollectionDuration.set((ended - started) / 1000);
    const bad = matrix.agents.filter((a) => a.state !== 'ok');
    if (bad.length > 0)
      this.opts.log('warn', 'some agents did not answer', {
        agents: bad.map((a) => `${a.node}/${a.network}: ${a.state}`),
      });
    this.updateCoverage(this.opts.directory.coverage());
    this.updateFindings(matrix, ended);
    return matrix;
  }

  private updateFindings(matrix: Matrix, nowMs: number): void {
    const triage = this.opts.triage;
    let found: Finding[] = [];
    if (triage !== undefined) {
      try {
        // The baselines come from earlier rounds only: this round is judged, then recorded.
        const baselines = this.opts.latencyHistory?.baselines(nowMs);
        this.opts.latencyHistory?.record(matrix, nowMs);
        found = triage({
          matrix,
          coverage: this.latestCoverage,
          plumbing: this.opts.plumbing?.(),
          baselines,
        });
      } catch (e) {
        // Triage is pure and tested never to throw; if it does, keep the last findings rather
        // than clearing them all (which would write a burst of misleading "cleared" Events).
        this.opts.log('warn', `triage failed: ${String(e)}`);
        return;
      }
    }
    const { opened, cleared } = this.tracker.update(found, nowMs);
    for (const f of cleared) {
      this.m.findingActive.remove({ kind: f.kind, severity: f.severity, subject: f.subject });
      this.opts.log('info', `finding cleared: ${f.title}`, { id: f.id });
      this.opts.events?.findingCleared?.(f);
    }
    for (const f of opened) {
      this.m.findingsOpened.inc({ kind: f.kind });
      this.opts.log('warn', `finding: ${f.title}`, {
        id: f.id,
        severity: f.severity,
        confidence: f.confidence,
      });
      this.opts.events?.findingOpened?.(f);
    }
    this.writeNodeEvents({ opened, cleared });
    const active = this.tracker.active();
    this.writeNodeConditions(active.map((t) => t.finding));
    for (const t of active)
      this.m.findingActive.set(
        { kind: t.finding.kind, severity: t.finding.severity, subject: t.finding.subject },
        1,
      );
    this.latestFindings = {
      apiVersion: API_VERSION,
      kind: 'Findings',
      generatedAt: new Date(nowMs).toISOString(),
      matrixAt: matrix.generatedAt,
      triage: triage !== undefined,
      findings: active.map((t) => {
        const changes = this.opts.changes?.(t.finding, Date.parse(t.since)) ?? [];
        return { ...t.finding, since: t.since, ...(changes.length > 0 ? { changes } : {}) };
      }),
    };
  }

  private writeNodeEvents(changes: Parameters<typeof planNodeEvents>[0]): void {
    const ne = this.opts.nodeEvents;
    const sink = this.opts.events;
    if (ne === undefined || sink?.nodeEvent === undefined) return;
    if (changes.opened.length === 0 && changes.cleared.length === 0) return;
    const plan = planNodeEvents(changes, new Set(ne.knownNodes()), ne.maxPerRound);
    for (const e of plan.events) sink.nodeEvent(e);
    for (const reason of NODE_EVENT_DROPS)
      if (plan.dropped[reason] > 0) this.m.nodeEventsDropped.inc({ reason }, plan.dropped[reason]);
  }

  /** Every round, not only on transitions: the Nodes are brought in line with what is open. */
  private writeNodeConditions(open: readonly Finding[]): void {
    const nc = this.opts.nodeConditions;
    if (nc === undefined) return;
    for (const w of conditionWrites(open, nc.nodes())) nc.write(w);
  }

  private updateCoverage(cov: readonly NodeCoverage[] | undefined): void {
    this.latestCoverage = cov;
    this.m.nodeCoverage.reset();
    if (cov === undefined) return;
    const seen = new Set<string>();
    for (const n of cov) {
      for (const network of ['pod', 'host'] as const) {
        const c = n[network];
        const key = `${n.node}/${network}`;
        seen.add(key);
        this.m.nodeCoverage.set({ node: n.node, network, reason: c.reason }, c.covered ? 1 : 0);
        const before = this.wasCovered.get(key);
        if (before === true && !c.covered) {
          this.opts.log('warn', 'node lost agent coverage', {
            node: n.node,
            network,
            reason: c.reason,
            detail: c.detail,
          });
          this.opts.events?.coverageLost(n.node, network, c.reason, c.detail);
        } else if (before === false && c.covered) {
          this.opts.events?.coverageRestored(n.node, network);
        }
        this.wasCovered.set(key, c.covered);
      }
    }
    for (const k of [...this.wasCovered.keys()]) if (!seen.has(k)) this.wasCovered.delete(k);
  }

  /**
   * Rounds start every pullIntervalMs from the start of the last, not that long after it ended:
   * a round waits out the pull timeout of an agent it can't reach, and counted from the end, a
   * node cut off stretched the cadence by that timeout (5 s rounds became 8 s) just when triage
   * needs the next round to name the cut. A round longer than the interval is followed at once,
   * never overlapped.
   */
  private tick(): void {
    if (this.stopped) return;
    const started = this.opts.clock.nowMs();
    this.running = this.round().then(
      () => undefined,
      (e: unknown) => this.opts.log('warn', `collection round failed: ${String(e)}`),
    );
    void this.running.finally(() => {
      if (this.stopped) return;
      const took = this.opts.clock.nowMs() - started;
      this.timer = this.opts.clock.setTimeout(
        () => this.tick(),
        Math.max(0, this.opts.pullIntervalMs - took),
      );
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.opts.clock.clearTimeout(this.timer);
    await this.running;
  }
}

/** A fixed list of agents (the demo, or a static config), with no coverage information. */
export class StaticDirectory implements AgentDirectory {
  constructor(private readonly list: readonly AgentEndpoint[]) {}
  endpoints(): readonly AgentEndpoint[] {
    return this.list;
  }
  coverage(): undefined {
    return undefined;
  }
}
