// Test helper: builds a healthy snapshot of an N-node cluster (a pod and a host agent per node,
// every path, protocol and size, DNS checks to the VIP and each replica, port targets), with
// methods that break it the way real faults do: a node cut off, one node's overlay, one pair's
// loss, an MTU black hole, a DNS replica down, a port dropped... Used by the triage tests only.

import type { AgentCoverage, CoverageReason, NodeCoverage } from '../../src/api/coverage.ts';
import type {
  AgentState,
  AgentStatus,
  ApiServerCell,
  Cell,
  DnsCell,
  PortCell,
} from '../../src/api/matrix.ts';
import type { Snapshot } from '../../src/analysis/types.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Net = 'pod' | 'host';
type Protocol = 'udp' | 'icmp' | 'tcp';

export interface PortTargetSpec {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly expected: 'open' | 'closed';
}

export interface FixtureOptions {
  /** A count (node-1 ... node-N) or the names. Default 3. */
  readonly nodes?: number | readonly string[];
  /** Zone per node; default every node in zone-a. */
  readonly zones?: Readonly<Record<string, string>>;
  /** Probes per cell. Default 60 (one a second over a 60 s window). */
  readonly probes?: number;
  readonly protocols?: readonly Protocol[];
  /** Nodes running a DNS replica (labelled by node name). Default the first two; [] for none. */
  readonly dnsReplicas?: readonly string[];
  /** Lookups per DNS cell. Default 12. */
  readonly dnsQueries?: number;
  readonly ports?: readonly PortTargetSpec[];
  /** Connects per port cell. Default 12. */
  readonly portChecks?: number;
  /**
   * API server endpoints (10.0.0.1:6443, 10.0.0.2:6443 ...) checked from every agent, with the
   * `kubernetes` VIP (10.96.0.1:443). Default 0: no API server checks at all.
   */
  readonly apiserverEndpoints?: number;
  /** Checks per API server cell. Default 6 (every 10 s over a 60 s window). */
  readonly apiserverChecks?: number;
  /** Give the snapshot a coverage list (every agent Ready) instead of undefined. */
  readonly coverage?: boolean;
}

const NETS: readonly Net[] = ['pod', 'host'];
const SERVICE_NAME = 'kubernetes.default.svc.cluster.local';

export class SnapshotBuilder {
  readonly nodes: readonly string[];
  readonly cells: Mutable<Cell>[] = [];
  readonly dns: Mutable<DnsCell>[] = [];
  readonly ports: Mutable<PortCell>[] = [];
  readonly apiserver: Mutable<ApiServerCell>[] = [];
  readonly agents: Mutable<AgentStatus>[] = [];
  readonly zones: Record<string, string> = {};
  coverage: Mutable<NodeCoverage>[] | undefined;

