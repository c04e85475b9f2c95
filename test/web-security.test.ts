// Issue #14 item 10: every HTTP surface can be secured with a web config file (exporter-toolkit's
// format: TLS, client certificates, basic auth with bcrypt hashes), the health paths stay
// reachable for kubelet, and the controller pulls secured agents with its own client config.
// Certificates are made with openssl at test time in a temporary directory.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import test from 'ava';
import bcrypt from 'bcryptjs';
import { MatrixCollector } from '../src/controller/collector.ts';
import { createPullFetch } from '../src/controller/pull-client.ts';
import { SystemClock } from '../src/core/clock.ts';
import { closeServer, createApp, DEFAULT_HTTP_LIMITS, listen } from '../src/server/http.ts';
import { BasicAuth, createWebServer, type WebSecurity } from '../src/server/web-security.ts';
import { startAgent, until, type Running } from './support/agents.ts';
import { httpsGet, makePki, type TestPki } from './support/tls.ts';

let pki: TestPki;
let dir: string;
const PASSWORD = 'correct horse battery staple';
const CONTROLLER_PASSWORD = 'the controller pulls';
let hashes: { prometheus: string; controller: string };

test.before(() => {
  pki = makePki();
  dir = mkdtempSync(join(tmpdir(), 'podmesh-web-'));
  // Cost 4: the lowest bcrypt allows, so the tests don't wait on it; deployments use 10+.
  hashes = {
    prometheus: bcrypt.hashSync(PASSWORD, 4),
    controller: bcrypt.hashSync(CONTROLLER_PASSWORD, 4),
  };
});
test.after.always(() => {
  pki.remove();
  rmSync(dir, { recursive: true, force: true });
});

/** A web config file as an operator writes it; cert paths relative to the file, as allowed. */
function webConfigFile(name: string): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    [
      'tls_server_config:',
      `  cert_file: ${relative(dir, pki.serverCert)}`,
      `  key_file: ${pki.serverKey}`,
      'basic_auth_users:',
      `  prometheus: ${hashes.prometheus}`,
      `  podmesh-controller: ${hashes.controller}`,
      '',
    ].join('\n'),
  );
  return path;
}

async function securedAgent(node: string, address: string): Promise<Running> {
  return startAgent(
    { node, address },
    {
      'web.configFile': webConfigFile(`${node}.yaml`),
      'probes.udp': false,
      'probes.icmp': false,
      'probes.tcp': false,
    },
  );
}

const httpsUrl = (r: Running): string => r.url.replace(/^http:/, 'https:');

test('with web.configFile, /metrics and /api/v1/results need TLS and a valid password; /healthz and /readyz answer anyone', async (t) => {
  const a = await securedAgent('secure-1', '127.42.14.1');
  t.teardown(() => a.agent.stop());
  const url = httpsUrl(a);
  const trusted = { ca: pki.caCert };

  const ok = await httpsGet(`${url}/metrics`, {
    ...trusted,
    user: 'prometheus',
    password: PASSWORD,
  });
  t.is(ok.status, 200);
  t.regex(ok.body, /^podmesh_/m);
  const results = await httpsGet(`${url}/api/v1/results`, {
    ...trusted,
    user: 'podmesh-controller',
    password: CONTROLLER_PASSWORD,
  });
  t.is(results.status, 200);
  t.is((JSON.parse(results.body) as { source: { node: string } }).source.node, 'secure-1');

  for (const path of ['/metrics', '/api/v1/results', '/METRICS', '/nothing', '/healthz/']) {
    const none = await httpsGet(`${url}${path}`, trusted);
    t.is(none.status, 401, `${path} without credentials`);
    t.regex(String(none.headers['www-authenticate']), /^Basic realm="podmesh"/);
  }
  const wrong = await httpsGet(`${url}/metrics`, { ...trusted, user: 'prometheus', password: 'x' });
  t.is(wrong.status, 401);
  t.notRegex(wrong.body, /podmesh_/);
  const nobody = await httpsGet(`${url}/metrics`, {
    ...trusted,
    user: 'mallory',
    password: PASSWORD,
  });
  t.is(nobody.status, 401);
  // One user's password is not another's.
  const crossed = await httpsGet(`${url}/metrics`, {
    ...trusted,
    user: 'prometheus',
    password: CONTROLLER_PASSWORD,
  });
  t.is(crossed.status, 401);

  // kubelet's probes: HTTPS without verifying the certificate and without credentials.
  const healthz = await httpsGet(`${url}/healthz`);
  t.is(healthz.status, 200);
  t.is(healthz.body, 'ok\n');
  const readyz = await httpsGet(`${url}/readyz?verbose=1`);
  t.true([200, 503].includes(readyz.status), `readyz answered ${readyz.status}`);
  t.regex(readyz.body, /ready/);

  // Plain HTTP gets no answer on a TLS port, and the certificate is checked by name.
  await t.throwsAsync(fetch(`${a.url}/metrics`));
  await t.throwsAsync(
    httpsGet(`${url}/metrics`, { ...trusted, servername: 'somebody-else.example' }),
    { code: 'ERR_TLS_CERT_ALTNAME_INVALID' },
  );
});

