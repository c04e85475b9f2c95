// TLS and authentication in front of podmesh's HTTP servers (the agent's and the controller's),
// as a web config file describes them (src/config/web-config.ts, in Prometheus
// exporter-toolkit's format; docs/security.md). The gate sits in front of the express app, at
// the level of Node's request listener, so no route can be added that it does not cover.
//
// What it does, in order, for every request but the two health paths:
//   1. TLS client certificate (client_auth_type): RequireAndVerifyClientCert needs a certificate
//      that verified against client_ca_file; VerifyClientCertIfGiven refuses one that did not.
//      The check is made per request rather than in the handshake, so kubelet's probes, which
//      carry no certificate, still reach /healthz and /readyz over the same port.
//   2. Basic auth (basic_auth_users): the password checked against the user's bcrypt hash.
//
// /healthz and /readyz answer without credentials: they say only "ok", "ready" or why not, and
// kubelet's httpGet probes can carry no credential (scheme: HTTPS does work, unverified).

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, { type RequestListener, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';

/** What the server needs of a web config (src/config/web-config.ts's WebConfig fits it). */
export interface WebSecurity {
  readonly tls:
    | {
        readonly certFile: string;
        readonly keyFile: string;
        readonly clientCaFile: string | undefined;
        readonly clientAuth:
          'NoClientCert' | 'VerifyClientCertIfGiven' | 'RequireAndVerifyClientCert';
        readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
      }
    | undefined;
  /** User name to bcrypt hash; empty: no authentication. */
  readonly basicAuthUsers: Readonly<Record<string, string>>;
}

/** Answered to anyone: kubelet's probes carry no credentials. Exact paths, nothing else. */
export const OPEN_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

/** bcrypt checks running at once; more wait for nobody, they are answered 429. */
export const MAX_BCRYPT_IN_FLIGHT = 4;

/** Credentials that verified, remembered so a scraper costs one bcrypt check, not one a scrape. */
const VERIFIED_CACHE_SIZE = 64;

/**
 * How often the certificate, key and client CA files are read again. A renewed certificate
 * (cert-manager rewrites the Secret, kubelet the mounted files) is served from then on without
 * a restart; a file caught half-written or unreadable keeps the previous one.
 */
export const TLS_RELOAD_MS = 60_000;

/**
 * An HTTP or HTTPS server for `handler`, behind the gate the web config asks for; a plain
 * http.Server when there is none. Reads the certificate files now: a missing or unreadable file
 * fails here, before anything listens. Without a handler the server has no request listener
 * yet: the caller attaches `secured(handler, security)` itself (http.ts puts the connection
 * limits in front of it). `options`: Node's server options (timeouts, limits.ts).
 */
export function createWebServer(
  handler: RequestListener | undefined,
  security?: WebSecurity,
  reloadMs: number = TLS_RELOAD_MS,
  options: http.ServerOptions = {},
): Server {
  const gated = handler === undefined ? undefined : secured(handler, security);
  const tls = security?.tls;
  if (tls === undefined) return http.createServer(options, gated);
  const read = (what: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`web config: cannot read ${what} ${path}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  };
  const files = (): { cert: Buffer; key: Buffer; ca?: Buffer } => ({
    cert: read('cert_file', tls.certFile),
    key: read('key_file', tls.keyFile),
    ...(tls.clientCaFile !== undefined ? { ca: read('client_ca_file', tls.clientCaFile) } : {}),
  });
  let current = files();
  const server = https.createServer(
    {
      ...options,
      // A connection that never finishes its handshake is held no longer than one that never
      // finishes its headers.
      handshakeTimeout: options.headersTimeout ?? 120_000,
      ...current,
      minVersion: tls.minVersion,
      // Asked for, verified by OpenSSL against `ca`, and judged per request in the gate (see
      // the header): the handshake itself admits a connection without one.
      requestCert: tls.clientAuth !== 'NoClientCert',
      rejectUnauthorized: false,
    },
    gated,
  );
  const reload = setInterval(() => {
    try {
      const next = files();
      const same = (a?: Buffer, b?: Buffer): boolean =>
        a === undefined ? b === undefined : b !== undefined && a.equals(b);
      if (same(next.cert, current.cert) && same(next.key, current.key) && same(next.ca, current.ca))
        return;
      // Throws on a certificate that does not match its key (one file renewed, not yet the
      // other): the previous pair stays until the next try.
      server.setSecureContext({ ...next, minVersion: tls.minVersion });
      current = next;
    } catch {
      // Unreadable or mismatched for now: keep serving the previous certificate.
    }
  }, reloadMs);
  reload.unref();
  server.on('close', () => clearInterval(reload));
  return server;
}

/** `handler` behind the gate the web config asks for; `handler` itself when there is none. */
export function secured(handler: RequestListener, security?: WebSecurity): RequestListener {
  return security === undefined ? handler : gate(handler, security);
}

function gate(handler: RequestListener, security: WebSecurity): RequestListener {
  const clientAuth = security.tls?.clientAuth ?? 'NoClientCert';
  const basic =
    Object.keys(security.basicAuthUsers).length > 0
      ? new BasicAuth(security.basicAuthUsers)
      : undefined;
  return (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    if (OPEN_PATHS.has(q < 0 ? url : url.slice(0, q))) {
      handler(req, res);
      return;
    }
    const certProblem = clientCertProblem(req.socket as TLSSocket, clientAuth);
    if (certProblem !== undefined) {
      refuse(res, 403, certProblem);
      return;
    }
    if (basic === undefined) {
      handler(req, res);
      return;
    }
    basic.check(req.headers.authorization).then(
      (outcome) => {
        if (outcome === 'ok') handler(req, res);
        else if (outcome === 'busy')
          refuse(res, 429, 'too many password checks at once; try again', { 'Retry-After': '1' });
        else
          refuse(
            res,
            401,
            outcome === 'missing' ? 'credentials required' : 'wrong user name or password',
            { 'WWW-Authenticate': 'Basic realm="podmesh", charset="UTF-8"' },
          );
      },
      (e: unknown) => refuse(res, 500, `checking the password failed: ${String(e)}`),
    );
  };
}

function clientCertProblem(
  socket: TLSSocket,
  clientAuth: 'NoClientCert' | 'VerifyClientCertIfGiven' | 'RequireAndVerifyClientCert',
): string | undefined {
  if (clientAuth === 'NoClientCert' || socket.authorized) return undefined;
  const given = Object.keys(socket.getPeerCertificate()).length > 0;
  if (clientAuth === 'VerifyClientCertIfGiven' && !given) return undefined;
  return given
    ? `client certificate not accepted (${String(socket.authorizationError)})`
    : 'a client certificate signed by the configured client CA is required';
}

function refuse(
  res: ServerResponse,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers });
  res.end(`${message}\n`);
}

type Outcome = 'ok' | 'missing' | 'refused' | 'busy';

type Compare = (password: string, hash: string) => Promise<boolean>;

let bcryptCompare: Promise<Compare> | undefined;

/** bcryptjs, loaded on first use: servers without basic_auth_users never load it. */
function loadBcrypt(): Promise<Compare> {
  bcryptCompare ??= import('bcryptjs').then((m) => m.default.compare);
  return bcryptCompare;
}

/** Basic auth against bcrypt hashes, as exporter-toolkit does it. */
export class BasicAuth {
  private readonly verified = new Set<string>();
  private inFlight = 0;
  /** Compared against for an unknown user, so a wrong name costs what a wrong password does. */
  private readonly decoy: string;

  constructor(
    private readonly users: Readonly<Record<string, string>>,
    private readonly compare: () => Promise<Compare> = loadBcrypt,
  ) {
    const first = Object.values(users)[0];
    if (first === undefined) throw new Error('internal: BasicAuth without users');
    this.decoy = first;
  }

  async check(header: string | undefined): Promise<Outcome> {
    const creds = parseBasic(header);
    if (creds === undefined) return 'missing';
    const hash = Object.hasOwn(this.users, creds.user) ? this.users[creds.user] : undefined;
    const key = createHash('sha256')
      .update(`${creds.user}\u0000${creds.password}\u0000${hash ?? ''}`)
      .digest('base64');
    if (hash !== undefined && this.verified.has(key)) return 'ok';
    // A bcrypt check costs ~50-100 ms of CPU at cost 10; bounded so a flood of wrong passwords
    // cannot take the server's CPU. Verified credentials are remembered and skip this.
    if (this.inFlight >= MAX_BCRYPT_IN_FLIGHT) return 'busy';
    this.inFlight++;
    let match: boolean;
    try {
      match = await (await this.compare())(creds.password, hash ?? this.decoy);
    } finally {
      this.inFlight--;
    }
    if (!match || hash === undefined) return 'refused';
    if (this.verified.size >= VERIFIED_CACHE_SIZE) {
      const oldest = this.verified.values().next().value;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
    this.verified.add(key);
    return 'ok';
  }
}

/** `Basic base64(user:password)`, or undefined for anything else. */
export function parseBasic(
  header: string | undefined,
): { user: string; password: string } | undefined {
  const m = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header ?? '');
  if (m === null) return undefined;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}
