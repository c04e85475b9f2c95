// The controller's HTTP surface: the web UI (`/` and `/ui/…`), /api/v1/matrix,
// /api/v1/findings, /api/v1/coverage, /metrics, /healthz, /readyz.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Request, type Response } from 'express';
import { DEFAULT_HTTP_LIMITS, listen, type HttpLimits } from './http.ts';
import { sendJsonStreamed } from './json-stream.ts';
import type { WebSecurity } from './web-security.ts';

// The bodies come from the controller, which builds them to their declarations in src/api/
// (matrix.ts, findings.ts, coverage.ts); this module only serves them.
export interface ControllerView {
  /** The matrix; undefined before the first round. */
  matrix(): unknown;
  /**
   * The matrix summarised by a grouping (?summary=zone|node); undefined for a grouping it
   * doesn't know. Absent: no summaries (the query is refused).
   */
  matrixSummary?(by: string): unknown;
  /** Triage's report; undefined before the first round. Absent: this controller has no triage. */
  findings?(): unknown;
  /** The coverage report (there is always one; its `nodes` is null when nobody can tell). */
  coverage(): unknown;
  renderMetrics(): Promise<string>;
  isReady(): boolean;
}

/** Set on every response of the demo's controller (the UI shows its fault menu on it). */
export const DEMO_HEADER = 'X-Podmesh-Demo';

/**
 * `podmesh demo` only: its fault injection (src/demo/faults.ts), which validates the bodies
 * against src/api/demo-faults.ts (this module stays a leaf that imports no API code).
 */
export interface DemoFaultControl {
  /** The body of GET /api/v1/demo/faults. */
  body(): unknown;
  /** Replaces the faults from a POST body; rejects with a message a user can act on. */
  applyBody(body: unknown): Promise<void>;
}

export interface ControllerAppOptions {
  /** Where the UI's static files are; by default src/ui (or dist/src/ui) beside this module. */
  readonly uiDir?: string;
  /**
   * The demo's fault injection: only the demo passes it, so /api/v1/demo/faults exists on no
   * other controller (a production controller answers it 404, and the UI hides its menu).
   */
  readonly demoFaults?: DemoFaultControl;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

// The UI talks only to this server: no inline scripts or styles, nothing from elsewhere.
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  readonly body: Buffer;
  readonly type: string;
}

/**
 * Candidate UI directories: beside the module's directory (src/ui when run from source, dist/ui
 * for the bundle in dist/bundle/), then the checkout's src/ui when run from a compiled dist/src/.
 */
export function uiDirCandidates(moduleUrl: string = import.meta.url): string[] {
  return [
    fileURLToPath(new URL('../ui/', moduleUrl)),
    fileURLToPath(new URL('../../../src/ui/', moduleUrl)),
  ];
}

/**
 * Reads the UI once, at start-up, into memory: only regular, non-hidden files directly in the
 * directory with a known extension. Requests are answered from this map by exact name, so no request path ever
 * reaches the file system (no traversal, no listing, nothing writable).
 */
export function loadUi(dirs: readonly string[]): { assets: Map<string, Asset>; dir?: string } {
  const assets = new Map<string, Asset>();
  const dir = dirs.find((d) => existsSync(join(d, 'index.html')));
  if (dir === undefined) return { assets };
  for (const name of readdirSync(dir)) {
    const type = CONTENT_TYPES[extname(name)];
    const path = join(dir, name);
    if (type === undefined || name.startsWith('.') || !statSync(path).isFile()) continue;
    assets.set(name, { body: readFileSync(path), type });
  }
  return { assets, dir };
}