function stubApp() {
  return createApp({
    isReady: () => true,
    notReadyReason: () => '',
    renderMetrics: () => Promise.resolve('podmesh_up 1\n'),
    results: () => ({ stub: true }),
  });
}

async function serve(security: WebSecurity): Promise<{ url: string; close(): Promise<void> }> {
  const server = await listen(stubApp(), '127.42.14.2', 0, DEFAULT_HTTP_LIMITS, security);
  const port = (server.address() as { port: number }).port;
  return { url: `127.42.14.2:${port}`, close: () => closeServer(server) };
}

test('client_auth_type RequireAndVerifyClientCert: only a certificate from the client CA gets past the health paths', async (t) => {
  const s = await serve({
    tls: {
      certFile: pki.serverCert,
      keyFile: pki.serverKey,
      clientCaFile: pki.caCert,
      clientAuth: 'RequireAndVerifyClientCert',
      minVersion: 'TLSv1.2',
    },
    basicAuthUsers: {},
  });
  t.teardown(() => s.close());
  const url = `https://${s.url}`;
  const trusted = { ca: pki.caCert };
  t.is((await httpsGet(`${url}/metrics`, trusted)).status, 403);
  t.is(
    (await httpsGet(`${url}/metrics`, { ...trusted, cert: pki.strangerCert, key: pki.strangerKey }))
      .status,
    403,
  );
  const good = await httpsGet(`${url}/metrics`, {
    ...trusted,
    cert: pki.clientCert,
    key: pki.clientKey,
  });
  t.is(good.status, 200);
  t.is(good.body, 'podmesh_up 1\n');
  // kubelet has no client certificate and still reaches the health paths.
  t.is((await httpsGet(`${url}/healthz`)).status, 200);
  t.is((await httpsGet(`${url}/readyz`)).status, 200);
});

test('client_auth_type VerifyClientCertIfGiven: no certificate passes, an untrusted one does not', async (t) => {
  const s = await serve({
    tls: {
      certFile: pki.serverCert,
      keyFile: pki.serverKey,
      clientCaFile: pki.caCert,
      clientAuth: 'VerifyClientCertIfGiven',
      minVersion: 'TLSv1.3',
    },
    basicAuthUsers: {},
  });
  t.teardown(() => s.close());
  const url = `https://${s.url}`;
  const trusted = { ca: pki.caCert };
  t.is((await httpsGet(`${url}/metrics`, trusted)).status, 200);
  t.is(
    (await httpsGet(`${url}/metrics`, { ...trusted, cert: pki.clientCert, key: pki.clientKey }))
      .status,
    200,
  );
  t.is(
    (await httpsGet(`${url}/metrics`, { ...trusted, cert: pki.strangerCert, key: pki.strangerKey }))
      .status,
    403,
  );
});