  constructor(o: FixtureOptions = {}) {
    const nodes =
      typeof o.nodes === 'number' || o.nodes === undefined
        ? Array.from({ length: o.nodes ?? 3 }, (_, i) => `node-${i + 1}`)
        : [...o.nodes];
    this.nodes = nodes;
    for (const n of nodes) this.zones[n] = o.zones?.[n] ?? 'zone-a';
    const probes = o.probes ?? 60;
    const protocols = o.protocols ?? ['udp', 'icmp', 'tcp'];
    const index = (n: string): number => nodes.indexOf(n) + 1;
    for (const n of nodes)
      for (const net of NETS)
        this.agents.push({
          node: n,
          network: net,
          url:
            net === 'host' ? `http://10.0.0.${index(n)}:9870` : `http://10.244.${index(n)}.2:9860`,
          state: 'ok',
          zone: this.zones[n]!,
          self: {
            lateRatio: 0,
            latenessP99Seconds: 0.002,
            eventLoopP99Seconds: { main: 0.01, engine: 0.01 },
          },
          lastSeen: '2026-01-01T00:00:00.000Z',
        });
    for (const s of nodes)
      for (const snet of NETS)
        for (const t of nodes)
          for (const tnet of NETS) {
            if (s === t && snet === tnet) continue;
            for (const protocol of protocols)
              for (const size of ['small', 'mtu'] as const) {
                if (size === 'mtu' && protocol === 'tcp') continue;
                this.cells.push({
                  sourceNode: s,
                  sourceNetwork: snet,
                  targetNode: t,
                  targetNetwork: tnet,
                  path: `${snet}-to-${tnet}`,
                  scope:
                    s === t
                      ? 'same-node'
                      : this.zones[s] === this.zones[t]
                        ? 'same-zone'
                        : 'cross-zone',
                  protocol,
                  size,
                  sent: probes,
                  lost: 0,
                  lossRatio: 0,
                  forwardLost: 0,
                  reverseLost: 0,
                  rttSeconds: {
                    min: 0.0002,
                    p50: 0.0004,
                    p90: 0.0006,
                    p99: 0.001,
                    max: 0.002,
                    mean: 0.0004,
                  },
                  lastFailure: null,
                });
              }
          }
    const replicas = o.dnsReplicas ?? nodes.slice(0, 2);
    const queries = o.dnsQueries ?? 12;
    const names: Record<string, string> = {
      service: SERVICE_NAME,
      short: 'kubernetes.default',
      pod: 'node-1-pod-1.lab.default.svc.cluster.local',
      external: 'example.com',
    };
    for (const n of nodes)
      for (const net of NETS)
        for (const [serverKind, server] of [
          ['service', 'service'] as const,
          ...replicas.map((r) => ['replica', r] as const),
        ])
          for (const query of ['service', 'short', 'pod', 'external'])
            for (const transport of query === 'service'
              ? (['udp', 'tcp'] as const)
              : (['udp'] as const))
              this.dns.push({
                sourceNode: n,
                sourceNetwork: net,
                serverKind,
                server,
                query,
                name: names[query]!,
                transport,
                sent: queries,
                failed: 0,
                answeredRatio: 1,
                outcomes: { noerror: queries },
                lastOutcome: 'noerror',
                lastDetail: null,
                latencySeconds: { p50: 0.001, p99: 0.003, max: 0.004 },
              });
    const checks = o.portChecks ?? 12;
    for (const p of o.ports ?? [])
      for (const n of nodes)
        for (const net of NETS)
          this.ports.push({
            sourceNode: n,
            sourceNetwork: net,
            target: p.name,
            address: p.address,
            port: p.port,
            expected: p.expected,
            sent: checks,
            open: p.expected === 'open' ? checks : 0,
            openRatio: p.expected === 'open' ? 1 : 0,
            outcomes: p.expected === 'open' ? { open: checks } : { timeout: checks },
            lastOutcome: p.expected === 'open' ? 'open' : 'timeout',
            lastDetail: null,
          });
    const apiChecks = o.apiserverChecks ?? 6;
    const endpoints = Array.from({ length: o.apiserverEndpoints ?? 0 }, (_, i) => ({
      target: `10.0.0.${i + 1}:6443`,
      kind: 'endpoint' as const,
      address: `10.0.0.${i + 1}`,
      port: 6443,
    }));
    const apiTargets =
      endpoints.length === 0
        ? []
        : [
            { target: 'service', kind: 'service' as const, address: '10.96.0.1', port: 443 },
            ...endpoints,
          ];
    for (const t of apiTargets)
      for (const n of nodes)
        for (const net of NETS)
          this.apiserver.push({
            sourceNode: n,
            sourceNetwork: net,
            ...t,
            sent: apiChecks,
            failed: 0,
            okRatio: 1,
            outcomes: { ok: apiChecks },
            lastOutcome: 'ok',
            lastDetail: null,
            readyz: 401,
            run: { ok: true, length: apiChecks, previous: 0 },
          });
    if (o.coverage === true)
      this.coverage = nodes.map((n) => ({
        node: n,
        pod: ready(`podmesh-agent-${n}`),
        host: ready(`podmesh-agent-host-${n}`),
      }));
  }

  // --- cells ------------------------------------------------------------------------------