export function createControllerApp(
  view: ControllerView,
  options: ControllerAppOptions = {},
): express.Express {
  const dirs = options.uiDir !== undefined ? [options.uiDir] : uiDirCandidates();
  const ui = loadUi(dirs);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (options.demoFaults !== undefined)
    // How the UI learns it may show its fault menu without asking for a URL that 404s (and
    // logs an error in the browser's console) on every other controller.
    app.use((_req, res, next) => {
      res.set(DEMO_HEADER, 'faults');
      next();
    });

  const sendAsset = (res: Response, asset: Asset): void => {
    res
      .status(200)
      .set({
        'Content-Type': asset.type,
        'Cache-Control': 'no-cache',
        'X-Content-Type-Options': 'nosniff',
        'Content-Security-Policy': CSP,
        'Referrer-Policy': 'no-referrer',
      })
      .send(asset.body);
  };
  app.get('/', (_req: Request, res: Response) => {
    const index = ui.assets.get('index.html');
    if (index === undefined)
      res
        .status(503)
        .type('text/plain')
        .send(
          `the web UI's files were not found (looked for index.html in ${dirs.join(', ')}); ` +
            'the API is at /api/v1/matrix, /api/v1/findings and /api/v1/coverage\n',
        );
    else sendAsset(res, index);
  });
  app.get(['/ui', '/ui/'], (_req, res) => {
    res.redirect(302, '/');
  });
  // One path segment: `..`, `%2F` and friends arrive decoded in the parameter and match no name.
  app.get('/ui/:file', (req: Request<{ file: string }>, res: Response, next) => {
    const asset = ui.assets.get(req.params.file);
    if (asset === undefined) next();
    else sendAsset(res, asset);
  });

  app.get('/api/v1/matrix', (req: Request, res: Response) => {
    const m = view.matrix();
    const summary = req.query['summary'];
    if (m === undefined)
      res.status(503).json({ error: 'no matrix yet: the first collection round is still running' });
    else if (summary !== undefined) {
      const s = typeof summary === 'string' ? view.matrixSummary?.(summary) : undefined;
      if (s === undefined)
        res.status(400).json({ error: 'summary: one of zone, node (or no summary: every cell)' });
      else res.json(s);
    }
    // In pieces, not res.json: the matrix is tens to hundreds of MB of JSON (json-stream.ts).
    else sendJsonStreamed(res, m).catch(() => res.destroy());
  });
  app.get('/api/v1/findings', (_req, res) => {
    if (view.findings === undefined) {
      res.status(404).json({ error: 'this controller does not run triage' });
      return;
    }
    const f = view.findings();
    if (f === undefined)
      res
        .status(503)
        .json({ error: 'no findings yet: the first collection round is still running' });
    else res.json(f);
  });
  app.get('/api/v1/coverage', (_req, res) => {
    res.json(view.coverage());
  });
  const demo = options.demoFaults;
  if (demo !== undefined) {
    app.get('/api/v1/demo/faults', (_req, res) => {
      res.json(demo.body());
    });
    // express.json() parses only application/json: a cross-site form can't send that without a
    // CORS preflight, which this server never grants.
    app.post('/api/v1/demo/faults', express.json({ limit: '16kb' }), (req, res) => {
      demo.applyBody(req.body as unknown).then(
        () => res.json(demo.body()),
        (e: unknown) => res.status(400).json({ error: (e as Error).message }),
      );
    });
  }
  app.get('/metrics', (_req, res) => {
    view.renderMetrics().then(
      (text) => res.type('text/plain; version=0.0.4; charset=utf-8').send(text),
      (e: unknown) =>
        res
          .status(500)
          .type('text/plain')
          .send(`metrics rendering failed: ${String(e)}\n`),
    );
  });
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/readyz', (_req, res) => {
    if (view.isReady()) res.type('text/plain').send('ready\n');
    else res.status(503).type('text/plain').send('not ready: no collection round finished yet\n');
  });
  app.use((_req, res) => {
    res
      .status(404)
      .type('text/plain')
      .send(
        'not found; try / (the web UI), /api/v1/matrix, /api/v1/findings, /api/v1/coverage, ' +
          '/metrics, /healthz or /readyz\n',
      );
  });
  return app;
}

/** What serveController needs of a controller (kept structural: the server imports no controller code). */
export interface ServableController {
  matrix(): unknown;
  matrixSummary?(by: string): unknown;
  findings?(): unknown;
  coverageReport(): unknown;
  readonly registry: { metrics(): Promise<string> };
  start(): void;
}

/**
 * Binds the controller's HTTP surface (with the agent's connection cap and deadlines, which
 * keep /healthz and /readyz answering under a flood), then starts its collection rounds;
 * resolves with the server and the bound port (useful when 0 was asked for). `security`: TLS
 * and authentication from the web config, as for the agent's server.
 */
export async function serveController(
  controller: ServableController,
  address: string,
  port: number,
  limits: HttpLimits = DEFAULT_HTTP_LIMITS,
  security?: WebSecurity,
  appOptions: ControllerAppOptions = {},
): Promise<{ server: Server; port: number }> {
  const server = await listen(
    createControllerApp(
      {
        matrix: () => controller.matrix(),
        ...(controller.matrixSummary !== undefined
          ? { matrixSummary: (by: string) => controller.matrixSummary?.(by) }
          : {}),
        ...(controller.findings !== undefined ? { findings: () => controller.findings?.() } : {}),
        coverage: () => controller.coverageReport(),
        renderMetrics: () => controller.registry.metrics(),
        isReady: () => controller.matrix() !== undefined,
      },
      appOptions,
    ),
    address,
    port,
    limits,
    security,
  );
  controller.start();
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr !== null ? addr.port : port };
}
