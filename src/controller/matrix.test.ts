// The matrix assembled a row at a time (rowPart as each row arrives, joinParts at the end of the
// round) must be exactly what assembling every row at once made before: the shipped
// assembleMatrix is kept below as the oracle, and random rounds (failed agents, empty and
// conflicting zones, rows with and without the optional fields) are compared as JSON, the
// bytes /api/v1/matrix serves, key order included.

import test from 'ava';
import fc from 'fast-check';
import { API_VERSION, type AcceptedAgentRow } from '../api/agent-row.ts';
import type { AgentStatus, ApiServerCell, Cell, DnsCell, Matrix, PortCell } from '../api/matrix.ts';
import { AGENT_STATES } from '../api/matrix.ts';
import { assembleMatrix, joinParts, rowPart, type Fetched } from './matrix.ts';

/** A small deterministic PRNG (mulberry32), so a failing seed reproduces. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomRound(seed: number): Fetched[] {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const nodes = Array.from({ length: 1 + Math.floor(r() * 6) }, (_, i) => `n${i}`);
  const zones = ['', 'za', 'zb'];
  const out: Fetched[] = [];
  for (const node of nodes)
    for (const network of ['pod', 'host'] as const) {
      if (r() < 0.2) continue;
      const endpoint = { node, network, url: `http://${node}-${network}:9860` };
      const state = r() < 0.75 ? 'ok' : pick(AGENT_STATES.filter((s) => s !== 'ok'));
      if (state !== 'ok') {
        out.push({ endpoint, state, ...(r() < 0.7 ? { detail: `why ${seed}` } : {}) });
        continue;
      }
      const run = (): { run?: { ok: boolean; length: number; previous: number } | null } =>
        r() < 0.3 ? {} : { run: r() < 0.2 ? null : { ok: r() < 0.5, length: 3, previous: 1 } };
      const row: AcceptedAgentRow = {
        apiVersion: API_VERSION,
        kind: 'AgentResults',
        source: { node, network, zone: pick(zones), address: '10.0.0.1' },
        generatedAt: '',
        windowSeconds: 60,
        intervalMs: 1000,
        probes: {},
        peers: nodes
          .filter(() => r() < 0.7)
          .map((peer) => ({
            node: peer,
            network: pick(['pod', 'host'] as const),
            // A peer's entry may say another zone than the peer itself does: the peer wins.
            zone: pick(zones),
            address: '10.0.0.2',
            path: 'pod-to-pod',
            scope: 'same-zone',
            ...(r() < 0.3 ? {} : { rotating: r() < 0.5 }),
            results: (['udp', 'icmp', 'tcp'] as const)
              .filter(() => r() < 0.8)
              .map((protocol) => ({
                protocol,
                size: pick(['small', 'mtu'] as const),
                sent: 10,
                lost: Math.floor(r() * 3),
                lossRatio: r() < 0.1 ? null : r(),
                forwardLost: 0,
                reverseLost: 1,
                duplicates: 0,
                reordered: 0,
                rttSeconds:
                  r() < 0.2 ? null : { min: 1, p50: r(), p90: 2, p99: 3, max: 4, mean: 2 },
                lastSuccess: null,
                lastFailure: r() < 0.5 ? null : 'timeout',
                ...(r() < 0.3 ? {} : { measuredAt: '2026-12-07T00:00:00.000Z' }),
                ...run(),
              })),
          })),
        apiserver: Array.from({ length: Math.floor(r() * 3) }, (_, k) => ({
          target: k === 0 ? 'service' : `10.0.0.${k}:6443`,
          kind: k === 0 ? ('service' as const) : ('endpoint' as const),
          address: `10.0.0.${k}`,
          port: 6443,
          sent: 6,
          failed: Math.floor(r() * 2),
          okRatio: r() < 0.1 ? null : r(),
          outcomes: { ok: 5 },
          lastOutcome: 'ok',
          lastDetail: null,
          readyz: r() < 0.5 ? null : 401,
          connectSeconds: null,
          tlsSeconds: null,
          run: r() < 0.2 ? null : { ok: true, length: 2, previous: 0 },
        })),
        dns: Array.from({ length: Math.floor(r() * 3) }, (_, k) => ({
          serverKind: 'service' as const,
          server: `s${k}`,
          query: 'cluster',
          name: 'kubernetes.default',
          transport: 'udp' as const,
          sent: 5,
          failed: 0,
          answeredRatio: 1,
          outcomes: { noerror: 5 },
          lastOutcome: 'noerror',
          lastDetail: null,
          latencySeconds: null,
          ...run(),
        })),
        ports: Array.from({ length: Math.floor(r() * 2) }, (_, k) => ({
          target: `t${k}`,
          address: '10.0.0.3',
          port: 443,
          expected: 'open' as const,
          sent: 5,
          open: 5,
          openRatio: 1,
          outcomes: {},
          lastOutcome: 'open',
          lastDetail: null,
          connectSeconds: null,
          ...run(),
        })),
        ...(r() < 0.5
          ? {
              self: {
                lateRatio: 0,
                latenessP99Seconds: null,
                eventLoopP99Seconds: { main: null, engine: 0.01 },
              },
            }
          : {}),
      };
      out.push({ endpoint, state: 'ok', row });
    }
  return out;
}

test('a round assembled a row at a time is, byte for byte, the matrix assembled at once', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 31 }), (seed) => {
      const fetched = randomRound(seed);
      const lastSeen = new Map([['n0/pod', '2026-01-01T00:00:00.000Z']]);
      const want = JSON.stringify(assembleBefore(fetched, 5_000, lastSeen));
      // Parts made in any order (rows arrive in any order), joined in the agents' order.
      const parts = fetched.map((_, i) => i).sort(() => prng(seed)() - 0.5);
      const made = new Map(parts.map((i) => [i, rowPart(fetched[i]!)]));
      const joined = joinParts(
        fetched.map((_, i) => made.get(i)!),
        5_000,
        lastSeen,
      );
      return (
        JSON.stringify(joined) === want &&
        JSON.stringify(assembleMatrix(fetched, 5_000, lastSeen)) === want
      );
    }),
    { numRuns: 300 },
  );
  t.pass();
});

// ---- the oracle: assembleMatrix as shipped before the matrix was built a row at a time ------

function assembleBefore(
  fetched: readonly Fetched[],
  nowMs: number,
  lastSeen: ReadonlyMap<string, string>,
): Matrix {
  const cells: Cell[] = [];
  const dns: DnsCell[] = [];
  const ports: PortCell[] = [];
  const apiserver: ApiServerCell[] = [];
  const nodes = new Set<string>();
  const zones: Record<string, string> = {};
  const agents: AgentStatus[] = [];
  for (const f of fetched) {
    const key = `${f.endpoint.node}/${f.endpoint.network}`;
    nodes.add(f.endpoint.node);
    agents.push({
      node: f.endpoint.node,
      network: f.endpoint.network,
      url: f.endpoint.url,
      state: f.state,
      ...(f.detail !== undefined ? { detail: f.detail } : {}),
      zone: f.row?.source.zone ?? '',
      ...(f.row?.self !== undefined ? { self: f.row.self } : {}),
      lastSeen: f.state === 'ok' ? new Date(nowMs).toISOString() : (lastSeen.get(key) ?? null),
    });
    const row = f.row;
    if (row === undefined) continue;
    if (row.source.zone !== '') zones[row.source.node] = row.source.zone;
    const source = { sourceNode: row.source.node, sourceNetwork: row.source.network };
    for (const d of row.dns)
      dns.push({
        ...source,
        serverKind: d.serverKind,
        server: d.server,
        query: d.query,
        name: d.name,
        transport: d.transport,
        sent: d.sent,
        failed: d.failed,
        answeredRatio: d.answeredRatio,
        outcomes: d.outcomes,
        lastOutcome: d.lastOutcome,
        lastDetail: d.lastDetail,
        latencySeconds: d.latencySeconds,
        ...(d.run !== undefined ? { run: d.run } : {}),
      });
    for (const p of row.ports)
      ports.push({
        ...source,
        target: p.target,
        address: p.address,
        port: p.port,
        expected: p.expected,
        sent: p.sent,
        open: p.open,
        openRatio: p.openRatio,
        outcomes: p.outcomes,
        lastOutcome: p.lastOutcome,
        lastDetail: p.lastDetail,
        ...(p.run !== undefined ? { run: p.run } : {}),
      });
    for (const a of row.apiserver)
      apiserver.push({
        ...source,
        target: a.target,
        kind: a.kind,
        address: a.address,
        port: a.port,
        sent: a.sent,
        failed: a.failed,
        okRatio: a.okRatio,
        outcomes: a.outcomes,
        lastOutcome: a.lastOutcome,
        lastDetail: a.lastDetail,
        readyz: a.readyz,
        run: a.run,
      });
    for (const p of row.peers) {
      nodes.add(p.node);
      if (p.zone !== '' && zones[p.node] === undefined) zones[p.node] = p.zone;
      for (const r of p.results) {
        cells.push({
          sourceNode: row.source.node,
          sourceNetwork: row.source.network,
          targetNode: p.node,
          targetNetwork: p.network,
          path: p.path,
          scope: p.scope,
          protocol: r.protocol,
          size: r.size,
          sent: r.sent,
          lost: r.lost,
          lossRatio: r.lossRatio,
          forwardLost: r.forwardLost,
          reverseLost: r.reverseLost,
          rttSeconds: r.rttSeconds,
          lastFailure: r.lastFailure,
          ...(r.run !== undefined ? { run: r.run } : {}),
          ...(p.rotating !== undefined ? { rotating: p.rotating } : {}),
          ...(r.measuredAt !== undefined ? { measuredAt: r.measuredAt } : {}),
        });
      }
    }
  }
  agents.sort((a, b) => a.node.localeCompare(b.node) || a.network.localeCompare(b.network));
  return {
    apiVersion: API_VERSION,
    kind: 'Matrix',
    generatedAt: new Date(nowMs).toISOString(),
    agents,
    nodes: [...nodes].sort(),
    zones,
    cells,
    dns,
    ports,
    apiserver,
  };
}