  /** Sets the loss of matching cells (lost = round(ratio × sent)). */
  lose(pred: (c: Cell) => boolean, ratio: number, lastFailure = 'timeout'): this {
    for (const c of this.cells)
      if (pred(c)) {
        c.lost = Math.round(ratio * c.sent);
        c.lossRatio = c.sent > 0 ? c.lost / c.sent : null;
        c.lastFailure = c.lost > 0 ? lastFailure : null;
        if (c.lost === c.sent) c.rttSeconds = null;
      }
    return this;
  }

  /** Everything to and from the node across nodes fails; the controller can't read its agents. */
  isolate(node: string, o: { readable?: boolean } = {}): this {
    this.lose(
      (c) => c.sourceNode !== c.targetNode && (c.sourceNode === node || c.targetNode === node),
      1,
    );
    if (o.readable !== true) {
      this.dropRows(node);
      for (const a of this.agents)
        if (a.node === node) {
          a.state = 'timeout';
          a.detail = 'no answer within 800 ms';
        }
    }
    return this;
  }

  /** Every path between two nodes fails both ways. */
  partition(a: string, b: string): this {
    return this.lose((c) => between(c, a, b), 1);
  }

  /**
   * The node's overlay is broken (VXLAN dropped on it): cross-node traffic whose target is a
   * pod agent, to or from the node. Without a node, the overlay fails everywhere.
   */
  breakOverlay(node?: string): this {
    return this.lose(
      (c) =>
        c.sourceNode !== c.targetNode &&
        c.targetNetwork === 'pod' &&
        (node === undefined || c.sourceNode === node || c.targetNode === node),
      1,
    );
  }

  /** The node's pod agent can't even reach its own node (broken veth / CNI on the node). */
  breakLocal(node: string): this {
    return this.lose((c) => c.sourceNode === node && c.targetNode === node, 1);
  }

  /** Host-to-host (and pod-to-host) between two nodes fails; the overlay is left alone. */
  blockHostNetwork(a: string, b: string): this {
    return this.lose((c) => between(c, a, b) && c.targetNetwork === 'host', 1);
  }

  /** Random loss between two nodes; one way puts it on a→b only, as STAMP would see it. */
  lossy(
    a: string,
    b: string,
    ratio: number,
    o: { oneWay?: boolean; nets?: readonly string[] } = {},
  ): this {
    for (const c of this.cells) {
      if (!between(c, a, b)) continue;
      if (o.nets !== undefined && !o.nets.includes(c.path)) continue;
      c.lost = Math.round(ratio * c.sent);
      c.lossRatio = c.lost / c.sent;
      c.lastFailure = c.lost > 0 ? 'timeout' : null;
      if (c.protocol === 'udp') {
        const out = c.sourceNode === a;
        if (o.oneWay === true) {
          // a→b packets dropped: forward for a's probes, reverse (the reflection) for b's.
          c.forwardLost = out ? c.lost : 0;
          c.reverseLost = out ? 0 : c.lost;
        } else {
          c.forwardLost = Math.floor(c.lost / 2);
          c.reverseLost = c.lost - c.forwardLost;
        }
      }
    }
    return this;
  }

  /** a's probes to b fail while b's probes to a are answered (a stateful rule on b). */
  oneWay(a: string, b: string, paths: readonly string[] = ['pod-to-pod', 'host-to-host']): this {
    return this.lose((c) => c.sourceNode === a && c.targetNode === b && paths.includes(c.path), 1);
  }

  /** MTU-sized probes lost (small ones fine) on matching cross-node cells (default: all). */
  mtu(pred: (c: Cell) => boolean = () => true): this {
    return this.lose((c) => c.size === 'mtu' && c.sourceNode !== c.targetNode && pred(c), 1);
  }

  /** TCP probes to one agent fail (its probe port blocked), UDP and ICMP fine. */
  tcpBlocked(
    node: string,
    net: Net,
    reason: 'timeout' | 'refused' | 'unreachable' = 'timeout',
  ): this {
    return this.lose(
      (c) => c.protocol === 'tcp' && c.targetNode === node && c.targetNetwork === net,
      1,
      reason,
    );
  }

