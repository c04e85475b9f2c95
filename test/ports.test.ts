// Port targets end to end on loopback: an agent connects to configured targets on its own
// schedule and reports, per target, whether it was accepted, refused or not answered, against
// what is expected of it (open, or closed for a policy that must hold), in /metrics and in its
// results row. Also: the agent's own punctuality (late ratio) appears beside them.

import net from 'node:net';
import test from 'ava';
import type { AgentRow } from '../src/api/agent-row.ts';
import { loadConfig } from '../src/config/load.ts';
import { scrape, startAgent, until } from './support/agents.ts';

async function listenOn(address: string): Promise<net.Server> {
  const server = net.createServer((s) => s.on('error', () => undefined).resume());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => resolve());
  });
  return server;
}

async function freePortNobodyListensOn(address: string): Promise<number> {
  const s = await listenOn(address);
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('port targets: open, refused and expected-closed-but-open, in /metrics and the results row', async (t) => {
  const server = await listenOn('127.0.31.10');
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const openPort = (server.address() as net.AddressInfo).port;
  const closedPort = await freePortNobodyListensOn('127.0.31.11');
  const a = await startAgent(
    { node: 'port-node-1', address: '127.0.31.1' },
    {
      'probes.icmp': false,
      'ports.intervalMs': 200,
      'ports.timeoutMs': 150,
      'window.seconds': 5,
      'ports.targets': [
        { name: 'web', address: '127.0.31.10', port: openPort },
        { name: 'gone', address: '127.0.31.11', port: closedPort, expect: 'open' },
        { name: 'secret', address: '127.0.31.10', port: openPort, expect: 'closed' },
      ],
    },
  );
  t.teardown(() => a.agent.stop());

  const row = await until(
    'every port target has at least 3 checks',
    async () => {
      const r = (await (await fetch(`${a.url}/api/v1/results`)).json()) as AgentRow;
      return r.ports.length === 3 && r.ports.every((p) => p.sent >= 3) ? r : undefined;
    },
    10_000,
  );
  const by = new Map(row.ports.map((p) => [p.target, p]));
  t.is(by.get('web')?.openRatio, 1);
  t.is(by.get('web')?.expected, 'open');
  t.is(by.get('web')?.lastOutcome, 'open');
  t.not(by.get('web')?.connectSeconds, null);
  t.is(by.get('gone')?.openRatio, 0);
  t.is(by.get('gone')?.lastOutcome, 'refused');
  t.is(by.get('gone')?.outcomes.refused, by.get('gone')?.sent);
  t.is(by.get('secret')?.expected, 'closed');
  t.is(by.get('secret')?.openRatio, 1, 'a port expected closed that accepts shows as open');

  const samples = await scrape(a.url);
  const ratio = (target: string): number | undefined =>
    samples.find((s) => s.name === 'podmesh_port_open_ratio' && s.labels.target === target)?.value;
  t.is(ratio('web'), 1);
  t.is(ratio('gone'), 0);
  t.is(ratio('secret'), 1);
  const secret = samples.find(
    (s) => s.name === 'podmesh_port_open_ratio' && s.labels.target === 'secret',
  );
  t.like(secret?.labels, { source_node: 'port-node-1', network: 'pod', expected: 'closed' });
  const refused = samples.find(
    (s) =>
      s.name === 'podmesh_port_checks_total' &&
      s.labels.target === 'gone' &&
      s.labels.result === 'refused',
  );
  t.true((refused?.value ?? 0) >= 3);
  t.false(
    samples.some((s) => Object.values(s.labels).some((v) => v.startsWith('127.0.31.'))),
    'addresses never appear as label values',
  );

  // The prober's own health: with nothing else running it is punctual.
  t.is(typeof row.self.lateRatio, 'number');
  t.true((row.self.lateRatio ?? 1) < 0.5);
  t.true(samples.some((s) => s.name === 'podmesh_probe_late_ratio'));
});

test('bad port target config is refused with the key and the fix', (t) => {
  const bad = (targets: unknown, extra: Record<string, unknown> = {}): string => {
    const e = t.throws(() => loadConfig({ overrides: { 'ports.targets': targets, ...extra } }));
    return e.message;
  };
  t.regex(bad([{ name: 'API Server', address: '10.0.0.1', port: 443 }]), /ports\.targets.*name/s);
  t.regex(bad([{ name: 'api', address: 'kubernetes.default', port: 443 }]), /IPv4/);
  t.regex(bad([{ name: 'api', address: '10.0.0.1', port: 0 }]), /ports\.targets/);
  t.regex(bad([{ name: 'api', address: '10.0.0.1', port: 443, expect: 'maybe' }]), /expect/);
  t.regex(
    bad([
      { name: 'api', address: '10.0.0.1', port: 443 },
      { name: 'api', address: '10.0.0.2', port: 443 },
    ]),
    /duplicate target name "api"/,
  );
  t.regex(
    bad([], { 'ports.intervalMs': 1000, 'ports.timeoutMs': 2000 }),
    /ports\.timeoutMs \(2000\) must not exceed ports\.intervalMs \(1000\)/,
  );
});
