// The controller's HTTP surface: /api/v1/matrix, /api/v1/coverage, /metrics, /healthz, /readyz.

import type { Server } from 'node:http';
import express, { type Request, type Response } from 'express';
import { listen } from './http.ts';

export interface ControllerView {
  matrix(): unknown;
  coverage(): unknown;
  renderMetrics(): Promise<string>;
  isReady(): boolean;
}

export function createControllerApp(view: ControllerView): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/api/v1/matrix', (_req: Request, res: Response) => {
    const m = view.matrix();
    if (m === undefined)
      res.status(503).json({ error: 'no matrix yet: the first collection round is still running' });
    else res.json(m);
  });
  app.get('/api/v1/coverage', (_req, res) => {
    res.json({ apiVersion: 'podmesh.io/v1', kind: 'Coverage', nodes: view.coverage() ?? null });
  });
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
  return app;
}

/** What serveController needs of a controller (kept structural: the server imports no controller code). */
export interface ServableController {
  matrix(): unknown;
  coverage(): unknown;
  readonly registry: { metrics(): Promise<string> };
  start(): void;
}

/**
 * Binds the controller's HTTP surface, then starts its collection rounds; resolves with the
 * server and the bound port (useful when 0 was asked for).
 */
export async function serveController(
  controller: ServableController,
  address: string,
  port: number,
): Promise<{ server: Server; port: number }> {
  const server = await listen(
    createControllerApp({
      matrix: () => controller.matrix(),
      coverage: () => controller.coverage(),
      renderMetrics: () => controller.registry.metrics(),
      isReady: () => controller.matrix() !== undefined,
    }),
    address,
    port,
  );
  controller.start();
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr !== null ? addr.port : port };
}
