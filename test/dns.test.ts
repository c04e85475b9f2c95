// Loopback integration of the DNS checks: real agents (engine on its worker thread) query real
// DnsServer instances on 127.0.0.0/8, one as the "Service VIP" named in the resolv.conf content
// the test passes, two as replicas (one agent learns them from discovery, one from dns.replicas).
// Only servers this test started are ever queried.

import test from 'ava';
import type { AgentRow } from '../src/api/agent-row.ts';
import type { DnsReplica } from '../src/discovery/kubernetes.ts';
import { StaticPeerSource } from '../src/discovery/peer-source.ts';
import { DnsServer } from '../src/demo/dns-server.ts';
import { connect, scrape, startAgent, until, type Running } from './support/agents.ts';

const SERVICE = 'kubernetes.default.svc.cluster.local';
const POD = 'web-0.web.team.svc.cluster.local';
const RESOLV = [
  '# fixture: a Pod in namespace "team"',
  'nameserver VIP',
  'search team.svc.cluster.local svc.cluster.local cluster.local',
  'options ndots:5 timeout:1',
  '',
].join('\n');

/** A static peer source that also speaks Kubernetes discovery's DNS replica hook. */
class ReplicaSource extends StaticPeerSource {
  private dnsListener: ((r: readonly DnsReplica[]) => void) | undefined;
  private replicas: readonly DnsReplica[] = [];
  onDnsReplicas(listener: (r: readonly DnsReplica[]) => void): () => void {
    this.dnsListener = listener;
    listener(this.replicas);
    return () => (this.dnsListener = undefined);
  }
  setReplicas(replicas: readonly DnsReplica[]): void {
    this.replicas = replicas;
    this.dnsListener?.(replicas);
  }
}

interface World {
  readonly vip: DnsServer;
  readonly replicas: DnsServer[];
  readonly discovered: Running;
  readonly configured: Running;
  readonly source: ReplicaSource;
}

const fast = {
  'dns.enabled': true,
  // Generous: the DNS servers share this process's event loop with every agent's HTTP side.
  'dns.intervalMs': 300,
  'dns.timeoutMs': 300,
  'dns.podName': POD,
  'dns.externalName': 'example.com',
  'probes.udp': false,
  'probes.tcp': false,
  'probes.icmp': false,
  'window.seconds': 5,
};

async function world(
  t: { teardown(fn: () => Promise<void>): void },
  block: number,
  extra: Record<string, readonly string[]> = {},
): Promise<World> {
  const servers: DnsServer[] = [];
  const agents: Running[] = [];
  t.teardown(async () => {
    await Promise.all(agents.map((a) => a.agent.stop()));
    await Promise.all(servers.map((s) => s.close()));
  });
  for (let i = 1; i <= 3; i++) {
    const address = `127.43.${block}.${i}`;
    servers.push(
      await DnsServer.start({
        address,
        port: 0,
        zones: ['cluster.local', 'example.com'],
        records: {
          [SERVICE]: ['10.96.0.1'],
          [POD]: ['10.244.1.7'],
          'example.com': ['192.0.2.80'],
          ...Object.fromEntries(
            Object.entries(extra)
              .filter(([, on]) => on.includes(address))
              .map(([name]) => [name, ['10.0.0.99']]),
          ),
        },
      }),
    );
  }
  const [vip, r1, r2] = servers as [DnsServer, DnsServer, DnsServer];
  const resolvConf = RESOLV.replace('VIP', vip.address);
  const source = new ReplicaSource([]);
  const base = { ...fast, 'dns.port': vip.port };
  agents.push(
    await startAgent({ node: 'a1', address: `127.43.${block}.11` }, base, { resolvConf, source }),
  );
  agents.push(
    await startAgent(
      { node: 'a2', address: `127.43.${block}.12` },
      {
        ...base,
        'dns.replicas': [
          { address: r1.address, port: r1.port, node: 'dns-node-1' },
          { address: r2.address, port: r2.port, node: 'dns-node-2' },
        ],
      },
      { resolvConf },
    ),
  );
  connect(agents);
  source.setReplicas(
    [r1, r2].map((r, i) => ({
      address: r.address,
      port: r.port,
      tcpPort: r.port,
      node: `dns-node-${i + 1}`,
      zone: '',
      pod: `coredns-${i + 1}`,
    })),
  );
  return {
    vip,
    replicas: [r1, r2],
    discovered: agents[0]!,
    configured: agents[1]!,
    source,
  };
}

type Counts = Map<string, number>;

/** podmesh_dns_requests_total as `${server}|${query}|${transport}|${result}` -> count. */
async function dnsCounts(url: string): Promise<Counts> {
  const out: Counts = new Map();
  for (const s of await scrape(url)) {
    if (s.name !== 'podmesh_dns_requests_total') continue;
    const l = s.labels;
    out.set(`${l['server']}|${l['query']}|${l['transport']}|${l['result']}`, s.value);
  }
  return out;
}

