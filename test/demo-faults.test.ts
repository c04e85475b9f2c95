// The demo's fault injection end to end: start `podmesh demo` (short window and fast probes so
// a fault shows within seconds), inject each fault through POST /api/v1/demo/faults, see the
// finding triage should name (asserting only the robust part: its kind and the node, replica or
// target it names), see the agents' /metrics react, heal all, see the finding clear.

import { spawn, spawnSync } from 'node:child_process';
import test from 'ava';
import type { Finding } from '../src/api/findings.ts';
import type { DemoFault, DemoFaultState } from '../src/api/demo-faults.ts';
import { startDemo } from '../src/demo/demo.ts';
import { createControllerApp } from '../src/server/controller-app.ts';
import { listen } from '../src/server/http.ts';
import { closeServer } from '../src/server/http.ts';
import { scrape, silent, until } from './support/agents.ts';

const FAST = [
  'window:',
  '  seconds: 10',
  'probes:',
  '  intervalMs: 250',
  '  timeoutMs: 250',
  'ports:',
  '  intervalMs: 1000',
  '  timeoutMs: 500',
  '',
].join('\n');

async function findings(url: string): Promise<Finding[]> {
  const res = await fetch(`${url}/api/v1/findings`);
  if (!res.ok) return [];
  return ((await res.json()) as { findings: Finding[] }).findings;
}

async function post(url: string, faults: readonly DemoFault[]): Promise<Response> {
  return fetch(`${url}/api/v1/demo/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ faults }),
  });
}

const CASES: readonly {
  title: string;
  fault: DemoFault;
  matches: (f: Finding) => boolean;
}[] = [
  {
    title: '40% loss towards demo-node-2 -> pair-loss or node-isolated naming it',
    fault: { kind: 'loss', node: 'demo-node-2', percent: 40 },
    matches: (f) =>
      (f.kind === 'pair-loss' || f.kind === 'node-isolated') && f.nodes.includes('demo-node-2'),
  },
  {
    title: 'MTU-sized probes to demo-node-2 dropped -> mtu-blackhole naming it',
    fault: { kind: 'mtu', node: 'demo-node-2' },
    matches: (f) => f.kind === 'mtu-blackhole' && f.nodes.includes('demo-node-2'),
  },
  {
    title: 'DNS replica demo-node-1 answers SERVFAIL -> a dns finding naming it',
    fault: { kind: 'dns-servfail', replica: 'demo-node-1' },
    matches: (f) => f.kind.startsWith('dns-') && JSON.stringify(f).includes('demo-node-1'),
  },
  {
    title: 'demo-web stops listening -> port-refused naming it',
    fault: { kind: 'port-refused', target: 'demo-web' },
    matches: (f) => f.kind === 'port-refused' && (f.targets ?? []).includes('demo-web'),
  },
];

test('each demo fault raises its finding, and healing clears it', async (t) => {
  t.timeout(240_000);
  const demo = await startDemo({
    nodes: 3,
    httpPort: 19880,
    controllerPort: 0,
    sources: { fileText: FAST },
    log: silent,
  });
  t.teardown(() => demo.stop());
  const url = demo.controllerUrl;
  await until(
    'a healthy matrix with no findings',
    async () => {
      const f = await findings(url);
      const m = await fetch(`${url}/api/v1/matrix`);
      return m.ok && f.length === 0 ? true : undefined;
    },
    20_000,
    500,
  );

  for (const c of CASES) {
    const res = await post(url, [c.fault]);
    t.is(res.status, 200, c.title);
    t.deepEqual(((await res.json()) as { faults: unknown }).faults, [c.fault]);
    const started = Date.now();
    const seen = await until(
      `${c.title}: finding appears`,
      async () => (await findings(url)).find(c.matches),
      30_000,
      500,
    );
    t.log(`${c.title}: ${seen.kind} "${seen.title}" after ${Date.now() - started} ms`);
    if (c.fault.kind === 'loss') {
      // /metrics reacts too: an agent elsewhere sees loss towards demo-node-2.
      const a = demo.info.find((i) => i.node === 'demo-node-1')!;
      const lossy = (await scrape(a.url)).filter(
        (s) =>
          s.name === 'podmesh_pair_loss_ratio' &&
          s.labels['target_node'] === 'demo-node-2' &&
          s.value > 0,
      );
      t.true(lossy.length > 0, 'podmesh_pair_loss_ratio > 0 towards demo-node-2');
    }
    // Heal all.
    t.is((await post(url, [])).status, 200);
    await until(
      `${c.title}: finding clears`,
      async () => ((await findings(url)).some(c.matches) ? undefined : true),
      45_000,
      500,
    );
  }
});

test('the fault endpoint refuses unknown names and malformed bodies, changing nothing', async (t) => {
  const demo = await startDemo({
    nodes: 2,
    httpPort: 19900,
    controllerPort: 0,
    sources: {},
    log: silent,
  });
  t.teardown(() => demo.stop());
  const url = demo.controllerUrl;
  const unknown = await post(url, [{ kind: 'loss', node: 'demo-node-9', percent: 10 }]);
  t.is(unknown.status, 400);
  t.regex(((await unknown.json()) as { error: string }).error, /no demo-node-9/);
  const bad = await fetch(`${url}/api/v1/demo/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ faults: [{ kind: 'loss', node: 'demo-node-1', percent: 0 }] }),
  });
  t.is(bad.status, 400);
  const now = await fetch(`${url}/api/v1/demo/faults`);
  t.is((await fetch(`${url}/healthz`)).headers.get('x-podmesh-demo'), 'faults');
  t.deepEqual(((await now.json()) as DemoFaultState).faults, []);
});

