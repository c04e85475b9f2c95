// API server checks end to end on loopback: an agent checks the `kubernetes` VIP and each
// endpoint (here a TLS listener standing in for the API server, and an address nobody listens
// on) on its own schedule and reports, per target, the outcome, connect and TLS handshake times
// and the /readyz status, in its results row (strictly as declared) and in /metrics. The VIP
// comes from the Pod env by default; the settings check their bounds.

import net from 'node:net';
import test from 'ava';
import { agentRowSchema, type AgentRow } from '../src/api/agent-row.ts';
import { apiServerService, loadConfig } from '../src/config/load.ts';
import { KubernetesPeerSource } from '../src/discovery/kubernetes.ts';
import { scrape, silent, startAgent, until } from './support/agents.ts';
import { apiServerSliceObject, FakeApiServer, type KObject } from './support/fake-apiserver.ts';
import { TlsApiServer } from './support/tls-apiserver.ts';
import { Agent } from '../src/agent/agent.ts';

async function closedPort(address: string): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, address, r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('the VIP and each endpoint are checked: ok with /readyz 401, refused, in the row and /metrics', async (t) => {
  const api = await TlsApiServer.start('127.0.32.10');
  t.teardown(() => api.close());
  const gone = await closedPort('127.0.32.11');
  const a = await startAgent(
    { node: 'api-node-1', address: '127.0.32.1' },
    {
      'probes.icmp': false,
      'window.seconds': 5,
      'apiserver.intervalMs': 200,
      'apiserver.timeoutMs': 150,
      'apiserver.service': `127.0.32.10:${api.port}`,
      'apiserver.endpoints': [
        { address: '127.0.32.11', port: gone },
        { address: '127.0.32.10', port: api.port },
      ],
    },
  );
  t.teardown(() => a.agent.stop());

  const row = await until(
    'every API server target has at least 3 checks',
    async () => {
      const r = (await (await fetch(`${a.url}/api/v1/results`)).json()) as AgentRow;
      return r.apiserver.length === 3 && r.apiserver.every((x) => x.sent >= 3) ? r : undefined;
    },
    10_000,
  );
  // Declared exactly: the strict schema is what the agent promises.
  t.notThrows(() => agentRowSchema.strict().parse(row));
  const by = new Map(row.apiserver.map((x) => [x.target, x]));
  const endpoint = `127.0.32.10:${api.port}`;
  t.deepEqual(
    row.apiserver.map((x) => [x.target, x.kind]),
    [
      ['service', 'service'],
      [endpoint, 'endpoint'],
      [`127.0.32.11:${gone}`, 'endpoint'],
    ],
  );
  for (const key of ['service', endpoint]) {
    const x = by.get(key)!;
    t.is(x.okRatio, 1, key);
    t.is(x.failed, 0);
    t.is(x.lastOutcome, 'ok');
    t.is(x.readyz, 401, 'an API server refusing anonymous requests was still reached');
    t.not(x.connectSeconds, null);
    t.not(x.tlsSeconds, null);
    t.deepEqual(x.run?.ok, true);
  }
  const refused = by.get(`127.0.32.11:${gone}`)!;
  t.is(refused.okRatio, 0);
  t.is(refused.lastOutcome, 'refused');
  t.is(refused.outcomes['refused'], refused.sent);
  t.is(refused.tlsSeconds, null);
  t.true(api.requests.length >= 6);
  t.true(api.requests.every((r) => r.path === '/readyz' && r.headers.authorization === undefined));

  const samples = await scrape(a.url);
  const ratio = (server: string): number | undefined =>
    samples.find((s) => s.name === 'podmesh_apiserver_ok_ratio' && s.labels.server === server)
      ?.value;
  t.is(ratio('service'), 1);
  t.is(ratio(endpoint), 1);
  t.is(ratio(`127.0.32.11:${gone}`), 0);
  t.like(
    samples.find((s) => s.name === 'podmesh_apiserver_ok_ratio' && s.labels.server === 'service')
      ?.labels,
    { source_node: 'api-node-1', network: 'pod', server_kind: 'service' },
  );
  t.true(
    (samples.find(
      (s) =>
        s.name === 'podmesh_apiserver_checks_total' &&
        s.labels.server === `127.0.32.11:${gone}` &&
        s.labels.result === 'refused',
    )?.value ?? 0) >= 3,
  );
  t.true(
    samples.some(
      (s) =>
        s.name === 'podmesh_apiserver_tls_handshake_duration_seconds_count' &&
        s.labels.server_kind === 'endpoint' &&
        s.value >= 3,
    ),
  );
});

