// One check of a way to the Kubernetes API server: a fresh TCP connect, a TLS handshake over it,
// and optionally an unauthenticated GET /readyz, each timed. What it measures is whether this
// node gets to the API server and how long the connect and the handshake take: the server's
// certificate is not verified (rejectUnauthorized: false), since nothing is trusted or sent on
// the strength of it, and no credentials are ever sent (no token, no client certificate). A
// /readyz answer of any status counts as reached: 200 is ready, 401/403 mean anonymous requests
// are not allowed, which still proves the way there works. Nothing is kept open: the socket is
// reset once the check is done (no TIME_WAIT), at one check per target per interval.

import net from 'node:net';
import tls from 'node:tls';
import type { Clock } from '../core/clock.ts';
import type { ApiServerOutcome } from '../core/outcomes.ts';
import { errnoOf, reasonFromErrno } from './probe.ts';

export interface ApiServerCheck {
  readonly address: string;
  readonly port: number;
  readonly timeoutMs: number;
  /** GET /readyz once the handshake is done. */
  readonly readyz: boolean;
  readonly bindAddress?: string | undefined;
}

export interface ApiServerCheckResult {
  readonly outcome: ApiServerOutcome;
  readonly connectSeconds: number | null;
  readonly tlsSeconds: number | null;
  readonly readyz: number | null;
  readonly detail?: string;
}

/** The closed outcome of a failed connect. */
function connectOutcome(code: string | undefined): ApiServerOutcome {
  const r = reasonFromErrno(code);
  return r === 'refused' || r === 'unreachable' || r === 'timeout' ? r : 'error';
}

/** The status of an HTTP/1.x status line at the start of `head`, or undefined. */
export function httpStatus(head: string): number | undefined {
  const m = /^HTTP\/1\.[01] (\d{3})[ \r]/.exec(head);
  return m === null ? undefined : Number(m[1]);
}

/** Runs one check; never rejects. */
export function checkApiServer(c: ApiServerCheck, clock: Clock): Promise<ApiServerCheckResult> {
  return new Promise((resolve) => {
    const startNs = clock.monoNs();
    let connectNs: bigint | undefined;
    let tlsNs: bigint | undefined;
    let socket: net.Socket | undefined;
    let secure: tls.TLSSocket | undefined;
    let done = false;
    const secs = (from: bigint, to: bigint | undefined): number | null =>
      to === undefined ? null : Number(to - from) / 1e9;

    function finish(outcome: ApiServerOutcome, readyz: number | null, detail?: string): void {
      if (done) return;
      done = true;
      clock.clearTimeout(timer);
      const connectSeconds = secs(startNs, connectNs);
      const tlsSeconds = connectNs === undefined ? null : secs(connectNs, tlsNs);
      try {
        secure?.destroy();
        // An established connection is reset, not closed with a FIN: no TIME_WAIT left behind.
        if (connectNs !== undefined) socket?.resetAndDestroy();
        else socket?.destroy();
      } catch {
        socket?.destroy();
      }
      resolve({
        outcome,
        connectSeconds,
        tlsSeconds,
        readyz,
        ...(detail !== undefined ? { detail } : {}),
      });
    }

    const timer = clock.setTimeout(
      // After the poll phase (as the TCP probe does): an answer that is already there counts.
      () =>
        setImmediate(() => {
          if (connectNs === undefined)
            finish('timeout', null, `no TCP answer within ${c.timeoutMs} ms`);
          else if (tlsNs === undefined)
            finish('timeout', null, `TLS handshake not done within ${c.timeoutMs} ms`);
          else finish('ok', null, `no /readyz answer within ${c.timeoutMs} ms`);
        }),
      c.timeoutMs,
    );

    try {
      socket = net.connect({
        host: c.address,
        port: c.port,
        ...(c.bindAddress !== undefined ? { localAddress: c.bindAddress } : {}),
      });
    } catch (err) {
      finish('error', null, `cannot connect: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    // Stays attached after finish: a late reset must never become an uncaught error.
    socket.on('error', (err) => {
      const code = errnoOf(err);
      if (connectNs === undefined) finish(connectOutcome(code), null, code ?? err.message);
      else if (tlsNs === undefined) finish('tls-error', null, code ?? err.message);
      else finish('ok', null, `readyz: ${code ?? err.message}`);
    });
    socket.once('connect', () => {
      connectNs = clock.monoNs();
      // No SNI (the target is an address), no verification, no client certificate.
      secure = tls.connect({ socket, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
      secure.on('error', (err: Error) => {
        const code = errnoOf(err);
        if (tlsNs === undefined) finish('tls-error', null, code ?? err.message);
        else finish('ok', null, `readyz: ${code ?? err.message}`);
      });
      secure.once('secureConnect', () => {
        tlsNs = clock.monoNs();
        if (!c.readyz) {
          finish('ok', null);
          return;
        }
        let head = '';
        secure!.setEncoding('latin1');
        secure!.on('data', (chunk: string) => {
          head += chunk;
          const status = httpStatus(head);
          if (status !== undefined) finish('ok', status);
          else if (head.length >= 64 || head.includes('\n'))
            finish('ok', null, 'readyz: not an HTTP answer');
        });
        secure!.once('end', () => finish('ok', null, 'readyz: closed without an answer'));
        // Anonymous on purpose: no Authorization header, ever.
        secure!.write(
          `GET /readyz HTTP/1.1\r\nHost: ${c.address}:${c.port}\r\nUser-Agent: podmesh\r\nAccept: */*\r\nConnection: close\r\n\r\n`,
        );
      });
    });
  });
}
