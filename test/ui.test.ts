// The web UI the controller serves, checked over HTTP and in Debian's Chromium (playwright-core):
// the files are served safely, a hand-made partition turns one node's row and column red and its
// finding is shown with evidence and a copyable command, an unreachable API raises the error
// banner, and the real demo renders a full, healthy matrix. Screenshots land in test-artifacts/.

import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { Browser } from 'playwright-core';
import type { Finding, FindingsReport, OpenFinding } from '../src/api/findings.ts';
import type { Cell, DnsCell, Matrix, PortCell } from '../src/api/matrix.ts';
import { startDemo } from '../src/demo/demo.ts';
import { createControllerApp, type ControllerView } from '../src/server/controller-app.ts';
import { closeServer, listen } from '../src/server/http.ts';
import { silent } from './support/agents.ts';
import {
  heatmapCells,
  heatmapNodes,
  launchBrowser,
  openUi,
  screenshot,
  selectMatrix,
  waitFor,
  type DomElement,
} from './support/browser.ts';

// ---------- a hand-made cluster: four nodes, node-3 cut off ----------

const NODES = ['node-1', 'node-2', 'node-3', 'node-4'];
const ZONES: Record<string, string> = {
  'node-1': 'zone-a',
  'node-2': 'zone-a',
  'node-3': 'zone-b',
  'node-4': 'zone-b',
};
const ISOLATED = 'node-3';
// Recent times, so "seen 5 s ago" reads as in a live cluster.
const AT = new Date(Date.now() - 5_000).toISOString();
const LAST_FAILURE = new Date(Date.now() - 7_000).toISOString();

function cell(
  s: string,
  t: string,
  path: 'pod-to-pod' | 'host-to-host',
  protocol: Cell['protocol'],
  size: Cell['size'],
): Cell {
  const lost = s === ISOLATED || t === ISOLATED;
  const [sn, tn] = path === 'pod-to-pod' ? (['pod', 'pod'] as const) : (['host', 'host'] as const);
  const sent = 60;
  // A little spread in latency, so the latency view has something to show.
  const base =
    0.0003 + 0.0002 * (NODES.indexOf(s) + NODES.indexOf(t)) + (size === 'mtu' ? 0.0001 : 0);
  return {
    sourceNode: s,
    sourceNetwork: sn,
    targetNode: t,
    targetNetwork: tn,
    path,
    scope: ZONES[s] === ZONES[t] ? 'same-zone' : 'cross-zone',
    protocol,
    size,
    sent,
    lost: lost ? sent : 0,
    lossRatio: lost ? 1 : 0,
    forwardLost: lost ? sent : 0,
    reverseLost: 0,
    rttSeconds: lost
      ? null
      : { min: base * 0.8, p50: base, p90: base * 1.5, p99: base * 2, max: base * 3, mean: base },
    lastFailure: lost ? LAST_FAILURE : null,
  };
}

function partitionedMatrix(): Matrix {
  const cells: Cell[] = [];
  for (const path of ['pod-to-pod', 'host-to-host'] as const)
    for (const s of NODES)
      for (const t of NODES) {
        if (s === t) continue;
        for (const [protocol, size] of [
          ['udp', 'small'],
          ['udp', 'mtu'],
          ['tcp', 'small'],
        ] as const)
          cells.push(cell(s, t, path, protocol, size));
      }
  const dns: DnsCell[] = [];
  for (const s of NODES)
    for (const [serverKind, server] of [
      ['service', 'service'],
      ['replica', 'node-1'],
      ['replica', 'node-4'],
    ] as const)
      for (const query of ['service', 'external']) {
        const failed = s === ISOLATED ? 6 : 0;
        dns.push({
          sourceNode: s,
          sourceNetwork: 'pod',
          serverKind,
          server,
          query,
          name: query === 'service' ? 'kubernetes.default.svc.cluster.local' : 'example.com',
          transport: 'udp',
          sent: 6,
          failed,
          answeredRatio: (6 - failed) / 6,
          outcomes: failed > 0 ? { timeout: 6 } : { noerror: 6 },
          lastOutcome: failed > 0 ? 'timeout' : 'noerror',
          lastDetail: null,
          latencySeconds: failed > 0 ? null : { p50: 0.0011, p99: 0.0032, max: 0.004 },
        });
      }
  const ports: PortCell[] = NODES.map((s) => ({
    sourceNode: s,
    sourceNetwork: 'pod',
    target: 'kube-apiserver',
    address: '10.96.0.1',
    port: 443,
    expected: 'open',
    sent: 12,
    open: s === ISOLATED ? 0 : 12,
    openRatio: s === ISOLATED ? 0 : 1,
    outcomes: { [s === ISOLATED ? 'timeout' : 'open']: 12 },
    lastOutcome: s === ISOLATED ? 'timeout' : 'open',
    lastDetail: null,
  }));
  return {
    apiVersion: 'podmesh.io/v1',
    kind: 'Matrix',
    generatedAt: AT,
    agents: NODES.flatMap((node) =>
      (['host', 'pod'] as const).map((network) => ({
        node,
        network,
        url: `http://10.0.0.${NODES.indexOf(node) + 1}:9860`,
        state: 'ok' as const,
        zone: ZONES[node] ?? '',
        lastSeen: AT,
      })),
    ),
    nodes: NODES,
    zones: ZONES,
    cells,
    dns,
    ports,
    apiserver: [],
  };
}