test('apiserver.enabled false: no checks, an empty section', async (t) => {
  const api = await TlsApiServer.start('127.0.32.20');
  t.teardown(() => api.close());
  const a = await startAgent(
    { node: 'api-node-2', address: '127.0.32.2' },
    {
      'probes.icmp': false,
      'apiserver.enabled': false,
      'apiserver.intervalMs': 200,
      'apiserver.timeoutMs': 150,
      'apiserver.endpoints': [{ address: '127.0.32.20', port: api.port }],
    },
  );
  t.teardown(() => a.agent.stop());
  await new Promise((r) => setTimeout(r, 600));
  const r = (await (await fetch(`${a.url}/api/v1/results`)).json()) as AgentRow;
  t.deepEqual(r.apiserver, []);
  t.is(api.connections, 0);
});

test('the VIP: the setting, else the Pod env, else none', (t) => {
  const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
  t.deepEqual(apiServerService('', env), { address: '10.96.0.1', port: 443 });
  t.deepEqual(apiServerService('10.0.0.9:6443', env), { address: '10.0.0.9', port: 6443 });
  t.is(apiServerService('none', env), undefined);
  t.is(apiServerService('', {}), undefined);
  t.is(
    apiServerService('', { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }),
    undefined,
  );
  t.deepEqual(loadConfig({ env }).apiserver.service, { address: '10.96.0.1', port: 443 });
  t.is(loadConfig({ env: {} }).apiserver.service, undefined);
});

test('bad apiserver settings are refused with the key', (t) => {
  const bad = (o: Record<string, unknown>): string =>
    t.throws(() => loadConfig({ overrides: o })).message;
  t.regex(bad({ 'apiserver.service': 'kubernetes.default:443' }), /apiserver\.service/);
  t.regex(
    bad({ 'apiserver.endpoints': [{ address: '10.0.0.1', port: 0 }] }),
    /apiserver\.endpoints/,
  );
  t.regex(
    bad({ 'apiserver.intervalMs': 1000, 'apiserver.timeoutMs': 2000 }),
    /apiserver\.timeoutMs \(2000\) must not exceed apiserver\.intervalMs \(1000\)/,
  );
});

/** The `kubernetes` Service's EndpointSlice in `default`, its https port `port`. */
const apiSlice = (ip: string, port: number): KObject => apiServerSliceObject({ ips: [ip], port });

test('with Kubernetes discovery the endpoints follow the `kubernetes` EndpointSlice; one that leaves takes its series', async (t) => {
  const first = await TlsApiServer.start('127.0.32.30');
  const second = await TlsApiServer.start('127.0.32.31');
  const k8s = await FakeApiServer.start();
  k8s.upsert(apiSlice('127.0.32.30', first.port));
  const config = loadConfig({
    overrides: {
      node: 'api-node-3',
      address: '127.0.32.3',
      httpAddress: '127.0.32.3',
      httpPort: 0,
      stampPort: 0,
      tcpPort: 0,
      'probes.icmp': false,
      'dns.enabled': false,
      'window.seconds': 5,
      'apiserver.intervalMs': 200,
      'apiserver.timeoutMs': 150,
      'apiserver.service': 'none',
    },
  });
  const source = new KubernetesPeerSource({
    kubeConfig: k8s.kubeConfig(),
    namespace: 'podmesh',
    podSelector: 'app.kubernetes.io/name=podmesh',
    dnsService: '',
    apiServerEndpoints: true,
  });
  const agent = await Agent.start({ config, log: silent, version: 'test', peerSource: source });
  t.teardown(async () => {
    await agent.stop();
    await k8s.close();
    await first.close();
    await second.close();
  });
  const url = `http://127.0.32.3:${agent.httpPort}`;
  const targets = async (): Promise<AgentRow['apiserver']> =>
    ((await (await fetch(`${url}/api/v1/results`)).json()) as AgentRow).apiserver;
  const one = `127.0.32.30:${first.port}`;
  const two = `127.0.32.31:${second.port}`;
  await until(
    'the endpoint from the slice is checked',
    async () => ((await targets()).find((x) => x.target === one)?.sent ?? 0) >= 2,
    10_000,
  );
  t.deepEqual(
    (await targets()).map((x) => [x.target, x.kind, x.lastOutcome]),
    [[one, 'endpoint', 'ok']],
  );
  // The control plane moves: the slice names another address.
  k8s.upsert(apiSlice('127.0.32.31', second.port));
  await until(
    'the new endpoint is checked and the old one gone',
    async () => {
      const now = await targets();
      return now.length === 1 && now[0]!.target === two && now[0]!.sent >= 2;
    },
    10_000,
  );
  const servers = new Set(
    (await scrape(url))
      .filter((x) => x.name.startsWith('podmesh_apiserver_') && x.labels.server !== undefined)
      .map((x) => x.labels.server),
  );
  t.deepEqual([...servers], [two]);
});