test('a controller that is not the demo has no fault endpoint', async (t) => {
  const app = createControllerApp({
    matrix: () => undefined,
    coverage: () => ({}),
    renderMetrics: () => Promise.resolve(''),
    isReady: () => false,
  });
  const server = await listen(app, '127.0.0.1', 0);
  t.teardown(() => closeServer(server));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  t.is((await fetch(`http://127.0.0.1:${port}/api/v1/demo/faults`)).status, 404);
  t.is((await fetch(`http://127.0.0.1:${port}/healthz`)).headers.get('x-podmesh-demo'), null);
  const res = await post(`http://127.0.0.1:${port}`, [{ kind: 'mtu', node: 'a' }]);
  t.is(res.status, 404);
});

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;

test('podmesh demo --fault refuses a malformed fault before starting anything', (t) => {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', MAIN, 'demo', '--fault', 'demo-node-2:loss=300', '--fault', 'nonsense'],
    { encoding: 'utf8', timeout: 30_000 },
  );
  t.is(r.status, 2, r.stderr);
  t.regex(r.stderr, /--fault: "demo-node-2:loss=300"/);
  t.regex(r.stderr, /--fault: "nonsense" is not a fault/);
});

test('podmesh demo --fault starts the demo with the fault on', async (t) => {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      MAIN,
      'demo',
      '--nodes',
      '2',
      '--base-port',
      '19920',
      '--controller-port',
      '0',
      '--fault',
      'demo-node-2:mtu',
      '--fault',
      'dns:demo-node-1',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const url = await until(
    'the demo prints its web UI address',
    () => /web UI\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1],
    30_000,
    100,
  );
  const body = (await (await fetch(`${url}/api/v1/demo/faults`)).json()) as DemoFaultState;
  t.deepEqual(body, {
    targets: {
      nodes: ['demo-node-1', 'demo-node-2'],
      replicas: ['demo-node-1', 'demo-node-2'],
      ports: ['demo-web'],
    },
    faults: [
      { kind: 'mtu', node: 'demo-node-2' },
      { kind: 'dns-servfail', replica: 'demo-node-1' },
    ],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
});
