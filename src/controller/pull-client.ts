// How the controller reaches agents whose HTTP port is secured by a web config (TLS, client
// certificates, basic auth; docs/security.md): a fetch-shaped function the collector calls in
// place of the global fetch. None is built when nothing is configured, and the collector keeps
// using fetch as before.
//
// Built on node:http and node:https rather than fetch: Node's fetch can't be given a CA, a
// client certificate or a server name without the undici package's Agent. It never follows a
// redirect (a 3xx comes back as it is, and the collector reports it as an HTTP error), so the
// credentials only ever go to the agent's own address. The scheme is the controller's setting
// (controller.pullScheme): the directories build agent URLs as http://address:port, and over
// TLS the same address and port are asked with https.

import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import type { Config } from '../config/load.ts';

/**
 * What the collector calls: fetch's shape. Of `init`, only `signal` and `headers` are used;
 * the method is always GET and redirects are never followed, whatever `redirect` says.
 */
export type PullFetch = (url: string, init?: RequestInit) => Promise<Response>;

type PullSettings = Pick<
  Config['controller'],
  | 'pullScheme'
  | 'pullCaFile'
  | 'pullServerName'
  | 'pullCertFile'
  | 'pullKeyFile'
  | 'pullUsername'
  | 'pullPasswordFile'
>;

/**
 * The pull client the settings ask for, or undefined for plain HTTP without credentials (the
 * global fetch). Reads the CA, certificate, key and password files now: one that can't be read
 * stops the controller at start with its name, rather than failing every pull.
 */
export function createPullFetch(c: PullSettings): PullFetch | undefined {
  const tls = c.pullScheme === 'https';
  if (!tls && c.pullUsername === '') return undefined;
  const read = (key: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`controller.${key}: cannot read ${path}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  };
  let authorization: string | undefined;
  if (c.pullUsername !== '') {
    const password = read('pullPasswordFile', c.pullPasswordFile)
      .toString('utf8')
      .replace(/\r?\n$/, '');
    authorization = `Basic ${Buffer.from(`${c.pullUsername}:${password}`).toString('base64')}`;
  }
  const servername = c.pullServerName !== '' ? { servername: c.pullServerName } : {};
  // No keep-alive: a connection idle for a pull interval races the agent's idle timeout, and a
  // handshake every few seconds per agent is cheap next to a stale-socket error in the matrix.
  const agent = tls
    ? new https.Agent({
        keepAlive: false,
        ...(c.pullCaFile !== '' ? { ca: read('pullCaFile', c.pullCaFile) } : {}),
        ...(c.pullCertFile !== ''
          ? { cert: read('pullCertFile', c.pullCertFile), key: read('pullKeyFile', c.pullKeyFile) }
          : {}),
        ...servername,
      })
    : new http.Agent({ keepAlive: false });
  const request = tls ? https.request : http.request;

  return (url, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(url);
      target.protocol = tls ? 'https:' : 'http:';
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((v, k) => (headers[k] = v));
      if (authorization !== undefined) headers['authorization'] = authorization;
      const req = request(
        target,
        {
          agent,
          method: 'GET',
          headers,
          ...servername,
          ...(init.signal != null ? { signal: init.signal } : {}),
        },
        (res) => {
          const status = res.statusCode ?? 0;
          const nullBody = status === 204 || status === 304;
          if (nullBody) res.resume();
          const responseHeaders = new Headers();
          for (const [k, vs] of Object.entries(res.headersDistinct))
            for (const v of vs ?? []) responseHeaders.append(k, v);
          try {
            resolve(
              new Response(nullBody ? null : Readable.toWeb(res), {
                status,
                statusText: res.statusMessage ?? '',
                headers: responseHeaders,
              }),
            );
          } catch (e) {
            res.destroy();
            reject(new TypeError('fetch failed', { cause: e }));
          }
        },
      );
      // As fetch does: an abort rejects with the AbortError itself, anything else with a
      // TypeError whose cause carries the code (ECONNREFUSED, ERR_TLS_CERT_ALTNAME_INVALID, ...).
      req.on('error', (e) =>
        reject(e.name === 'AbortError' ? e : new TypeError('fetch failed', { cause: e })),
      );
      req.end();
    });
}