const ISOLATION_COMMAND = `kubectl get pods -n podmesh -o wide --field-selector spec.nodeName=${ISOLATED}`;

function isolationFindings(): FindingsReport {
  const finding: OpenFinding = {
    id: `node-isolated:${ISOLATED}`,
    kind: 'node-isolated',
    severity: 'critical',
    subject: ISOLATED,
    nodes: [ISOLATED],
    title: `${ISOLATED} is isolated`,
    summary: `Every probe to and from ${ISOLATED} is lost, on the pod and the host network alike.`,
    evidence: [
      { text: `node-1 → ${ISOLATED} pod-to-pod udp small: 60 of 60 lost`, value: 1 },
      { text: `${ISOLATED} → node-2 host-to-host udp small: 60 of 60 lost`, value: 1 },
    ],
    confidence: 0.9,
    nextSteps: [
      { text: `Check that ${ISOLATED} is Ready and its agents run.`, command: ISOLATION_COMMAND },
      { text: 'Look at the node network (link, routes, firewall) on the node itself.' },
    ],
    since: AT,
    changes: [
      {
        at: AT,
        kind: 'node-rebooted',
        node: ISOLATED,
        object: ISOLATED,
        detail: `${ISOLATED} rebooted (new boot ID)`,
      },
    ],
  };
  return {
    apiVersion: 'podmesh.io/v1',
    kind: 'Findings',
    generatedAt: AT,
    matrixAt: AT,
    triage: true,
    findings: [finding],
  };
}

interface FakeView extends ControllerView {
  m: unknown;
  f: unknown;
}

function fakeView(m: unknown, f: unknown, withFindings = true): FakeView {
  const v: FakeView = {
    m,
    f,
    matrix: () => v.m,
    coverage: () => ({ apiVersion: 'podmesh.io/v1', kind: 'Coverage', nodes: null }),
    renderMetrics: () => Promise.resolve(''),
    isReady: () => v.m !== undefined,
  };
  if (withFindings) v.findings = () => v.f;
  return v;
}

async function serve(
  view: ControllerView,
  port = 0,
  uiDir?: string,
): Promise<{ server: Server; url: string; port: number }> {
  const server = await listen(
    createControllerApp(view, uiDir !== undefined ? { uiDir } : {}),
    '127.0.0.1',
    port,
  );
  const p = (server.address() as { port: number }).port;
  return { server, url: `http://127.0.0.1:${p}`, port: p };
}

/** GET with the path sent exactly as written: fetch() would normalise the `..` away. */
function rawGet(
  url: string,
  path: string,
  method = 'GET',
): Promise<{ status: number; type: string; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] ?? '', body }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

// ---------- HTTP ----------