test('basic auth without TLS: refused without the password, accepted with it, health open', async (t) => {
  const s = await serve({ tls: undefined, basicAuthUsers: { prometheus: hashes.prometheus } });
  t.teardown(() => s.close());
  const url = `http://${s.url}`;
  const auth = (p: string) => ({
    headers: { authorization: `Basic ${Buffer.from(`prometheus:${p}`).toString('base64')}` },
  });
  t.is((await fetch(`${url}/metrics`)).status, 401);
  t.is((await fetch(`${url}/metrics`, auth('nope'))).status, 401);
  t.is((await fetch(`${url}/metrics`, auth(PASSWORD))).status, 200);
  t.is((await fetch(`${url}/healthz`)).status, 200);
  // Not Basic, or no colon: the same 401 as no credentials.
  t.is((await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer abc' } })).status, 401);
});

test('a certificate file that cannot be read fails the listen with its name', async (t) => {
  await t.throwsAsync(
    listen(stubApp(), '127.42.14.2', 0, DEFAULT_HTTP_LIMITS, {
      tls: {
        certFile: join(dir, 'missing.crt'),
        keyFile: pki.serverKey,
        clientCaFile: undefined,
        clientAuth: 'NoClientCert',
        minVersion: 'TLSv1.2',
      },
      basicAuthUsers: {},
    }),
    { message: /cert_file .*missing\.crt/ },
  );
});

test('BasicAuth: a verified password is remembered, unknown users cost a check too, and checks at once are capped', async (t) => {
  let calls = 0;
  const gates: (() => void)[] = [];
  const slow = (pw: string, hash: string): Promise<boolean> => {
    calls++;
    return new Promise((resolve) => gates.push(() => resolve(bcrypt.compareSync(pw, hash))));
  };
  const auth = new BasicAuth({ prometheus: hashes.prometheus }, () => Promise.resolve(slow));
  const header = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
  const release = async (): Promise<void> => {
    for (;;) {
      await new Promise((r) => setImmediate(r));
      const g = gates.shift();
      if (g === undefined) return;
      g();
    }
  };

  const first = auth.check(header('prometheus', PASSWORD));
  await release();
  t.is(await first, 'ok');
  t.is(calls, 1);
  t.is(await auth.check(header('prometheus', PASSWORD)), 'ok');
  t.is(calls, 1, 'the second scrape costs no bcrypt check');

  const unknown = auth.check(header('mallory', PASSWORD));
  await release();
  t.is(await unknown, 'refused');
  t.is(calls, 2, 'an unknown user is checked against a decoy hash');
  t.is(await auth.check(undefined), 'missing');
  t.is(await auth.check('Basic bm9jb2xvbg=='), 'missing'); // "nocolon"

  // Four wrong passwords in flight: the fifth is turned away without a check.
  const pending = [1, 2, 3, 4].map((i) => auth.check(header('prometheus', `wrong${i}`)));
  await new Promise((r) => setImmediate(r));
  t.is(await auth.check(header('prometheus', 'wrong5')), 'busy');
  // The remembered password still gets in while the flood is in flight.
  t.is(await auth.check(header('prometheus', PASSWORD)), 'ok');
  await release();
  t.deepEqual(await Promise.all(pending), ['refused', 'refused', 'refused', 'refused']);
  t.is(calls, 6);
});

test('the controller pulls an agent over TLS with basic auth; wrong credentials, CA or name are reported, not fatal', async (t) => {
  const a = await securedAgent('secure-2', '127.42.14.3');
  t.teardown(() => a.agent.stop());
  const passwordFile = join(dir, 'controller-password');
  writeFileSync(passwordFile, `${CONTROLLER_PASSWORD}\n`);
  const wrongFile = join(dir, 'wrong-password');
  writeFileSync(wrongFile, 'guess\n');
  const client = {
    pullScheme: 'https' as const,
    pullCaFile: pki.caCert,
    pullServerName: pki.serverName,
    pullCertFile: '',
    pullKeyFile: '',
    pullUsername: 'podmesh-controller',
    pullPasswordFile: passwordFile,
  };
  const endpoint = { node: 'secure-2', network: 'pod' as const, url: a.url };
  const pull = async (fetchFn: ReturnType<typeof createPullFetch>) => {
    const collector = new MatrixCollector({
      clock: new SystemClock(),
      concurrency: 2,
      timeoutMs: 2_000,
      ...(fetchFn !== undefined ? { fetch: fetchFn } : {}),
    });
    return (await collector.collect([endpoint])).agents[0]!;
  };

  const ok = await pull(createPullFetch(client));
  t.is(ok.state, 'ok', ok.detail);

  const wrong = await pull(createPullFetch({ ...client, pullPasswordFile: wrongFile }));
  t.is(wrong.state, 'http-error');
  t.is(wrong.detail, 'HTTP 401');

  const noCredentials = await pull(
    createPullFetch({ ...client, pullUsername: '', pullPasswordFile: '' }),
  );
  t.is(noCredentials.detail, 'HTTP 401');

  const untrusted = await pull(createPullFetch({ ...client, pullCaFile: '' }));
  t.is(untrusted.state, 'unreachable');
  t.regex(
    untrusted.detail ?? '',
    /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/,
  );

  const otherName = await pull(createPullFetch({ ...client, pullServerName: 'other.podmesh.svc' }));
  t.is(otherName.state, 'unreachable');
  t.is(otherName.detail, 'ERR_TLS_CERT_ALTNAME_INVALID');

  // Without a client config the controller speaks plain HTTP, which a TLS port doesn't answer.
  t.not((await pull(undefined)).state, 'ok');
});

test('the pull client never follows a redirect, so credentials stay with the agent', async (t) => {
  let followed = 0;
  const elsewhere = createServer((_req, res) => {
    followed++;
    res.end('{}');
  });
  await new Promise<void>((r) => elsewhere.listen(0, '127.42.14.5', r));
  const target = `http://127.42.14.5:${(elsewhere.address() as { port: number }).port}/`;
  const redirecting = https.createServer(
    { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) },
    (_req, res) => {
      res.writeHead(302, { location: target });
      res.end();
    },
  );
  await new Promise<void>((r) => redirecting.listen(0, '127.42.14.4', r));
  t.teardown(() => {
    elsewhere.close();
    redirecting.close();
  });
  const port = (redirecting.address() as { port: number }).port;
  const passwordFile = join(dir, 'redirect-password');
  writeFileSync(passwordFile, 'pw');
  const collector = new MatrixCollector({
    clock: new SystemClock(),
    concurrency: 1,
    timeoutMs: 2_000,
    fetch: createPullFetch({
      pullScheme: 'https',
      pullCaFile: pki.caCert,
      pullServerName: pki.serverName,
      pullCertFile: '',
      pullKeyFile: '',
      pullUsername: 'podmesh-controller',
      pullPasswordFile: passwordFile,
    })!,
  });
  const m = await collector.collect([
    { node: 'r', network: 'pod', url: `http://127.42.14.4:${port}` },
  ]);
  // Refused as the collector refuses any agent's redirect (issue #14 item 8), secured or not.
  t.is(m.agents[0]!.state, 'invalid');
  t.regex(m.agents[0]!.detail ?? '', /^HTTP 302: a redirect, refused/);
  t.is(followed, 0);
});

test('the pull client presents its client certificate to agents that require one', async (t) => {
  const s = await serve({
    tls: {
      certFile: pki.serverCert,
      keyFile: pki.serverKey,
      clientCaFile: pki.caCert,
      clientAuth: 'RequireAndVerifyClientCert',
      minVersion: 'TLSv1.2',
    },
    basicAuthUsers: {},
  });
  t.teardown(() => s.close());
  const base = {
    pullScheme: 'https' as const,
    pullCaFile: pki.caCert,
    pullServerName: pki.serverName,
    pullUsername: '',
    pullPasswordFile: '',
  };
  const withCert = createPullFetch({
    ...base,
    pullCertFile: pki.clientCert,
    pullKeyFile: pki.clientKey,
  })!;
  const res = await withCert(`http://${s.url}/api/v1/results`);
  t.is(res.status, 200);
  t.deepEqual(await res.json(), { stub: true });
  const without = createPullFetch({ ...base, pullCertFile: '', pullKeyFile: '' })!;
  t.is((await without(`http://${s.url}/api/v1/results`)).status, 403);
  t.throws(
    () =>
      createPullFetch({ ...base, pullCertFile: join(dir, 'nope.crt'), pullKeyFile: pki.clientKey }),
    {
      message: /controller\.pullCertFile: cannot read .*nope\.crt/,
    },
  );
});

test('a renewed certificate is served without a restart', async (t) => {
  const own = makePki(); // its own files: the other tests read the shared ones concurrently
  t.teardown(() => own.remove());
  const server = createWebServer(
    stubApp(),
    {
      tls: {
        certFile: own.serverCert,
        keyFile: own.serverKey,
        clientCaFile: undefined,
        clientAuth: 'NoClientCert',
        minVersion: 'TLSv1.2',
      },
      basicAuthUsers: {},
    },
    50,
  );
  await new Promise<void>((r) => server.listen(0, '127.42.14.6', r));
  t.teardown(() => closeServer(server));
  const url = `https://127.42.14.6:${(server.address() as { port: number }).port}/metrics`;
  const before = await httpsGet(url, { ca: own.caCert });
  t.is(before.status, 200);
  own.renewServer();
  const after = await until(
    'the renewed certificate is served',
    async () => {
      const r = await httpsGet(url, { ca: own.caCert });
      return r.fingerprint !== before.fingerprint ? r : undefined;
    },
    5_000,
    50,
  );
  t.is(after.status, 200);
});