  /** Fewer probes in every cell (a fresh agent, a long interval). */
  fewProbes(n: number): this {
    for (const c of this.cells) {
      const r = c.lossRatio ?? 0;
      c.sent = n;
      c.lost = Math.round(r * n);
      c.lossRatio = n > 0 ? c.lost / n : null;
    }
    for (const d of this.dns) {
      const r = d.answeredRatio ?? 1;
      d.sent = Math.min(d.sent, n);
      d.failed = Math.round((1 - r) * d.sent);
      d.answeredRatio = d.sent > 0 ? 1 - d.failed / d.sent : null;
    }
    for (const p of this.ports) {
      const r = p.openRatio ?? 0;
      p.sent = Math.min(p.sent, n);
      p.open = Math.round(r * p.sent);
      p.openRatio = p.sent > 0 ? p.open / p.sent : null;
    }
    return this;
  }

  /** Removes the rows (cells, DNS, ports) the node's agents would have reported. */
  dropRows(node: string, net?: Net): this {
    const keep = (x: { sourceNode: string; sourceNetwork: Net }): boolean =>
      !(x.sourceNode === node && (net === undefined || x.sourceNetwork === net));
    for (const list of [this.cells, this.dns, this.ports, this.apiserver] as {
      sourceNode: string;
      sourceNetwork: Net;
    }[][]) {
      const kept = list.filter(keep);
      list.length = 0;
      list.push(...kept);
    }
    return this;
  }

  // --- DNS ---------------------------------------------------------------------------------

  /** Fails matching DNS cells. */
  dnsFail(pred: (d: DnsCell) => boolean, outcome = 'timeout', ratio = 1): this {
    for (const d of this.dns)
      if (pred(d)) {
        d.failed = Math.round(ratio * d.sent);
        d.answeredRatio = 1 - d.failed / d.sent;
        d.outcomes = {
          ...(d.failed < d.sent ? { noerror: d.sent - d.failed } : {}),
          [outcome]: d.failed,
        };
        d.lastOutcome = outcome;
      }
    return this;
  }

  dnsReplicaDown(server: string): this {
    this.dnsFail((d) => d.serverKind === 'replica' && d.server === server);
    // The VIP lands on the dead replica for part of the lookups.
    return this.dnsFail((d) => d.serverKind === 'service' && d.transport === 'tcp', 'timeout', 0.5);
  }

  dnsServiceDown(): this {
    return this.dnsFail((d) => d.serverKind === 'service');
  }

  dnsAllDown(): this {
    return this.dnsFail(() => true, 'servfail');
  }

  dnsUpstreamDown(): this {
    return this.dnsFail((d) => d.query === 'external', 'servfail');
  }

  dnsBlockedFrom(node: string): this {
    return this.dnsFail((d) => d.sourceNode === node);
  }

  // --- the API server ----------------------------------------------------------------------

  /**
   * Fails `failed` of the checks of matching API server cells with `outcome` (all of them by
   * default), the failures the newest ones (a trailing run of failures).
   */
  apiFail(pred: (a: ApiServerCell) => boolean, outcome = 'timeout', failed?: number): this {
    for (const a of this.apiserver)
      if (pred(a)) {
        const n = Math.min(a.sent, failed ?? a.sent);
        a.failed = n;
        a.okRatio = a.sent > 0 ? 1 - n / a.sent : null;
        a.outcomes = {
          ...(n < a.sent ? { ok: a.sent - n } : {}),
          ...(n > 0 ? { [outcome]: n } : {}),
        };
        a.lastOutcome = n > 0 ? outcome : 'ok';
        a.run =
          n === 0
            ? { ok: true, length: a.sent, previous: 0 }
            : { ok: false, length: n, previous: a.sent - n };
      }
    return this;
  }