test('the UI and its assets are served with their content types, and nothing else is', async (t) => {
  const { server, url } = await serve(fakeView(undefined, undefined));
  t.teardown(() => closeServer(server));

  const index = await rawGet(url, '/');
  t.is(index.status, 200);
  t.regex(index.type, /^text\/html/);
  t.true(index.body.includes('<table id="matrix"'), 'the page has the heatmap table');

  const js = await rawGet(url, '/ui/app.js');
  t.is(js.status, 200);
  t.regex(js.type, /^text\/javascript/);
  t.is(js.body, readFileSync(new URL('../src/ui/app.js', import.meta.url), 'utf8'));
  const css = await rawGet(url, '/ui/style.css');
  t.is(css.status, 200);
  t.regex(css.type, /^text\/css/);

  // Before the first round: both data endpoints say so with a JSON error.
  for (const path of ['/api/v1/findings', '/api/v1/matrix']) {
    const res = await fetch(`${url}${path}`);
    t.is(res.status, 503, path);
    const body = (await res.json()) as { error?: unknown };
    t.regex(String(body.error), /first collection round/, path);
  }

  for (const path of [
    '/ui/../controller-app.ts',
    '/ui/../server/controller-app.ts',
    '/ui/..%2Fserver%2Fcontroller-app.ts',
    '/ui/..%2fserver%2fcontroller-app.ts',
    '/ui/%2e%2e%2fserver%2fcontroller-app.ts',
    '/ui/%2E%2E/server/controller-app.ts',
    '/ui/..%5cserver%5ccontroller-app.ts',
    '/ui/%252e%252e%252fserver%252fcontroller-app.ts',
    '/ui/.%2e/.%2e/server/controller-app.ts',
    '/ui/..\\server\\controller-app.ts',
    '/../src/server/controller-app.ts',
    '/ui/index.html/../../server/controller-app.ts',
  ]) {
    const res = await rawGet(url, path);
    t.is(res.status, 404, path);
    t.false(res.body.includes('createControllerApp'), `${path} leaked source`);
  }
  // No listing of the directory, and nothing accepts writes.
  const listing = await rawGet(url, '/ui/');
  t.not(listing.status, 200);
  t.false(listing.body.includes('app.js'));
  for (const method of ['POST', 'PUT', 'DELETE']) {
    const res = await rawGet(url, '/ui/app.js', method);
    t.is(res.status, 404, method);
  }
  t.is((await rawGet(url, '/ui/missing.js')).status, 404);
});

test('findings: 404 without triage, the report once there is one', async (t) => {
  const none = await serve(fakeView(undefined, undefined, false));
  t.teardown(() => closeServer(none.server));
  const res = await fetch(`${none.url}/api/v1/findings`);
  t.is(res.status, 404);
  t.regex(String(((await res.json()) as { error?: unknown }).error), /triage/);

  const report = isolationFindings();
  const some = await serve(fakeView(partitionedMatrix(), report));
  t.teardown(() => closeServer(some.server));
  const ok = await fetch(`${some.url}/api/v1/findings`);
  t.is(ok.status, 200);
  t.deepEqual(await ok.json(), JSON.parse(JSON.stringify(report)));
});

test('without its files the UI answers with a clear 503, and the API still works', async (t) => {
  const empty = await mkdtemp(join(tmpdir(), 'podmesh-ui-'));
  t.teardown(() => rm(empty, { recursive: true, force: true }));
  const { server, url } = await serve(fakeView(partitionedMatrix(), undefined), 0, empty);
  t.teardown(() => closeServer(server));
  const res = await rawGet(url, '/');
  t.is(res.status, 503);
  t.true(res.body.includes(empty), 'names where it looked');
  t.is((await fetch(`${url}/api/v1/matrix`)).status, 200);
});

// ---------- in the browser ----------

let browser: Browser | undefined;
test.before(async () => {
  browser = await launchBrowser();
});
test.after.always(async () => {
  await browser?.close();
});
function theBrowser(): Browser {
  if (browser === undefined) throw new Error('the browser did not start');
  return browser;
}