function sum(c: Counts, pred: (server: string, query: string, result: string) => boolean): number {
  let n = 0;
  for (const [k, v] of c) {
    const [server, query, , result] = k.split('|') as [string, string, string, string];
    if (pred(server, query, result)) n += v;
  }
  return n;
}

async function row(url: string): Promise<AgentRow> {
  return (await (await fetch(`${url}/api/v1/results`)).json()) as AgentRow;
}

/** Scrape gently: every scrape costs the event loop the DNS servers answer on. */
const STEP = 150;

const SERVERS = ['service', 'dns-node-1', 'dns-node-2'];
const JOBS = [
  ['service', 'udp'],
  ['service', 'tcp'],
  ['short', 'udp'],
  ['pod', 'udp'],
  ['external', 'udp'],
] as const;

test('healthy: every server answers every query noerror, and the short name says which candidate answered', async (t) => {
  const w = await world(t, 1);
  for (const a of [w.discovered, w.configured]) {
    const everyJob = (c: Counts, min: number, base?: Counts): boolean =>
      SERVERS.every((server) =>
        JOBS.every(([query, transport]) => {
          const k = `${server}|${query}|${transport}|noerror`;
          return (c.get(k) ?? 0) - (base?.get(k) ?? 0) >= min;
        }),
      );
    // From the first answer of every job on (the engine thread's start-up is not the point).
    const first = await until(
      `${a.spec.node}: every (server, query, transport) answered`,
      async () => {
        const c = await dnsCounts(a.url);
        return everyJob(c, 1) ? c : undefined;
      },
      8_000,
      STEP,
    );
    const counts = await until(
      `${a.spec.node}: 3 more noerror lookups of every (server, query, transport)`,
      async () => {
        const c = await dnsCounts(a.url);
        return everyJob(c, 3, first) ? c : undefined;
      },
      8_000,
      STEP,
    );
    const failures = (c: Counts): number => sum(c, (_s, _q, r) => r !== 'noerror');
    t.is(failures(counts) - failures(first), 0, `${a.spec.node}: only noerror`);
    const r = await row(a.url);
    t.is(r.dns.length, SERVERS.length * JOBS.length);
    for (const d of r.dns) {
      // The window may still hold a start-up hiccup; the counters above hold the strict check.
      t.is(d.lastOutcome, 'noerror', `${d.server} ${d.query}/${d.transport}`);
      t.true(d.sent > 0);
      t.truthy(d.latencySeconds);
      t.false(d.address === '', 'the API carries the address, labels do not');
    }
    const short = r.dns.find((d) => d.server === 'service' && d.query === 'short')!;
    t.deepEqual(short.candidates, [
      'kubernetes.default.team.svc.cluster.local.',
      'kubernetes.default.svc.cluster.local.',
      'kubernetes.default.cluster.local.',
      'kubernetes.default.',
    ]);
    t.is(short.answeredBy, 'kubernetes.default.svc.cluster.local.');
    t.is(short.lastTried, 2, 'the first candidate got NXDOMAIN, the second answered');
    t.is(r.probes['dns'] !== undefined, true);
  }
  const text = await (await fetch(`${w.discovered.url}/metrics`)).text();
  t.notRegex(text, /127\.43\./, 'no address in any label');
  t.regex(text, /podmesh_dns_request_duration_seconds_count\{[^}]*server_kind="replica"/);
});

test('short name: the search list is walked in order, the first candidate that answers wins', async (t) => {
  // Only the second replica knows the name the first search domain makes.
  const w = await world(t, 2, { 'kubernetes.default.team.svc.cluster.local': ['127.43.2.3'] });
  const a = w.discovered;
  const r = await until(
    'short-name lookups on every server',
    async () => {
      const rr = await row(a.url);
      const shorts = rr.dns.filter((d) => d.query === 'short');
      return shorts.length === 3 && shorts.every((d) => d.sent >= 2) ? shorts : undefined;
    },
    8_000,
    STEP,
  );
  const by = Object.fromEntries(r.map((d) => [d.server, [d.answeredBy, d.lastTried]]));
  t.deepEqual(by['dns-node-2'], ['kubernetes.default.team.svc.cluster.local.', 1]);
  t.deepEqual(by['dns-node-1'], ['kubernetes.default.svc.cluster.local.', 2]);
  t.deepEqual(by['service'], ['kubernetes.default.svc.cluster.local.', 2]);
});

