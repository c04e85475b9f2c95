// `podmesh diagnose` as a user runs it, against a small HTTP server standing in for the
// controller's API: findings printed with evidence and commands (exit 1), a healthy cluster
// (exit 0), JSON output, and a controller that is down or not ready yet (exit 3, with the why).

import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import type { FindingsReport } from '../src/api/findings.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;

function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env['PODMESH_CONTROLLER_URL'];
    const p = spawn(process.execPath, ['--import', 'tsx', MAIN, 'diagnose', ...args], { env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const isolated: FindingsReport = {
  apiVersion: 'podmesh.io/v1',
  kind: 'Findings',
  generatedAt: '2026-11-24T03:00:00.000Z',
  matrixAt: '2026-11-24T03:00:00.000Z',
  triage: true,
  findings: [
    {
      id: 'node-isolated:node-3',
      kind: 'node-isolated',
      severity: 'critical',
      subject: 'node-3',
      nodes: ['node-3'],
      title: 'node-3 is isolated: nothing reaches it and it reaches nothing',
      summary: 'Every probe to and from node-3 is lost, on the pod and the host network alike.',
      evidence: [{ text: 'node-1 → node-3 host-to-host udp: 60 of 60 lost', value: 1 }],
      confidence: 0.95,
      nextSteps: [
        { text: 'Is the node up and Ready?', command: 'kubectl get node node-3 -o wide' },
      ],
      since: '2026-11-24T02:58:00.000Z',
      changes: [
        {
          at: '2026-11-24T02:57:10.000Z',
          kind: 'pod-restarted',
          node: 'node-3',
          namespace: 'kube-system',
          object: 'kube-system/calico-node-x',
          component: 'calico-node',
          role: 'cni',
          detail: 'calico-node-x restarted (2 → 3), last ended OOMKilled (calico-node)',
        },
      ],
    },
  ],
};

async function serve(routes: Record<string, [number, unknown]>): Promise<[Server, string]> {
  const server = createServer((req, res) => {
    const r = routes[req.url ?? ''];
    res.writeHead(r?.[0] ?? 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(r?.[1] ?? { error: 'not found' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return [server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`];
}

test('findings are printed with evidence and commands; exit 1', async (t) => {
  const [server, url] = await serve({
    '/api/v1/findings': [200, isolated],
    '/api/v1/matrix': [
      200,
      {
        nodes: ['node-1', 'node-2', 'node-3'],
        agents: [
          { node: 'node-1', network: 'pod', state: 'ok' },
          { node: 'node-3', network: 'pod', state: 'timeout', detail: 'no answer in 3000 ms' },
        ],
      },
    ],
  });
  t.teardown(() => server.close());
  const r = await run(['--url', url]);
  t.is(r.status, 1, r.stderr);
  t.regex(r.stdout, /3 nodes, 1\/2 agents answering/);
  t.regex(r.stdout, /agent node-3\/pod: timeout \(no answer in 3000 ms\)/);
  t.regex(r.stdout, /1\. CRITICAL {2}node-3 is isolated/);
  t.regex(r.stdout, /node-1 → node-3 host-to-host udp: 60 of 60 lost/);
  t.regex(r.stdout, /\$ kubectl get node node-3 -o wide/);
  t.regex(
    r.stdout,
    /What changed around its start:\n {5}- 2026-11-24T02:57:10\.000Z pod-restarted on node-3: calico-node-x restarted \(2 → 3\), last ended OOMKilled/,
  );
  t.false(r.stdout.includes('\u001b['), 'no colour codes when not on a terminal');

  const j = await run(['--url', url, '--json']);
  t.is(j.status, 1);
  t.deepEqual(JSON.parse(j.stdout), isolated);
});

test('no findings: says so, exit 0', async (t) => {
  const [server, url] = await serve({
    '/api/v1/findings': [200, { ...isolated, findings: [] }],
  });
  t.teardown(() => server.close());
  const r = await run(['--url', url]);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /No findings/);
});

test('controller down, not ready, or not a controller: exit 3 with the why', async (t) => {
  const [server, url] = await serve({ '/api/v1/findings': [503, { error: 'no matrix yet' }] });
  t.teardown(() => server.close());
  const notReady = await run(['--url', url]);
  t.is(notReady.status, 3);
  t.regex(notReady.stderr, /first collection round is still running/);

  const [other, otherUrl] = await serve({ '/api/v1/findings': [200, { hello: 'world' }] });
  t.teardown(() => other.close());
  const wrong = await run(['--url', otherUrl]);
  t.is(wrong.status, 3);
  t.regex(wrong.stderr, /without a findings report/);

  // A port nothing listens on: take one, then free it.
  const [gone, goneUrl] = await serve({});
  await new Promise((r) => gone.close(r));
  const down = await run(['--url', goneUrl]);
  t.is(down.status, 3);
  t.regex(down.stderr, /cannot reach the controller at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
  t.regex(down.stderr, /port-forward/);

  const bad = await run(['--url', 'not-a-url']);
  t.is(bad.status, 2);
  t.regex(bad.stderr, /--url: must be an http\(s\) URL/);
});