test.serial("a partitioned node's row and column are red and its finding is shown", async (t) => {
  const { server, url } = await serve(fakeView(partitionedMatrix(), isolationFindings()));
  t.teardown(() => closeServer(server));
  const ui = await openUi(theBrowser(), url);
  t.teardown(() => ui.close());
  const { page } = ui;
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: url });

  const cells = await waitFor(
    'the heatmap has every pair',
    async () => {
      const c = await heatmapCells(page);
      return c.length === NODES.length * NODES.length ? c : undefined;
    },
    15_000,
  );
  t.deepEqual(await heatmapNodes(page), { rows: NODES, cols: NODES });
  for (const c of cells) {
    const expected =
      c.source === c.target
        ? 'self'
        : c.source === ISOLATED || c.target === ISOLATED
          ? 'bad'
          : 'ok';
    t.is(c.state, expected, `${c.source} → ${c.target}`);
    if (expected === 'bad') t.is(c.text, '100%');
    if (expected === 'ok') t.is(c.text, '0%');
  }
  t.is((await page.textContent('#matrix-summary'))?.includes('6 failing'), true);
  // The isolated node's headers are flagged by its finding.
  t.is(await page.locator(`#matrix thead th.flagged[data-node="${ISOLATED}"]`).count(), 1);
  t.is(await page.locator('#matrix th.flagged').count(), 2);

  const finding = page.locator('#findings li[data-finding-kind="node-isolated"]');
  await finding.waitFor();
  t.is(await page.getAttribute('#findings', 'data-state'), 'some');
  t.is(await finding.getAttribute('data-severity'), 'critical');
  t.is((await finding.locator('.finding-title').textContent())?.trim(), `${ISOLATED} is isolated`);
  t.deepEqual(
    (await finding.locator('.evidence li').allTextContents()).map((s) => s.trim()),
    isolationFindings().findings[0]!.evidence.map((e) => e.text),
  );
  t.regex(
    (await finding.locator('.changes li[data-change-kind="node-rebooted"]').textContent()) ?? '',
    new RegExp(`\\d{1,2}:\\d\\d:\\d\\d.* ${ISOLATED} rebooted \\(new boot ID\\)$`),
  );
  t.is((await finding.locator('code.command').textContent())?.trim(), ISOLATION_COMMAND);
  await finding.locator('button.copy').click();
  t.is(await page.evaluate<string>('navigator.clipboard.readText()'), ISOLATION_COMMAND);

  // The same pairs under latency: nothing came back, so "lost", still failing.
  await selectMatrix(page, { metric: 'p99' });
  await waitFor(
    'the latency view',
    async () => (await heatmapCells(page)).some((c) => c.text === 'lost'),
    5_000,
  );
  for (const c of await heatmapCells(page)) {
    if (c.source === c.target) continue;
    if (c.source === ISOLATED || c.target === ISOLATED) {
      t.is(c.state, 'bad');
      t.is(c.text, 'lost');
    } else {
      t.is(c.state, 'ok');
      t.regex(c.text, /^[\d.]+ ms$/);
    }
  }
  await selectMatrix(page, { metric: 'loss' });

  // DNS: the isolated node's lookups fail on every server, the others answer.
  const dnsStates = await page.$$eval('#dns-matrix tbody td.cell', (tds: DomElement[]) =>
    tds.map(
      (td) =>
        `${td.getAttribute('data-source')}/${td.getAttribute('data-server')}:${td.getAttribute('data-state')}`,
    ),
  );
  t.is(dnsStates.length, NODES.length * 3);
  for (const s of dnsStates)
    t.true(s.startsWith(`${ISOLATED}/`) ? s.endsWith(':bad') : s.endsWith(':ok'), s);
  t.is(
    await page.locator(`#ports tbody tr[data-source="${ISOLATED}"][data-state="bad"]`).count(),
    1,
  );
  t.is(await page.locator('#ports tbody tr[data-state="ok"]').count(), NODES.length - 1);

  // Hovering a cell puts its numbers in the detail box (also shown in the screenshot).
  await page.hover(`#matrix td[data-source="node-1"][data-target="${ISOLATED}"]`);
  await page.waitForSelector('#cell-detail dl');
  t.regex((await page.textContent('#cell-detail')) ?? '', /60 \/ 60 \(100%\)/);
  t.deepEqual(ui.errors, []);
  t.log(await screenshot(page, 'ui-partition'));
});