test('a stopped replica: only its series fail; the VIP and the other replica keep answering', async (t) => {
  const w = await world(t, 3);
  for (const a of [w.discovered, w.configured])
    await until(
      'first lookups',
      async () => sum(await dnsCounts(a.url), (_s, _q, r) => r === 'noerror') >= 30,
      8_000,
      STEP,
    );
  await w.replicas[1]!.close();
  const before = new Map<string, Counts>();
  // Lookups in flight when the server closed may still end either way: start counting after.
  await new Promise((r) => setTimeout(r, 400));
  for (const a of [w.discovered, w.configured]) before.set(a.url, await dnsCounts(a.url));
  for (const a of [w.discovered, w.configured]) {
    const after = await until(
      `${a.spec.node}: dns-node-2 fails 3 more times on every job`,
      async () => {
        const c = await dnsCounts(a.url);
        const b = before.get(a.url)!;
        for (const [query, transport] of JOBS) {
          const result = transport === 'udp' ? 'timeout' : 'unreachable';
          const k = `dns-node-2|${query}|${transport}|${result}`;
          if ((c.get(k) ?? 0) - (b.get(k) ?? 0) < 3) return false;
        }
        return c;
      },
      8_000,
      STEP,
    );
    const b = before.get(a.url)!;
    const delta = (pred: (s: string, q: string, r: string) => boolean): number =>
      sum(after, pred) - sum(b, pred);
    t.is(
      delta((s, _q, r) => s !== 'dns-node-2' && r !== 'noerror'),
      0,
      `${a.spec.node}: VIP and dns-node-1 had no failure`,
    );
    t.true(delta((s, _q, r) => s === 'service' && r === 'noerror') >= 10);
    t.true(delta((s, _q, r) => s === 'dns-node-1' && r === 'noerror') >= 10);
    t.is(
      delta((s, _q, r) => s === 'dns-node-2' && r === 'noerror'),
      0,
    );
    const r = await row(a.url);
    for (const d of r.dns.filter((x) => x.server === 'dns-node-2'))
      t.true(d.failed > 0 && d.lastOutcome !== 'noerror', `${d.query}/${d.transport}`);
  }
  const ratio = (await scrape(w.configured.url)).filter(
    (x) => x.name === 'podmesh_dns_answered_ratio' && x.labels['query'] === 'service',
  );
  for (const x of ratio)
    if (x.labels['server'] === 'dns-node-2') t.true(x.value < 1, 'the stopped replica');
    else t.is(x.value, 1, x.labels['server']);
  t.is(ratio.length, 6);
});

test('a name removed is nxdomain, not a failure of the server', async (t) => {
  const w = await world(t, 4);
  const a = w.configured;
  await until(
    'pod name answered',
    async () => sum(await dnsCounts(a.url), (_s, q, r) => q === 'pod' && r === 'noerror') >= 6,
    8_000,
    STEP,
  );
  for (const s of [w.vip, ...w.replicas]) t.true(s.remove(POD));
  await new Promise((r) => setTimeout(r, 400));
  const before = await dnsCounts(a.url);
  const after = await until(
    'nxdomain on every server',
    async () => {
      const c = await dnsCounts(a.url);
      for (const server of SERVERS) {
        const k = `${server}|pod|udp|nxdomain`;
        if ((c.get(k) ?? 0) - (before.get(k) ?? 0) < 3) return false;
      }
      return c;
    },
    8_000,
    STEP,
  );
  const bad = (_s: string, _q: string, r: string): boolean => r !== 'noerror' && r !== 'nxdomain';
  t.is(sum(after, bad), 0, 'no timeout, servfail or error anywhere');
  t.is(
    sum(after, (_s, q, r) => q !== 'pod' && r === 'nxdomain'),
    0,
    'only the pod name is nxdomain',
  );
  const r = await row(a.url);
  for (const d of r.dns.filter((x) => x.query === 'pod')) {
    t.is(d.lastOutcome, 'nxdomain');
    t.is(d.failed, 0, 'the server answered correctly');
    t.true((d.outcomes.nxdomain ?? 0) > 0);
  }
});

test("a departed replica's series leave /metrics and the results API", async (t) => {
  const w = await world(t, 5);
  const a = w.discovered;
  const has = (text: string, server: string): boolean =>
    new RegExp(`podmesh_dns_\\w+\\{[^}]*server="${server}"`).test(text);
  await until(
    'both replicas in /metrics',
    async () => {
      const text = await (await fetch(`${a.url}/metrics`)).text();
      return has(text, 'dns-node-1') && has(text, 'dns-node-2');
    },
    8_000,
    STEP,
  );
  // Discovery says coredns-2 is gone (a rollout, a scale-down).
  const r1 = w.replicas[0]!;
  w.source.setReplicas([
    {
      address: r1.address,
      port: r1.port,
      tcpPort: r1.port,
      node: 'dns-node-1',
      zone: '',
      pod: 'coredns-1',
    },
  ]);
  const text = await (await fetch(`${a.url}/metrics`)).text();
  t.false(has(text, 'dns-node-2'), 'departed replica series removed at once');
  t.true(has(text, 'dns-node-1'));
  t.true(has(text, 'service'));
  // Lookups already in flight to it are dropped, not recorded under a resurrected series.
  await new Promise((r) => setTimeout(r, 600));
  const later = await (await fetch(`${a.url}/metrics`)).text();
  t.false(has(later, 'dns-node-2'));
  const r = await row(a.url);
  t.false(r.dns.some((d) => d.server === 'dns-node-2'));
  t.is(r.dns.length, 2 * JOBS.length);
});
