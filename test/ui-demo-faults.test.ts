// The demo's fault menu in Debian's Chromium (playwright-core, as test/ui.test.ts): shown only
// on the demo's controller; choosing "DNS replica answers SERVFAIL" on demo-node-1 and Inject
// makes the dns finding naming that replica appear, and "Heal all" clears it. Then a loss fault
// towards demo-node-2 turns cells of its heatmap column from ok. Screenshots land in
// test-artifacts/.

import test from 'ava';
import type { Browser } from 'playwright-core';
import { startDemo } from '../src/demo/demo.ts';
import { createControllerApp } from '../src/server/controller-app.ts';
import { closeServer, listen } from '../src/server/http.ts';
import { silent } from './support/agents.ts';
import { heatmapCells, launchBrowser, openUi, screenshot, waitFor } from './support/browser.ts';

const FAST = [
  'window:',
  '  seconds: 10',
  'probes:',
  '  intervalMs: 250',
  '  timeoutMs: 250',
  '',
].join('\n');

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

test.serial('a controller that is not the demo shows no fault menu', async (t) => {
  const server = await listen(
    createControllerApp({
      matrix: () => undefined,
      coverage: () => ({ nodes: null }),
      renderMetrics: () => Promise.resolve(''),
      isReady: () => false,
    }),
    '127.0.0.1',
    0,
  );
  t.teardown(() => closeServer(server));
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`;
  const ui = await openUi(theBrowser(), url);
  t.teardown(() => ui.close());
  // Wait for the first refresh (which comes after the menu's own check was sent).
  await waitFor(
    'the page loaded',
    async () => (await ui.page.getAttribute('body', 'data-loaded')) === 'true',
    10_000,
  );
  t.true(await ui.page.locator('#demo-faults').isHidden());
});

test.serial('the fault menu injects a fault, its finding shows, Heal all clears it', async (t) => {
  t.timeout(120_000);
  const demo = await startDemo({
    nodes: 3,
    httpPort: 19940,
    controllerPort: 0,
    sources: { fileText: FAST },
    log: silent,
  });
  t.teardown(() => demo.stop());
  const ui = await openUi(theBrowser(), demo.controllerUrl);
  t.teardown(() => ui.close());
  const { page } = ui;
  await page.waitForSelector('#demo-faults:not([hidden])', { timeout: 10_000 });
  await waitFor(
    'healthy: no findings',
    async () =>
      (await page.getAttribute('body', 'data-loaded')) === 'true' &&
      (await page.locator('[data-finding-kind]').count()) === 0,
    20_000,
  );

  await page.selectOption('#fault-kind', 'dns-servfail');
  await page.selectOption('#fault-target', 'demo-node-1');
  await page.click('#fault-inject');
  await page.waitForSelector('#fault-list li[data-fault-kind="dns-servfail"]', {
    timeout: 5_000,
  });
  t.deepEqual(demo.faults.faults(), [{ kind: 'dns-servfail', replica: 'demo-node-1' }]);
  const title = await waitFor(
    'the dns finding naming demo-node-1 is shown',
    async () => {
      const f = page.locator('[data-finding-kind^="dns-"]').filter({ hasText: 'demo-node-1' });
      return (await f.count()) > 0
        ? await f.first().locator('.finding-title').textContent()
        : undefined;
    },
    20_000,
  );
  t.log(`finding: ${title}`);
  await screenshot(page, 'demo-fault-dns');

  await page.click('#fault-heal');
  await page.waitForSelector('#fault-list[data-count="0"]', { timeout: 5_000 });
  t.deepEqual(demo.faults.faults(), []);
  await waitFor(
    'the dns finding clears',
    async () => (await page.locator('[data-finding-kind^="dns-"]').count()) === 0,
    40_000,
  );

  // A loss fault turns demo-node-2's column (pod -> pod udp small, the default view) from ok.
  await page.selectOption('#fault-kind', 'loss');
  await page.selectOption('#fault-target', 'demo-node-2');
  await page.fill('#fault-percent', '50');
  await page.click('#fault-inject');
  await waitFor(
    "demo-node-2's column shows loss",
    async () => {
      const cells = await heatmapCells(page);
      const col = cells.filter((c) => c.target === 'demo-node-2' && c.source !== c.target);
      return col.length > 0 && col.every((c) => c.state !== 'ok' && c.state !== 'nodata');
    },
    20_000,
  );
  await screenshot(page, 'demo-fault-loss');
  await page.click('#fault-heal');
  await page.waitForSelector('#fault-list[data-count="0"]', { timeout: 5_000 });
  t.deepEqual(ui.errors, []);
});
