// The matrix summary (?summary=zone|node): pooled per ordered pair of groups, every group's
// agents counted, the same numbers whichever way the cells come; the controller makes it once
// per matrix and grouping, and /api/v1/matrix serves it only when asked, the full matrix
// otherwise.

import http from 'node:http';
import test from 'ava';
import { API_VERSION } from '../api/agent-row.ts';
import type { Cell, Matrix } from '../api/matrix.ts';
import { SystemClock } from '../core/clock.ts';
import { createControllerApp } from '../server/controller-app.ts';
import { Controller, StaticDirectory } from './controller.ts';
import { summariseMatrix } from './matrix-summary.ts';

function cell(
  source: string,
  target: string,
  o: Partial<Pick<Cell, 'sent' | 'lost' | 'lossRatio' | 'size' | 'rttSeconds' | 'targetNetwork'>>,
): Cell {
  return {
    sourceNode: source,
    sourceNetwork: 'pod',
    targetNode: target,
    targetNetwork: o.targetNetwork ?? 'pod',
    path: 'pod-to-pod',
    scope: 'cross-zone',
    protocol: 'udp',
    size: o.size ?? 'small',
    sent: o.sent ?? 10,
    lost: o.lost ?? 0,
    lossRatio: o.lossRatio ?? (o.lost ?? 0) / (o.sent ?? 10),
    forwardLost: 0,
    reverseLost: 0,
    rttSeconds:
      o.rttSeconds === undefined
        ? { min: 0.001, p50: 0.002, p90: 0.003, p99: 0.004, max: 0.005, mean: 0.002 }
        : o.rttSeconds,
    lastFailure: null,
  };
}

const rtt = (p50: number, p99: number): Cell['rttSeconds'] => ({
  min: p50,
  p50,
  p90: p99,
  p99,
  max: p99,
  mean: p50,
});

const matrix: Matrix = {
  apiVersion: API_VERSION,
  kind: 'Matrix',
  generatedAt: '2026-12-07T00:00:00.000Z',
  agents: [
    { node: 'a1', network: 'pod', url: 'u', state: 'ok', zone: 'za', lastSeen: null },
    { node: 'a2', network: 'pod', url: 'u', state: 'timeout', zone: 'za', lastSeen: null },
    { node: 'b1', network: 'pod', url: 'u', state: 'ok', zone: 'zb', lastSeen: null },
  ],
  nodes: ['a1', 'a2', 'b1', 'x'],
  zones: { a1: 'za', a2: 'za', b1: 'zb' },
  cells: [
    cell('a1', 'b1', { sent: 10, lost: 2, rttSeconds: rtt(0.001, 0.01) }),
    cell('a1', 'b1', { sent: 10, lost: 0, size: 'mtu', rttSeconds: rtt(0.5, 0.9) }),
    cell('a1', 'b1', { sent: 10, lost: 0, targetNetwork: 'host', rttSeconds: rtt(0.003, 0.02) }),
    cell('a2', 'b1', { sent: 20, lost: 5, rttSeconds: rtt(0.002, 0.005) }),
    cell('b1', 'a1', { sent: 10, lost: 0, rttSeconds: null }),
    cell('a1', 'a2', { sent: 10, lost: 0 }),
    cell('b1', 'x', { sent: 0, lost: 0, lossRatio: null }),
  ],
  dns: [],
  ports: [],
  apiserver: [],
};

test('by zone: every ordered zone pair measured, pooled; every zone with its agents', (t) => {
  const s = summariseMatrix(matrix, 'zone');
  t.is(s.kind, 'MatrixSummary');
  t.is(s.generatedAt, matrix.generatedAt);
  t.deepEqual(s.groups, [
    // x: a node no agent reported a zone for.
    { name: '', nodes: 1, agents: 0, agentsOk: 0 },
    { name: 'za', nodes: 2, agents: 2, agentsOk: 1 },
    { name: 'zb', nodes: 1, agents: 1, agentsOk: 1 },
  ]);
  t.deepEqual(
    s.pairs.map((p) => `${p.source}>${p.target}`),
    ['za>za', 'za>zb', 'zb>', 'zb>za'],
  );
  const ab = s.pairs.find((p) => p.source === 'za' && p.target === 'zb')!;
  t.is(ab.cells, 4);
  // a1/pod>b1/pod, a1/pod>b1/host, a2/pod>b1/pod.
  t.is(ab.agentPairs, 3);
  t.is(ab.sent, 50);
  t.is(ab.lost, 7);
  t.is(ab.lossRatio, 7 / 50);
  t.is(ab.lossyCells, 2);
  t.is(ab.worstLossRatio, 0.25);
  // Small probes only: the mtu cell's 0.5 s is not a round trip of the pair's small probes.
  t.is(ab.rttP50Seconds, 0.002);
  t.is(ab.rttP99MaxSeconds, 0.02);
  const bx = s.pairs.find((p) => p.source === 'zb' && p.target === '')!;
  t.is(bx.lossRatio, null);
  t.is(bx.worstLossRatio, null);
  const ba = s.pairs.find((p) => p.source === 'zb' && p.target === 'za')!;
  t.is(ba.rttP50Seconds, null);
});

test('by node, and the same summary whatever the order of the cells', (t) => {
  const s = summariseMatrix(matrix, 'node');
  t.deepEqual(
    s.groups.map((g) => g.name),
    ['a1', 'a2', 'b1', 'x'],
  );
  t.is(s.pairs.find((p) => p.source === 'a1' && p.target === 'b1')!.cells, 3);
  const reversed = { ...matrix, cells: [...matrix.cells].reverse() };
  t.deepEqual(summariseMatrix(reversed, 'node'), s);
  t.deepEqual(summariseMatrix(reversed, 'zone'), summariseMatrix(matrix, 'zone'));
});

async function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

test('the controller summarises its latest matrix once per grouping; the API serves it when asked', async (t) => {
  const controller = new Controller({
    clock: new SystemClock(),
    directory: new StaticDirectory([]),
    pullIntervalMs: 60_000,
    pullConcurrency: 1,
    pullTimeoutMs: 1000,
    version: 'test',
    log: () => undefined,
  });
  t.is(controller.matrixSummary('zone'), undefined, 'no matrix yet');
  await controller.round();
  const zone = controller.matrixSummary('zone');
  t.is(zone?.by, 'zone');
  t.is(controller.matrixSummary('zone'), zone, 'made once per matrix');
  t.is(controller.matrixSummary('rack'), undefined);

  const app = createControllerApp({
    matrix: () => matrix,
    matrixSummary: (by) =>
      by === 'zone' || by === 'node' ? summariseMatrix(matrix, by) : undefined,
    coverage: () => ({}),
    renderMetrics: () => Promise.resolve(''),
    isReady: () => true,
  });
  const server = app.listen(0, '127.0.0.1');
  t.teardown(() => server.close());
  await new Promise<void>((r) => server.once('listening', () => r()));
  const addr = server.address();
  const base = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`;
  const full = await get(`${base}/api/v1/matrix`);
  t.is(full.body, JSON.stringify(matrix), 'without ?summary: the matrix as always');
  const byZone = await get(`${base}/api/v1/matrix?summary=zone`);
  t.is(byZone.status, 200);
  t.deepEqual(JSON.parse(byZone.body), summariseMatrix(matrix, 'zone'));
  const bad = await get(`${base}/api/v1/matrix?summary=rack`);
  t.is(bad.status, 400);
  t.regex(bad.body, /zone, node/);
});
