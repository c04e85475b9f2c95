// The matrix written in pieces must be byte for byte what res.json wrote before: the pieces
// joined equal JSON.stringify, and the controller's /api/v1/matrix serves the same body with
// res.json's status and Content-Type, whether the client reads it fast or slowly.

import http from 'node:http';
import test from 'ava';
import { createControllerApp } from './controller-app.ts';
import { jsonPieces } from './json-stream.ts';

const join = (v: unknown, per?: number): string => [...jsonPieces(v, per)].join('');

test('the pieces joined are JSON.stringify of the value, for every shape it meets', (t) => {
  const cells = Array.from({ length: 2_503 }, (_, i) => ({
    sourceNode: `n${i}`,
    lossRatio: i % 7 === 0 ? null : i / 3,
    rttSeconds: i % 5 === 0 ? null : { p50: i * 1e-6, p99: 1.5e-3 },
    run: i % 3 === 0 ? undefined : { ok: true, length: i },
    text: 'quote " and \\ and \u2028 and é',
  }));
  const sparse: unknown[] = [1, undefined, () => 1, null];
  sparse[8] = 'x';
  const when = new Date(0);
  const values: unknown[] = [
    {
      apiVersion: 'podmesh.io/v1',
      kind: 'Matrix',
      skipped: undefined,
      fn: () => 1,
      agents: [],
      zones: { a: 'z' },
      cells,
      big: sparse,
      when,
      nested: { deep: [cells.slice(0, 3)] },
    },
    { a: Array.from({ length: 10 }, () => undefined), b: [when, { toJSON: () => 'j' }] },
    {},
    [1, 2, 3],
    'text',
    42,
    null,
    { toJSON: () => ({ replaced: true }) },
  ];
  for (const v of values)
    for (const per of [1, 2, 3, 1000]) t.is(join(v, per), JSON.stringify(v), `per ${per}`);
  // A large array is never one piece: the point of it.
  const pieces = [...jsonPieces({ cells }, 1000)];
  t.true(Math.max(...pieces.map((p) => p.length)) < JSON.stringify(cells).length / 2);
});

async function get(
  url: string,
  slow: boolean,
): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          if (slow) {
            res.pause();
            setTimeout(() => res.resume(), 1);
          }
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers['content-type']),
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      })
      .on('error', reject);
  });
}

test('/api/v1/matrix serves the matrix in pieces, the same bytes res.json sent', async (t) => {
  const matrix = {
    apiVersion: 'podmesh.io/v1',
    kind: 'Matrix',
    generatedAt: new Date(0).toISOString(),
    agents: [
      { node: 'n1', network: 'pod', url: 'http://x', state: 'ok', zone: '', lastSeen: null },
    ],
    nodes: ['n1'],
    zones: {},
    // ~6 MB: many socket writes, with backpressure from the slow reader.
    cells: Array.from({ length: 30_000 }, (_, i) => ({
      sourceNode: 'n1',
      targetNode: `n${i}`,
      rttSeconds: { p50: i * 1e-7, p99: i * 2e-7 },
      lastFailure: i % 11 === 0 ? 'timeout' : null,
    })),
    dns: [],
    ports: [],
  };
  const app = createControllerApp({
    matrix: () => matrix,
    coverage: () => ({}),
    renderMetrics: () => Promise.resolve(''),
    isReady: () => true,
  });
  const server = app.listen(0, '127.0.0.1');
  t.teardown(() => server.close());
  await new Promise<void>((r) => server.once('listening', () => r()));
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}/api/v1/matrix`;
  for (const slow of [false, true]) {
    const r = await get(url, slow);
    t.is(r.status, 200);
    t.is(r.type, 'application/json; charset=utf-8');
    t.is(r.body, JSON.stringify(matrix), slow ? 'slow reader' : 'fast reader');
  }
});
