// The real command line, as a user runs it: help lists every setting with its default, bad
// config exits non-zero before any port is bound, SIGTERM turns readiness off, drains and
// exits 0.

import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import test from 'ava';
import { SETTINGS, envName, flagName } from '../src/config/settings.ts';
import { until } from './support/agents.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
const node = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    encoding: 'utf8',
    env: { ...cleanEnv(), ...env },
    timeout: 30_000,
  });

function cleanEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('PODMESH_') && v !== undefined) out[k] = v;
  return out;
}

for (const args of [['--help'], ['agent', '--help']]) {
  test(`podmesh ${args.join(' ')} lists every setting with its default`, (t) => {
    const r = node(args);
    t.is(r.status, 0, r.stderr);
    for (const s of SETTINGS) {
      t.true(r.stdout.includes(`  ${s.key}\n`), `${s.key} listed`);
      if (s.scalar) {
        t.true(r.stdout.includes(flagName(s.key)), `${flagName(s.key)} listed`);
        t.true(r.stdout.includes(envName(s.key)), `${envName(s.key)} listed`);
      }
      if (s.default !== undefined)
        t.true(r.stdout.includes(`default: ${JSON.stringify(s.default)}`), `default of ${s.key}`);
    }
  });
}

test('bad config exits 2 with every problem named, before binding any port', async (t) => {
  // Hold the HTTP port: had the agent got as far as binding, it would fail differently.
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  t.teardown(() => holder.close());
  const port = (holder.address() as { port: number }).port;
  const r = node(
    [
      'agent',
      '--http-address',
      '127.0.0.1',
      '--http-port',
      String(port),
      '--probes-interval-ms',
      'soon',
    ],
    { PODMESH_NETWROK: 'pod' },
  );
  t.is(r.status, 2);
  t.regex(r.stderr, /probes\.intervalMs \(from flag --probes-interval-ms\)/);
  t.regex(
    r.stderr,
    /env PODMESH_NETWROK: not a podmesh setting \(did you mean PODMESH_NETWORK\?\)/,
  );
  t.notRegex(r.stderr, /cannot listen/);
});

test('unknown flag is refused', (t) => {
  const r = node(['agent', '--probes-intreval-ms', '5']);
  t.not(r.status, 0);
  t.regex(r.stderr, /unknown option '--probes-intreval-ms'/);
});

test('SIGTERM: readiness off first, then drain, then exit 0', async (t) => {
  const address = '127.42.9.1';
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      MAIN,
      'agent',
      '--address',
      address,
      '--http-address',
      address,
      '--http-port',
      '0',
      '--stamp-port',
      '0',
      '--tcp-port',
      '0',
      '--node',
      'sig-test',
      '--shutdown-drain-ms',
      '1500',
      '--probes-icmp',
      'false',
      // Never query the machine's own resolver from a test.
      '--dns-enabled',
      'false',
    ],
    { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => child.kill('SIGKILL'));
  const httpPort = await until(
    'agent logs its HTTP address',
    () => /"http":"127\.42\.9\.1:(\d+)"/.exec(out)?.[1],
    20_000,
  );
  const url = `http://${address}:${httpPort}`;
  await until('ready', async () => (await fetch(`${url}/readyz`)).status === 200, 5_000);
  child.kill('SIGTERM');
  const during = await until(
    'readiness off while draining',
    async () => {
      const res = await fetch(`${url}/readyz`);
      return res.status === 503 ? res : undefined;
    },
    1_000,
  );
  t.regex(await during.text(), /shutting down/);
  t.is((await fetch(`${url}/healthz`)).status, 200, 'still alive while draining');
  t.is(await exited, 0);
  t.regex(out, /agent stopped/);
});
