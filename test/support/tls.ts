// Test helpers for TLS: a throw-away CA, server and client certificates made with the openssl
// CLI in a temporary directory at test time (no key is ever kept in the repository), and an
// HTTPS GET that reports what a client sees.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  readonly dir: string;
  /** PEM paths. */
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A client certificate from another CA: well formed, not trusted. */
  readonly strangerCert: string;
  readonly strangerKey: string;
  /** The DNS name in the server certificate (besides IP 127.0.0.1 and the 127.42.14.0/24 ones). */
  readonly serverName: string;
  /** Issues a new server certificate and key to the same paths (a renewal). */
  renewServer(): void;
  remove(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function ca(dir: string, name: string): void {
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-subj',
    `/CN=podmesh test ${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

function leaf(dir: string, name: string, signer: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, [
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=podmesh test ${name}`,
  ]);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${signer}.crt`,
    '-CAkey',
    `${signer}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
}

export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-pki-'));
  const serverName = 'podmesh-agent.podmesh.svc';
  ca(dir, 'ca');
  ca(dir, 'other-ca');
  const ips = ['127.0.0.1', ...Array.from({ length: 9 }, (_, i) => `127.42.14.${i + 1}`)];
  const server = (): void =>
    leaf(
      dir,
      'server',
      'ca',
      'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' +
        `subjectAltName=DNS:${serverName},${ips.map((ip) => `IP:${ip}`).join(',')}\n`,
    );
  server();
  leaf(dir, 'client', 'ca', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  leaf(dir, 'stranger', 'other-ca', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  const p = (f: string): string => join(dir, f);
  return {
    dir,
    caCert: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    strangerCert: p('stranger.crt'),
    strangerKey: p('stranger.key'),
    serverName,
    renewServer: server,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface GetOptions {
  /** Trust this CA (PEM path); without it the server is not verified, as kubelet's probes do. */
  readonly ca?: string;
  readonly user?: string;
  readonly password?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly servername?: string;
}

/** One HTTPS GET; resolves with what came back, rejects when no HTTP answer came. */
export function httpsGet(
  url: string,
  o: GetOptions = {},
): Promise<{
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  /** SHA-256 fingerprint of the certificate the server presented. */
  fingerprint: string;
}> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (o.user !== undefined)
      headers['authorization'] =
        `Basic ${Buffer.from(`${o.user}:${o.password ?? ''}`).toString('base64')}`;
    const req = https.request(
      url,
      {
        headers,
        agent: false,
        rejectUnauthorized: o.ca !== undefined,
        ...(o.ca !== undefined ? { ca: readFileSync(o.ca) } : {}),
        ...(o.cert !== undefined ? { cert: readFileSync(o.cert) } : {}),
        ...(o.key !== undefined ? { key: readFileSync(o.key) } : {}),
        ...(o.servername !== undefined ? { servername: o.servername } : {}),
      },
      (res) => {
        const fingerprint = (res.socket as import('node:tls').TLSSocket).getPeerCertificate()
          .fingerprint256;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers, fingerprint }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