test.serial(
  'with peers.rotation a cell shows its age, and a cell measured long before the matrix is stale',
  async (t) => {
    // node-1 ↔ node-4 visited by the rotation: pod-to-pod udp small last measured 45 s before
    // the matrix one way (stale), 12 s the other; every other cell is a core peer's, 1 s old.
    const m = partitionedMatrix();
    const at = Date.parse(m.generatedAt);
    const before = (s: number): string => new Date(at - s * 1000).toISOString();
    const rotating = (c: Cell): boolean =>
      (c.sourceNode === 'node-1' && c.targetNode === 'node-4') ||
      (c.sourceNode === 'node-4' && c.targetNode === 'node-1');
    const cells = m.cells.map((c) => ({
      ...c,
      rotating: rotating(c),
      measuredAt: before(!rotating(c) ? 1 : c.sourceNode === 'node-1' ? 45 : 12),
    }));
    const { server, url } = await serve(fakeView({ ...m, cells }, isolationFindings()));
    t.teardown(() => closeServer(server));
    const ui = await openUi(theBrowser(), url);
    t.teardown(() => ui.close());
    const { page } = ui;
    await waitFor('the heatmap', async () => (await heatmapCells(page)).length === 16, 15_000);
    const attrs = await page.$$eval('#matrix tbody td.cell', (tds: DomElement[]) =>
      tds.map((td) => ({
        key: `${td.getAttribute('data-source')}>${td.getAttribute('data-target')}`,
        age: td.getAttribute('data-age'),
        stale: td.getAttribute('data-stale'),
        rotating: td.getAttribute('data-rotating'),
        title: td.getAttribute('title') ?? '',
      })),
    );
    const of = (k: string) => attrs.find((a) => a.key === k)!;
    t.deepEqual(
      attrs.filter((a) => a.stale === 'true').map((a) => a.key),
      ['node-1>node-4'],
    );
    t.is(of('node-1>node-4').age, '45');
    t.is(of('node-1>node-4').rotating, 'true');
    t.regex(
      of('node-1>node-4').title,
      /measured 45 s before this matrix \(stale\); rotating peer \(visited once a coverage period\)/,
    );
    t.is(of('node-4>node-1').age, '12');
    t.is(of('node-4>node-1').stale, null);
    t.regex(of('node-4>node-1').title, /measured 12 s before this matrix; rotating peer/);
    t.is(of('node-1>node-2').rotating, 'false');
    t.regex(of('node-1>node-2').title, /measured 1 s before this matrix; core peer/);
    // Visibly different: washed-out stripes over its colour.
    const look = await page.$eval(
      '#matrix td[data-source="node-1"][data-target="node-4"]',
      (td: DomElement) => {
        const st = (
          globalThis as unknown as {
            getComputedStyle(e: unknown): { backgroundImage: string; fontStyle: string };
          }
        ).getComputedStyle(td);
        return { image: st.backgroundImage, font: st.fontStyle };
      },
    );
    t.regex(look.image, /repeating-linear-gradient/);
    t.is(look.font, 'italic');
    t.regex((await page.textContent('#matrix-summary')) ?? '', /\(1 stale\)/);
    t.regex((await page.textContent('#matrix-legend')) ?? '', /stale \(measured over 30 s ago\)/);
    await page.hover('#matrix td[data-source="node-1"][data-target="node-4"]');
    await page.waitForSelector('#cell-detail dl');
    t.regex(
      (await page.textContent('#cell-detail')) ?? '',
      /measured 45 s before this matrix \(stale\)/,
    );
    t.deepEqual(ui.errors, []);
    t.log(await screenshot(page, 'ui-rotating-stale'));
  },
);

test.serial(
  'waiting for the first round, then the matrix; an unreachable API raises the error banner',
  async (t) => {
    const view = fakeView(undefined, undefined);
    let served = await serve(view);
    const port = served.port;
    t.teardown(() => closeServer(served.server));
    const ui = await openUi(theBrowser(), served.url);
    t.teardown(() => ui.close());
    const { page } = ui;

    await page.waitForSelector('#info-banner:not([hidden])');
    t.regex((await page.textContent('#info-banner')) ?? '', /first collection round/);
    await page.waitForSelector('#findings[data-state="waiting"]');
    t.true(await page.isHidden('#error-banner'));

    view.m = partitionedMatrix();
    view.f = { ...isolationFindings(), findings: [] };
    await page.waitForSelector('#findings[data-state="none"]');
    t.regex((await page.textContent('#findings')) ?? '', /No findings/);
    await waitFor('the heatmap', async () => (await heatmapCells(page)).length === 16, 5_000);
    t.true(await page.isHidden('#info-banner'));
    t.true(await page.isHidden('#error-banner'));

    await closeServer(served.server);
    await page.waitForSelector('#error-banner:not([hidden])', { timeout: 10_000 });
    t.regex((await page.textContent('#error-banner')) ?? '', /Cannot reach the podmesh controller/);
    // What was last seen stays on screen.
    t.is((await heatmapCells(page)).length, 16);
    t.log(await screenshot(page, 'ui-unreachable'));

    // Back on the same port: the banner goes away by itself.
    served = await serve(view, port);
    await page.waitForSelector('#error-banner', { state: 'hidden', timeout: 10_000 });
    t.pass();
  },
);

