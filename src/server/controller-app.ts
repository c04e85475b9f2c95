// The controller's HTTP surface: /api/v1/matrix, /api/v1/coverage, /metrics, /healthz, /readyz.

import express, { type Request, type Response } from 'express';

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
