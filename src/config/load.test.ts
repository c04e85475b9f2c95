// Config errors as a table of bad inputs and the messages they must produce; plus precedence,
// freezing and the derived env/flag names.

import test from 'ava';
import { ConfigError, loadConfig, type ConfigSources } from './load.ts';
import { SETTINGS, envName, flagName } from './settings.ts';

const bad: [name: string, src: ConfigSources, expected: RegExp[]][] = [
  [
    'dns timeout above its interval, duplicate replica',
    {
      fileText:
        'dns:\n  intervalMs: 1000\n  timeoutMs: 2000\n  replicas:\n    - address: 10.0.0.5\n    - address: 10.0.0.5\n      port: 53\n',
    },
    [
      /dns\.timeoutMs \(2000\) must not exceed dns\.intervalMs \(1000\)/,
      /dns\.replicas\[1\]: duplicate replica 10\.0\.0\.5:53/,
    ],
  ],
  [
    '"what changed" lookback longer than the timeline keeps changes',
    {
      overrides: { 'kubernetes.changeHorizonMs': 300_000, 'kubernetes.changeLookbackMs': 600_000 },
    },
    [
      /kubernetes\.changeLookbackMs \(600000\) must not exceed kubernetes\.changeHorizonMs \(300000\)/,
    ],
  ],
  [
    'dns replicas only from the file; names must be DNS names',
    { env: { PODMESH_DNS_REPLICAS: '[]', PODMESH_DNS_SHORT_NAME: 'a b' } },
    [
      /env PODMESH_DNS_REPLICAS: dns\.replicas can only be set in the config file/,
      /dns\.shortName \(from env PODMESH_DNS_SHORT_NAME\): must be a DNS name/,
    ],
  ],
  [
    'unknown top-level key',
    { fileText: 'colour: blue\n' },
    [/colour \(from file <config>\): unknown setting/],
  ],
  [
    'misspelt nested key gets a suggestion',
    { fileText: 'probes:\n  intervalMS: 500\n' },
    [/probes\.intervalMS .*unknown setting \(did you mean probes\.intervalMs\?\)/],
  ],
  [
    'wrong type in file',
    { fileText: 'probes:\n  intervalMs: fast\n' },
    [/probes\.intervalMs \(from file <config>\): .*expected number.*got "fast"/],
  ],
  ['out of range', { fileText: 'probes:\n  intervalMs: 5\n' }, [/probes\.intervalMs .*>=50/]],
  [
    'enum names the allowed values',
    { env: { PODMESH_NETWORK: 'cluster' } },
    [/network \(from env PODMESH_NETWORK\): .*"pod"\|"host".*got "cluster"/],
  ],
  [
    'unknown env var',
    { env: { PODMESH_INTERVAL: '5' } },
    [/env PODMESH_INTERVAL: not a podmesh setting/],
  ],
  [
    'list settings only from the file',
    { env: { PODMESH_PEERS_STATIC: '[]' } },
    [/peers\.static can only be set in the config file/],
  ],
  [
    'bad flag value',
    { flags: { httpPort: '70000' } },
    [/httpPort \(from flag --http-port\): .*<=65535/],
  ],
  [
    'boolean from env must be true/false',
    { env: { PODMESH_PROBES_ICMP: 'yes' } },
    [/probes\.icmp \(from env PODMESH_PROBES_ICMP\): .*expected boolean/],
  ],
  [
    'timeout above interval',
    { fileText: 'probes:\n  intervalMs: 500\n  timeoutMs: 800\n' },
    [/probes\.timeoutMs \(800\) must not exceed probes\.intervalMs \(500\)/],
  ],
  [
    'short auth key',
    { env: { PODMESH_STAMP_AUTH_KEY: 'abcdef' } },
    [/stamp\.authKey: must be at least 16 bytes/],
  ],
  [
    'bad peer entry names index and field',
    { fileText: 'peers:\n  static:\n    - node: n1\n      address: 10.0.0.300\n' },
    [/peers\.static .*at \[0\]\.address: must be an IPv4 address/],
  ],
  [
    'unknown field in a peer',
    { fileText: 'peers:\n  static:\n    - node: n1\n      address: 10.0.0.3\n      port: 1\n' },
    [/peers\.static .*port/],
  ],
  [
    'duplicate peer',
    {
      fileText:
        'peers:\n  static:\n    - {node: n1, address: 10.0.0.3}\n    - {node: n1, address: 10.0.0.4}\n',
    },
    [/peers\.static\[1\]: duplicate peer n1\/pod/],
  ],
  ['not YAML', { fileText: 'probes: [unclosed\n' }, [/not valid YAML/]],
  ['top level not a mapping', { fileText: '- a\n- b\n' }, [/top level must be a mapping/]],
  [
    'section given a scalar',
    { fileText: 'probes: 3\n' },
    [/probes \(from file <config>\): must be a mapping with keys intervalMs/],
  ],
  [
    'missing file',
    { file: '/nonexistent/podmesh.yaml' },
    [/config file \/nonexistent\/podmesh\.yaml: cannot read it/],
  ],
  [
    'every problem at once',
    { fileText: 'a: 1\nb: 2\n', env: { PODMESH_ZZZ: '1' } },
    [/a \(from file/, /b \(from file/, /PODMESH_ZZZ/],
  ],
];

for (const [name, src, expected] of bad) {
  test(`rejects: ${name}`, (t) => {
    const err = t.throws(() => loadConfig(src), { instanceOf: ConfigError });
    for (const re of expected) t.regex(err.message, re);
  });
}

test('defaults load and the result is frozen', (t) => {
  const c = loadConfig({ overrides: { node: 'n1' } });
  t.is(c.probes.intervalMs, 1000);
  t.is(c.network, 'pod');
  t.true(Object.isFrozen(c));
  t.true(Object.isFrozen(c.probes));
  t.throws(() => {
    (c.probes as { intervalMs: number }).intervalMs = 5;
  });
});

test('precedence: flag > env > file > default', (t) => {
  const fileText =
    'probes:\n  intervalMs: 2000\n  timeoutMs: 500\nzone: from-file\nhttpPort: 1111\n';
  const c = loadConfig({
    fileText,
    env: { PODMESH_ZONE: 'from-env', PODMESH_HTTP_PORT: '2222' },
    flags: { httpPort: '3333' },
  });
  t.is(c.probes.intervalMs, 2000);
  t.is(c.zone, 'from-env');
  t.is(c.httpPort, 3333);
});

test('Kubernetes service-link env vars are not mistaken for settings', (t) => {
  const env = {
    PODMESH_SERVICE_HOST: '10.0.0.1',
    PODMESH_SERVICE_PORT: '9860',
    PODMESH_PORT: 'tcp://10.0.0.1:9860',
    PODMESH_PORT_9860_TCP_ADDR: '10.0.0.1',
    PODMESH_METRICS_SERVICE_PORT_HTTP: '9860',
  };
  t.notThrows(() => loadConfig({ env }));
});

test('settings whose env names look like service links still apply', (t) => {
  const c = loadConfig({
    env: { PODMESH_HTTP_PORT: '9870', PODMESH_STAMP_PORT: '9872', PODMESH_TCP_PORT: '9873' },
  });
  t.deepEqual([c.httpPort, c.stampPort, c.tcpPort], [9870, 9872, 9873]);
});

test('auth key in hex and base64', (t) => {
  const hex = loadConfig({ env: { PODMESH_STAMP_AUTH_KEY: '00112233445566778899aabbccddeeff' } });
  t.is(hex.stamp.authKey?.length, 16);
  const b64 = loadConfig({
    env: { PODMESH_STAMP_AUTH_KEY: Buffer.alloc(32, 7).toString('base64') },
  });
  t.deepEqual(b64.stamp.authKey, Buffer.alloc(32, 7));
});

test('env and flag names derive from keys', (t) => {
  t.is(envName('probes.intervalMs'), 'PODMESH_PROBES_INTERVAL_MS');
  t.is(flagName('probes.intervalMs'), '--probes-interval-ms');
  t.is(envName('stamp.authKey'), 'PODMESH_STAMP_AUTH_KEY');
  const envs = SETTINGS.map((s) => envName(s.key));
  t.is(new Set(envs).size, envs.length, 'no two settings share an env var');
});

test('dns: the service name derives from the cluster domain; replicas default to dns.port', (t) => {
  const d = loadConfig({}).dns;
  t.is(d.serviceName, 'kubernetes.default.svc.cluster.local');
  t.is(d.resolvConf, '/etc/resolv.conf');
  t.true(d.enabled);
  const c = loadConfig({
    fileText:
      'dns:\n  clusterDomain: corp.internal.\n  port: 5353\n  replicas:\n    - address: 10.0.0.5\n      node: n1\n',
    flags: { 'dns.externalName': '' },
  }).dns;
  t.is(c.serviceName, 'kubernetes.default.svc.corp.internal');
  t.deepEqual(c.replicas, [{ address: '10.0.0.5', port: 5353, node: 'n1' }]);
  t.is(c.externalName, '', 'an empty name turns the external query off');
  t.is(
    loadConfig({ overrides: { 'dns.serviceName': 'api.x.svc.y' } }).dns.serviceName,
    'api.x.svc.y',
  );
});