  /** Every way to the API server fails from `node` (both agents), or only the VIP. */
  apiBlockedFrom(node: string, only?: 'service' | 'endpoint', outcome = 'timeout'): this {
    return this.apiFail(
      (a) => a.sourceNode === node && (only === undefined || a.kind === only),
      outcome,
    );
  }

  // --- ports -------------------------------------------------------------------------------

  private portSet(target: string, outcome: string, from?: string): this {
    for (const p of this.ports)
      if (p.target === target && (from === undefined || p.sourceNode === from)) {
        const open = outcome === 'open';
        p.open = open ? p.sent : 0;
        p.openRatio = open ? 1 : 0;
        p.outcomes = { [outcome]: p.sent };
        p.lastOutcome = outcome;
      }
    return this;
  }

  portTimeout(target: string, from?: string): this {
    return this.portSet(target, 'timeout', from);
  }

  portRefused(target: string, from?: string): this {
    return this.portSet(target, 'refused', from);
  }

  /** Rejected with an ICMP unreachable (the connect's outcome `unreachable`). */
  portRejected(target: string, from?: string): this {
    return this.portSet(target, 'unreachable', from);
  }

  portOpen(target: string, from?: string): this {
    return this.portSet(target, 'open', from);
  }

  // --- agents and coverage -------------------------------------------------------------------

  agent(node: string, net: Net): Mutable<AgentStatus> {
    const a = this.agents.find((x) => x.node === node && x.network === net);
    if (a === undefined) throw new Error(`no agent ${node}/${net}`);
    return a;
  }

  starve(node: string, net: Net, lateRatio = 0.6): this {
    this.agent(node, net).self = {
      lateRatio,
      latenessP99Seconds: 0.8,
      eventLoopP99Seconds: { main: 0.4, engine: 0.6 },
    };
    return this;
  }

  agentState(node: string, net: Net, state: AgentState, detail?: string): this {
    const a = this.agent(node, net);
    a.state = state;
    if (detail !== undefined) a.detail = detail;
    if (state !== 'ok') this.dropRows(node, net);
    return this;
  }

  /** Coverage says the node has no Ready agent of that kind: it sends nothing, answers nothing. */
  coverageGap(
    node: string,
    net: Net,
    reason: CoverageReason = 'crash-loop',
    detail = 'CrashLoopBackOff after 5 restarts',
  ): this {
    this.coverage ??= this.nodes.map((n) => ({
      node: n,
      pod: ready(`podmesh-agent-${n}`),
      host: ready(`podmesh-agent-host-${n}`),
    }));
    const c = this.coverage.find((x) => x.node === node);
    if (c === undefined) throw new Error(`no coverage for ${node}`);
    c[net] = {
      covered: false,
      reason,
      detail,
      pod: reason === 'missing' ? null : `podmesh-agent-${node}`,
    };
    this.agentState(node, net, 'unreachable', 'connect ECONNREFUSED');
    // Peers still have stale cells to it from before; they must not count.
    this.lose((x) => x.targetNode === node && x.targetNetwork === net, 1);
    return this;
  }

  build(): Snapshot {
    const clone = <T>(x: T): T => structuredClone(x);
    return {
      matrix: {
        apiVersion: 'podmesh.io/v1',
        kind: 'Matrix',
        generatedAt: '2026-01-01T00:00:00.000Z',
        agents: clone(this.agents),
        nodes: [...this.nodes],
        zones: { ...this.zones },
        cells: clone(this.cells),
        dns: clone(this.dns),
        ports: clone(this.ports),
        apiserver: clone(this.apiserver),
      },
      coverage: this.coverage === undefined ? undefined : clone(this.coverage),
    };
  }
}

function ready(pod: string): AgentCoverage {
  return { covered: true, reason: 'ready', detail: `${pod} is Ready`, pod };
}

function between(c: Cell, a: string, b: string): boolean {
  return (c.sourceNode === a && c.targetNode === b) || (c.sourceNode === b && c.targetNode === a);
}

export function cluster(o: FixtureOptions = {}): SnapshotBuilder {
  return new SnapshotBuilder(o);
}
