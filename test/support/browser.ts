// Test helpers for the web UI: launch Debian's Chromium through playwright-core (no browser
// download), open a page that records its own errors, and read the heatmap through the stable
// data-* attributes app.js sets, so the demo test and the network-lab tests share one reader.

import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Where screenshots go: test-artifacts/ at the repository root. */
export const ARTIFACTS = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'test-artifacts',
);

/**
 * Launches headless Chromium with a fresh profile (playwright makes a temporary user-data dir
 * per launch and removes it on close). Fails, never skips, when the browser is missing.
 */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} not found: the web UI tests need Debian's Chromium (apt-get install chromium)`,
    );
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-gpu',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

export interface UiPage {
  readonly page: Page;
  /** Uncaught exceptions and console errors the page produced, for tests to assert on. */
  readonly errors: string[];
  close(): Promise<void>;
}

/**
 * Opens the UI at `url` on a laptop-sized viewport. `refreshMs` speeds up the UI's polling; the
 * page's selections (path, protocol, size, metric) can be given as query parameters.
 */
export async function openUi(
  browser: Browser,
  url: string,
  query: Record<string, string> = {},
): Promise<UiPage> {
  const context = await browser.newContext({
    viewport: { width: 1440, height: 900 },
    deviceScaleFactor: 1,
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  const q = new URLSearchParams({ refresh: '500', ...query });
  await page.goto(`${url}/?${q.toString()}`);
  return { page, errors, close: () => context.close() };
}

/**
 * The little of a DOM element these helpers read inside the page; the project compiles without
 * the DOM library, so callbacks that run in the browser are typed with this instead.
 */
export interface DomElement {
  getAttribute(name: string): string | null;
  readonly textContent: string | null;
}

export type CellState = 'ok' | 'warn' | 'bad' | 'nodata' | 'self';

export interface HeatCell {
  readonly source: string;
  readonly target: string;
  readonly state: CellState;
  readonly text: string;
}

/** Every cell of the matrix heatmap as currently rendered. */
export async function heatmapCells(page: Page): Promise<HeatCell[]> {
  return page.$$eval('#matrix tbody td.cell', (tds: DomElement[]) =>
    tds.map((td) => ({
      source: td.getAttribute('data-source') ?? '',
      target: td.getAttribute('data-target') ?? '',
      state: (td.getAttribute('data-state') ?? 'nodata') as CellState,
      text: (td.textContent ?? '').trim(),
    })),
  );
}

/** Row and column node names of the heatmap. */
export async function heatmapNodes(page: Page): Promise<{ rows: string[]; cols: string[] }> {
  const rows = await page.$$eval('#matrix tbody tr', (trs: DomElement[]) =>
    trs.map((tr) => tr.getAttribute('data-source') ?? ''),
  );
  const cols = await page.$$eval('#matrix thead th.node-head', (ths: DomElement[]) =>
    ths.map((th) => th.getAttribute('data-node') ?? ''),
  );
  return { rows, cols };
}

/** Switches the heatmap's selections through its form controls, as a reader would. */
export async function selectMatrix(
  page: Page,
  s: { path?: string; protocol?: string; size?: string; metric?: string },
): Promise<void> {
  for (const [key, value] of Object.entries(s))
    if (value !== undefined) await page.selectOption(`#sel-${key}`, value);
}

/** Polls `fn` until it returns something other than undefined/false, or fails with `what`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs: number,
  stepMs = 200,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: string | undefined;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e instanceof Error ? e.message : JSON.stringify(e);
    }
    if (Date.now() > end)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for: ${what}${last !== undefined ? ` (last error: ${last})` : ''}`,
      );
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Saves a full-page screenshot as test-artifacts/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
