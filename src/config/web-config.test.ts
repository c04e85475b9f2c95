// The web config file (exporter-toolkit's format) and the controller's pull settings: what is
// accepted, what is refused and with which message, and how they reach the loaded Config.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { ConfigError, loadConfig } from './load.ts';
import { parseWebConfig } from './web-config.ts';

// A syntactically valid bcrypt hash (of a throw-away password).
const HASH = '$2b$04$Fl2Y6vJqDq8yTJ5o5vQG6eZ0mJ2oJ7kK0pX4z7y8m3Qf1H5sTqS5e';

test('a full web config parses; relative paths are taken from the file’s directory', (t) => {
  const r = parseWebConfig(
    [
      'tls_server_config:',
      '  cert_file: tls/server.crt',
      '  key_file: /abs/server.key',
      '  client_ca_file: ca.crt',
      '  client_auth_type: RequireAndVerifyClientCert',
      '  min_version: TLS13',
      'basic_auth_users:',
      `  prometheus: '${HASH}'`,
    ].join('\n'),
    '/etc/podmesh-web/web-config.yaml',
  );
  t.deepEqual(r.problems, []);
  t.deepEqual(r.config, {
    tls: {
      certFile: '/etc/podmesh-web/tls/server.crt',
      keyFile: '/abs/server.key',
      clientCaFile: '/etc/podmesh-web/ca.crt',
      clientAuth: 'RequireAndVerifyClientCert',
      minVersion: 'TLSv1.3',
    },
    basicAuthUsers: { prometheus: HASH },
  });
});

test('an empty web config, or one with only users, is valid: no TLS', (t) => {
  t.deepEqual(parseWebConfig('', '/w.yaml').config, { tls: undefined, basicAuthUsers: {} });
  t.deepEqual(parseWebConfig(`basic_auth_users:\n  a: '${HASH}'\n`, '/w.yaml').config, {
    tls: undefined,
    basicAuthUsers: { a: HASH },
  });
  t.is(
    parseWebConfig('tls_server_config:\n  cert_file: c\n  key_file: k\n', '/w.yaml').config?.tls
      ?.clientAuth,
    'NoClientCert',
  );
});

const refused: [string, string, RegExp][] = [
  [
    'a key podmesh does not implement',
    'http_server_config:\n  http2: false\n',
    /http_server_config/,
  ],
  [
    'a client_auth_type that verifies nothing',
    'tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\n  client_auth_type: RequireAnyClientCert\n',
    /client_auth_type.*NoClientCert.*VerifyClientCertIfGiven.*RequireAndVerifyClientCert/,
  ],
  [
    'a client CA without a client auth type',
    'tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\n',
    /client_ca_file and a client_auth_type other than NoClientCert go together/,
  ],
  [
    'client certificates required without a CA',
    'tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: VerifyClientCertIfGiven\n',
    /go together/,
  ],
  ['a certificate without its key', 'tls_server_config:\n  cert_file: c\n', /key_file/],
  ['a password instead of a hash', 'basic_auth_users:\n  prometheus: hunter2\n', /bcrypt hash/],
  ['a ":" in a user name', `basic_auth_users:\n  'a:b': '${HASH}'\n`, /cannot contain ":"/],
  ['not YAML', 'tls_server_config: [\n', /not valid YAML/],
];
for (const [name, text, expected] of refused)
  test(`web config refused: ${name}`, (t) => {
    const r = parseWebConfig(text, '/etc/w.yaml');
    t.is(r.config, undefined);
    t.regex(r.problems.join('\n'), expected);
    t.regex(r.problems.join('\n'), /web config \/etc\/w\.yaml/);
  });

test('web.configFile is read at load: its settings reach Config, its problems are config problems', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-webcfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.yaml');
  writeFileSync(good, `tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n`);
  const cfg = loadConfig({ env: { PODMESH_WEB_CONFIG_FILE: good } });
  t.is(cfg.web.configFile, good);
  t.is(cfg.web.security?.tls?.certFile, join(dir, 's.crt'));
  t.true(Object.isFrozen(cfg.web.security?.basicAuthUsers));
  t.is(loadConfig({}).web.security, undefined);

  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'basic_auth_users:\n  prometheus: plaintext\n');
  const e = t.throws(() => loadConfig({ flags: { 'web.configFile': bad } }), {
    instanceOf: ConfigError,
  });
  t.regex(e.message, /web\.configFile: web config .*bad\.yaml at basic_auth_users\.prometheus/);
  t.throws(() => loadConfig({ fileText: `web:\n  configFile: ${join(dir, 'none.yaml')}\n` }), {
    message: /web\.configFile: web config .*none\.yaml: cannot read it/,
  });
});

test('controller pull settings: TLS files need https, pairs go together', (t) => {
  const e = t.throws(
    () =>
      loadConfig({
        env: {
          PODMESH_CONTROLLER_PULL_CA_FILE: '/ca.crt',
          PODMESH_CONTROLLER_PULL_CERT_FILE: '/c.crt',
          PODMESH_CONTROLLER_PULL_USERNAME: 'podmesh-controller',
        },
      }),
    { instanceOf: ConfigError },
  );
  t.regex(e.message, /controller\.pullCaFile, controller\.pullCertFile: only used over TLS/);
  t.regex(e.message, /controller\.pullCertFile and controller\.pullKeyFile go together/);
  t.regex(e.message, /controller\.pullUsername and controller\.pullPasswordFile go together/);
  const cfg = loadConfig({
    env: {
      PODMESH_CONTROLLER_PULL_SCHEME: 'https',
      PODMESH_CONTROLLER_PULL_CA_FILE: '/ca.crt',
      PODMESH_CONTROLLER_PULL_SERVER_NAME: 'podmesh-agent.podmesh.svc',
      PODMESH_CONTROLLER_PULL_USERNAME: 'podmesh-controller',
      PODMESH_CONTROLLER_PULL_PASSWORD_FILE: '/p',
    },
  });
  t.is(cfg.controller.pullScheme, 'https');
  t.is(cfg.controller.pullServerName, 'podmesh-agent.podmesh.svc');
  t.is(loadConfig({}).controller.pullScheme, 'http');
});
