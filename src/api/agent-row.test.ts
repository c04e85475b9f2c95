// The agent row's declaration against the real agent: a live agent's /api/v1/results, with every
// section filled (peers' results, DNS checks of the VIP and a replica, port targets, self), must
// parse with agentRowSchema made strict at every depth, so a field the agent starts to emit
// without declaring it in src/api/agent-row.ts fails here. And the controller's lenient reading
// must still take a minimal row of an older agent (no dns, ports or self).

import net from 'node:net';
import test from 'ava';
import { z } from 'zod';
import { DnsServer } from '../demo/dns-server.ts';
import { connect, startAgent, until, type Running } from '../../test/support/agents.ts';
import {
  acceptedAgentRowSchema,
  agentRowSchema,
  type AcceptedAgentRowInput,
  type AgentRow,
} from './agent-row.ts';

/**
 * The same schema with every object strict (unknown keys are an error, not dropped), keeping
 * every other check: each wrapper is cloned with its inner schema made strict.
 */
function deepStrict(schema: z.ZodType): z.ZodType {
  const def = schema._zod.def as unknown as Record<string, unknown> & { type: string };
  const inner = (key: string): z.ZodType => deepStrict(def[key] as z.ZodType);
  switch (def.type) {
    case 'object': {
      const shape = def['shape'] as Record<string, z.ZodType>;
      return schema.clone({
        ...def,
        shape: Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, deepStrict(v)])),
        catchall: z.never(),
      } as never);
    }
    case 'array':
      return schema.clone({ ...def, element: inner('element') } as never);
    case 'record':
      return schema.clone({ ...def, valueType: inner('valueType') } as never);
    case 'nullable':
    case 'optional':
    case 'default':
    case 'readonly':
      return schema.clone({ ...def, innerType: inner('innerType') } as never);
    default:
      return schema;
  }
}

const strictRow = deepStrict(agentRowSchema);

async function listenOn(address: string): Promise<net.Server> {
  const server = net.createServer((s) => s.on('error', () => undefined).resume());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => resolve());
  });
  return server;
}

test('a live agent row with every section filled parses strictly with agentRowSchema', async (t) => {
  const servers: DnsServer[] = [];
  const agents: Running[] = [];
  const web = await listenOn('127.44.1.80');
  t.teardown(async () => {
    await Promise.all(agents.map((a) => a.agent.stop()));
    await Promise.all(servers.map((s) => s.close()));
    await new Promise<void>((r) => web.close(() => r()));
  });
  for (const address of ['127.44.1.53', '127.44.1.54'])
    servers.push(
      await DnsServer.start({
        address,
        port: 0,
        zones: ['cluster.local', 'example.com'],
        records: {
          'kubernetes.default.svc.cluster.local': ['10.96.0.1'],
          'example.com': ['192.0.2.80'],
        },
      }),
    );
  const [vip, replica] = servers as [DnsServer, DnsServer];
  const resolvConf = `nameserver ${vip.address}\nsearch svc.cluster.local cluster.local\noptions ndots:5\n`;
  const settings = {
    'probes.intervalMs': 200,
    'probes.timeoutMs': 150,
    'probes.icmp': false,
    'window.seconds': 5,
    'dns.enabled': true,
    'dns.intervalMs': 300,
    'dns.timeoutMs': 300,
    'dns.port': vip.port,
    'dns.replicas': [{ address: replica.address, port: replica.port, node: 'dns-node' }],
    'ports.intervalMs': 200,
    'ports.timeoutMs': 150,
    'ports.targets': [
      { name: 'web', address: '127.44.1.80', port: (web.address() as net.AddressInfo).port },
    ],
  };
  for (const [node, address] of [
    ['row-1', '127.44.1.1'],
    ['row-2', '127.44.1.2'],
  ] as const)
    agents.push(await startAgent({ node, address }, settings, { resolvConf }));
  connect(agents);

  const a = agents[0]!;
  const row = await until(
    'results towards the peer, an answered lookup of every DNS check, an answered port check',
    async () => {
      const r = (await (await fetch(`${a.url}/api/v1/results`)).json()) as AgentRow;
      const full =
        r.peers.length === 1 &&
        r.peers[0]!.results.length >= 3 &&
        r.peers[0]!.results.every((p) => p.rttSeconds !== null && p.lastSuccess !== null) &&
        r.dns.length > 0 &&
        r.dns.every((d) => d.lastSuccess !== null && d.latencySeconds !== null) &&
        r.ports.length === 1 &&
        r.ports[0]!.connectSeconds !== null;
      return full ? r : undefined;
    },
    10_000,
    100,
  );
  t.true(row.dns.some((d) => d.serverKind === 'replica'));
  t.true(row.dns.some((d) => d.transport === 'tcp'));
  t.not(row.self.lateRatio, null);

  const strict = strictRow.safeParse(row);
  t.true(strict.success, strict.error?.message);
  // Nothing is dropped or defaulted on the way: the declaration is the row, field for field.
  t.deepEqual(agentRowSchema.parse(row), row);
  // What the agent builds is what the controller accepts, in types and at run time.
  const accepted: AcceptedAgentRowInput = row;
  t.true(acceptedAgentRowSchema.safeParse(accepted).success);

  // The strict check has teeth: an undeclared field deep in the row is refused.
  const extra = structuredClone(row) as unknown as {
    peers: { results: Record<string, unknown>[] }[];
  };
  extra.peers[0]!.results[0]!['jitterSeconds'] = 0.001;
  const refused = strictRow.safeParse(extra);
  t.false(refused.success);
  t.deepEqual(refused.error?.issues[0]?.path, ['peers', 0, 'results', 0]);
});

test("an older agent's minimal row (no dns, ports or self) is still accepted", (t) => {
  const old: AcceptedAgentRowInput = {
    apiVersion: 'podmesh.io/v1',
    kind: 'AgentResults',
    source: { node: 'old', network: 'pod', zone: 'z1', address: '10.0.0.1' },
    generatedAt: '2026-11-24T14:30:00.000Z',
    windowSeconds: 60,
    intervalMs: 1000,
    probes: { udp: { enabled: true, reason: 'ok' } },
    peers: [
      {
        node: 'new',
        network: 'host',
        zone: 'z2',
        address: '10.0.0.2',
        path: 'pod-to-host',
        scope: 'cross-zone',
        results: [
          {
            protocol: 'udp',
            size: 'small',
            sent: 60,
            lost: 0,
            lossRatio: 0,
            forwardLost: 0,
            reverseLost: 0,
            duplicates: 0,
            reordered: 0,
            rttSeconds: null,
            lastSuccess: null,
            lastFailure: null,
          },
        ],
      },
    ],
  };
  const parsed = acceptedAgentRowSchema.safeParse(old);
  t.true(parsed.success, parsed.error?.message);
  t.deepEqual(parsed.data?.dns, []);
  t.deepEqual(parsed.data?.ports, []);
  t.is(parsed.data?.self, undefined);
  // A result without the trailing run is read as it is: triage then judges on the window.
  t.is(parsed.data?.peers[0]?.results[0]?.run, undefined);
  // ... while the full declaration says what today's agent must send.
  t.false(agentRowSchema.safeParse(old).success);
});