test.serial('the demo: a full, healthy matrix, DNS of the Service and its replicas', async (t) => {
  const demo = await startDemo({
    nodes: 3,
    httpPort: 19910,
    controllerPort: 0,
    sources: {},
    log: silent,
  });
  t.teardown(() => demo.stop());
  const ui = await openUi(theBrowser(), demo.controllerUrl);
  t.teardown(() => ui.close());
  const { page } = ui;
  const nodes = ['demo-node-1', 'demo-node-2', 'demo-node-3'];

  // Every path: 3 × 3 nodes; pod→pod and host→host skip an agent to itself, pod↔host don't.
  for (const path of ['host-to-pod', 'pod-to-host', 'host-to-host', 'pod-to-pod']) {
    await selectMatrix(page, { path, protocol: 'udp', size: 'small', metric: 'loss' });
    const cells = await waitFor(
      `every ${path} udp small cell has data and is ok`,
      async () => {
        const c = await heatmapCells(page);
        const full =
          c.length === 9 &&
          c.every((x) =>
            isSelf(path, x.source, x.target) ? x.state === 'self' : x.state === 'ok',
          );
        return full ? c : undefined;
      },
      30_000,
    );
    t.deepEqual(await heatmapNodes(page), { rows: nodes, cols: nodes }, path);
    t.is(
      cells.filter((c) => c.state === 'ok').length,
      path === 'pod-to-pod' || path === 'host-to-host' ? 6 : 9,
      path,
    );
  }

  // DNS: the Service VIP and both replicas, from all six agents, all answering.
  const dns = await waitFor(
    'every DNS cell answered',
    async () => {
      const c = await page.$$eval('#dns-matrix tbody td.cell', (tds: DomElement[]) =>
        tds.map((td) => ({
          server: `${td.getAttribute('data-server-kind')}/${td.getAttribute('data-server')}`,
          state: td.getAttribute('data-state'),
        })),
      );
      return c.length === 6 * 3 && c.every((x) => x.state === 'ok') ? c : undefined;
    },
    30_000,
  );
  t.deepEqual([...new Set(dns.map((d) => d.server))].sort(), [
    'replica/demo-node-1',
    'replica/demo-node-2',
    'service/service',
  ]);

  // Findings mirror what the controller says.
  const res = await fetch(`${demo.controllerUrl}/api/v1/findings`);
  const report =
    res.status === 200
      ? ((await res.json()) as { triage?: boolean; findings: Finding[] })
      : undefined;
  if (report === undefined || report.triage === false) {
    await page.waitForSelector('#findings[data-state="unavailable"]');
    t.log('the demo runs without triage: the findings panel says so');
  } else {
    t.deepEqual(
      report.findings.filter((f) => f.severity === 'critical').map((f) => f.title),
      [],
      'a healthy demo has no critical finding',
    );
    if (report.findings.length === 0) {
      await page.waitForSelector('#findings[data-state="none"]');
      t.regex((await page.textContent('#findings')) ?? '', /No findings/);
    } else {
      await page.waitForSelector('#findings[data-state="some"]');
      const titles = await page.locator('#findings .finding-title').allTextContents();
      for (const f of report.findings) t.true(titles.includes(f.title), f.title);
    }
  }

  t.is(await page.locator('#agents tbody tr[data-state="ok"]').count(), 6);
  t.true(await page.isVisible('#coverage-unknown'));
  t.true(await page.isHidden('#error-banner'));
  t.deepEqual(ui.errors, []);
  t.log(await screenshot(page, 'ui-demo'));
});

/** Whether the heatmap cell is an agent paired with itself (same node, same network). */
function isSelf(path: string, source: string, target: string): boolean {
  return source === target && (path === 'pod-to-pod' || path === 'host-to-host');
}
