// A stand-in for the Kubernetes API server's listener, for the apiserver checks' tests and the
// lab: HTTPS with a throw-away certificate (made by makePki at test time), answering GET /readyz
// with a chosen status (401 by default, as an API server that refuses anonymous requests) and
// recording each request's headers, so a test can prove no credentials were sent.

import type { AddressInfo } from 'node:net';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { makePki, type TestPki } from './tls.ts';

export class TlsApiServer {
  /** The status /readyz answers with. */
  readyzStatus = 401;
  /** Headers of every request received, oldest first. */
  readonly requests: { path: string; headers: IncomingHttpHeaders }[] = [];
  /** TCP connections accepted. */
  connections = 0;

  private constructor(
    private readonly server: https.Server,
    private readonly pki: TestPki,
    readonly address: string,
    readonly port: number,
  ) {}

  static async start(address = '127.0.0.1', port = 0): Promise<TlsApiServer> {
    const pki = makePki();
    const server = https.createServer({
      cert: readFileSync(pki.serverCert),
      key: readFileSync(pki.serverKey),
    });
    const listening = new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, address, () => resolve());
    });
    await listening;
    const bound = (server.address() as AddressInfo).port;
    const s = new TlsApiServer(server, pki, address, bound);
    server.on('connection', () => s.connections++);
    server.on('request', (req, res) => {
      s.requests.push({ path: req.url ?? '', headers: req.headers });
      const status = req.url === '/readyz' ? s.readyzStatus : 404;
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'Unauthorized');
    });
    // A client that resets mid-handshake is what the checks do when they time out.
    server.on('tlsClientError', () => undefined);
    return s;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.pki.remove();
  }
}
