// The agent's HTTP surface: /metrics, /healthz, /readyz and /api/v1/results (documented in
// docs/api.md). It only serves what the agent hands it; it never measures anything itself.

import type { Server } from 'node:http';
import express, { type Request, type Response } from 'express';
import { DEFAULT_HTTP_LIMITS, limitConnections, serverOptions, type HttpLimits } from './limits.ts';
import { createWebServer, secured, TLS_RELOAD_MS, type WebSecurity } from './web-security.ts';

export { DEFAULT_HTTP_LIMITS, type HttpLimits } from './limits.ts';

export interface AgentView {
  /** True from the first peer list until shutdown begins. */
  isReady(): boolean;
  /** Why the agent is not ready, for /readyz's body. */
  notReadyReason(): string;
  renderMetrics(): Promise<string>;
  results(): unknown;
}

export function createApp(view: AgentView): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/metrics', (_req: Request, res: Response) => {
    view.renderMetrics().then(
      (text) => {
        res.type('text/plain; version=0.0.4; charset=utf-8').send(text);
      },
      (e: unknown) => {
        res
          .status(500)
          .type('text/plain')
          .send(`metrics rendering failed: ${String(e)}\n`);
      },
    );
  });
  // Liveness: the process answers. Readiness says whether peers should count on us.
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/readyz', (_req, res) => {
    if (view.isReady()) res.type('text/plain').send('ready\n');
    else res.status(503).type('text/plain').send(`not ready: ${view.notReadyReason()}\n`);
  });
  app.get('/api/v1/results', (_req, res) => {
    res.json(view.results());
  });
  app.use((_req, res) => {
    res
      .status(404)
      .type('text/plain')
      .send('not found; try /metrics, /healthz, /readyz or /api/v1/results\n');
  });
  return app;
}

/**
 * Listens and resolves once bound; rejects with the address in the message if it can't. The
 * server has a connection cap and header, request and keep-alive deadlines (limits.ts), and
 * keeps /healthz and /readyz answering under the cap. `security`: TLS and authentication from
 * the web config (web-security.ts), behind the limits; none: plain HTTP.
 */
export function listen(
  app: express.Express,
  address: string,
  port: number,
  limits: HttpLimits = DEFAULT_HTTP_LIMITS,
  security?: WebSecurity,
): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createWebServer(undefined, security, TLS_RELOAD_MS, serverOptions(limits));
    limitConnections(server, secured(app, security), limits);
    server.listen(port, address);
    server.once('listening', () => resolve(server));
    server.once('error', (e: Error) =>
      reject(new Error(`cannot listen for HTTP on ${address}:${port}: ${e.message}`)),
    );
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
