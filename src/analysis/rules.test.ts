// One case per rule: each named rule, run alone on a fresh view of a snapshot with its fault,
// names that fault; on a healthy cluster every rule names nothing; and run in list order, the
// IP rules after the one that explains a fault leave it alone. The rule lists' order is pinned
// here because each rule only sees what the earlier ones left.

import test from 'ava';
import { cluster, type PortTargetSpec } from '../../test/support/fixtures.ts';
import { buildContext } from './context.ts';
import { trustedLookups } from './dns/lookups.ts';
import {
  DNS_RULES,
  dnsEveryServer,
  dnsFromSources,
  dnsReplicas,
  dnsReplicaUpstream,
  dnsServiceUpstream,
  dnsServiceVip,
  dnsUpstream,
  type DnsRule,
} from './dns/rules.ts';
import { dnsState } from './dns/servers.ts';
import type { Ctx, Rule } from './model.ts';
import { resolveOptions } from './options.ts';
import { PLUMBING_RULES } from './plumbing/rules.ts';
import { agentTcpPorts } from './reachability/agent-tcp-port.ts';
import { asymmetric } from './reachability/asymmetric.ts';
import { hostNetwork } from './reachability/host-network.ts';
import { isolation } from './reachability/isolation.ts';
import { mtuBlackholes } from './reachability/mtu.ts';
import { overlay } from './reachability/overlay.ts';
import { LATENCY_RULES } from './latency/rules.ts';
import { pairLoss } from './reachability/pair-loss.ts';
import { REACHABILITY_RULES } from './reachability/rules.ts';
import { zonePairs } from './reachability/zone-pair.ts';
import { TRIAGE_RULES } from './triage.ts';
import type { Snapshot } from './types.ts';

const WEB: PortTargetSpec = { name: 'web', address: '10.244.3.9', port: 8080, expected: 'open' };
const DB: PortTargetSpec = { name: 'db', address: '10.244.2.9', port: 5432, expected: 'closed' };
const fourZones = { 'node-1': 'a', 'node-2': 'a', 'node-3': 'b', 'node-4': 'b' };

const view = (s: Snapshot): Ctx => buildContext(s, resolveOptions());
const ids = (rule: Rule, ctx: Ctx): string[] => rule(ctx).map((d) => d.id);
const dnsIds = (rule: DnsRule, ctx: Ctx): string[] =>
  rule(ctx, dnsState(trustedLookups(ctx))).map((d) => d.id);

test('the rule lists run in the documented order', (t) => {
  t.deepEqual(
    TRIAGE_RULES.map((r) => r.name),
    [
      'starvedProbers',
      'agentTcpPorts',
      'reachability',
      'plumbing',
      'latencyFindings',
      'dnsFindings',
      'portFindings',
      'apiServerFindings',
      'coverageGaps',
    ],
  );
  t.deepEqual(
    REACHABILITY_RULES.map((r) => r.name),
    [
      'zonePairs',
      'isolation',
      'pendingCuts',
      'asymmetric',
      'overlay',
      'hostNetwork',
      'mtuBlackholes',
      'rotatingLinks',
      'pairLoss',
    ],
  );
  t.deepEqual(
    PLUMBING_RULES.map((r) => r.name),
    ['cniUnhealthy', 'sandboxErrors'],
  );
  t.deepEqual(
    LATENCY_RULES.map((r) => r.name),
    ['latencyZonePairs', 'latencyNodes', 'latencyPairs'],
  );
  t.deepEqual(
    DNS_RULES.map((r) => r.name),
    [
      'dnsFromSources',
      'dnsEveryServer',
      'dnsReplicas',
      'dnsServiceVip',
      'dnsUpstream',
      'dnsReplicaUpstream',
      'dnsServiceUpstream',
    ],
  );
});

test('on a healthy cluster every rule names nothing', (t) => {
  const healthy = cluster({ nodes: 4, zones: fourZones, ports: [WEB, DB] }).build();
  for (const rule of [...TRIAGE_RULES, ...REACHABILITY_RULES])
    t.deepEqual(ids(rule, view(healthy)), [], rule.name);
  for (const rule of DNS_RULES) t.deepEqual(dnsIds(rule, view(healthy)), [], rule.name);
});

const ipCases: readonly { rule: Rule; snapshot: () => Snapshot; want: string[] }[] = [
  {
    rule: agentTcpPorts,
    snapshot: () => cluster().tcpBlocked('node-2', 'pod').build(),
    want: ['port-blocked:node-2/pod'],
  },
  {
    rule: zonePairs,
    snapshot: () => {
      const b = cluster({ nodes: 4, zones: fourZones });
      for (const x of ['node-1', 'node-2']) for (const y of ['node-3', 'node-4']) b.partition(x, y);
      return b.build();
    },
    want: ['zone-pair:a<->b'],
  },
  {
    rule: isolation,
    snapshot: () => cluster({ nodes: 4 }).isolate('node-3').build(),
    want: ['node-isolated:node-3'],
  },
  {
    rule: asymmetric,
    snapshot: () => cluster().oneWay('node-1', 'node-2').build(),
    want: ['asymmetric-path:node-1->node-2'],
  },
  {
    rule: overlay,
    snapshot: () => cluster().breakOverlay('node-2').build(),
    want: ['overlay-broken:node-2'],
  },
  {
    rule: hostNetwork,
    snapshot: () => cluster().blockHostNetwork('node-1', 'node-2').build(),
    want: ['host-network:node-1<->node-2'],
  },
  {
    rule: mtuBlackholes,
    snapshot: () => cluster().mtu().build(),
    want: ['mtu-blackhole:cluster'],
  },
  {
    rule: pairLoss,
    snapshot: () => cluster().lossy('node-1', 'node-2', 0.2).build(),
    want: ['pair-loss:node-1<->node-2'],
  },
];

for (const c of ipCases) {
  test(`${c.rule.name} alone names its fault`, (t) => {
    t.deepEqual(ids(c.rule, view(c.snapshot())), c.want);
  });
  test(`${c.rule.name}: the rules after it leave what it explained alone`, (t) => {
    const ctx = view(c.snapshot());
    // agentTcpPorts is not in the list (-1): it runs before every IP rule.
    const from = REACHABILITY_RULES.indexOf(c.rule);
    const rules = [c.rule, ...REACHABILITY_RULES.slice(from + 1)];
    t.deepEqual(
      rules.flatMap((r) => ids(r, ctx)),
      c.want,
    );
  });
}

test('agentTcpPorts takes the tcp cells: the pair-loss they would show is gone', (t) => {
  const ctx = view(cluster().tcpBlocked('node-2', 'pod').build());
  t.not(ids(pairLoss, view(cluster().tcpBlocked('node-2', 'pod').build())).length, 0);
  agentTcpPorts(ctx);
  t.deepEqual(ids(pairLoss, ctx), []);
});

const dnsCases: readonly { rule: DnsRule; snapshot: () => Snapshot; want: string[] }[] = [
  {
    rule: dnsFromSources,
    snapshot: () => cluster().dnsBlockedFrom('node-3').build(),
    want: ['dns-all:node-3'],
  },
  { rule: dnsEveryServer, snapshot: () => cluster().dnsAllDown().build(), want: ['dns-all:all'] },
  {
    rule: dnsReplicas,
    snapshot: () => cluster().dnsReplicaDown('node-1').build(),
    want: ['dns-replica:node-1'],
  },
  {
    rule: dnsServiceVip,
    snapshot: () => cluster().dnsServiceDown().build(),
    want: ['dns-service:service'],
  },
  {
    rule: dnsUpstream,
    snapshot: () => cluster().dnsUpstreamDown().build(),
    want: ['dns-upstream:example.com'],
  },
  {
    rule: dnsReplicaUpstream,
    snapshot: () =>
      cluster()
        .dnsFail((d) => d.query === 'external' && d.server === 'node-1')
        .build(),
    want: ['dns-replica:node-1'],
  },
  {
    rule: dnsServiceUpstream,
    snapshot: () =>
      cluster()
        .dnsFail((d) => d.query === 'external' && d.serverKind === 'service')
        .build(),
    want: ['dns-service:service'],
  },
];

for (const c of dnsCases)
  test(`${c.rule.name} alone names its fault`, (t) => {
    t.deepEqual(dnsIds(c.rule, view(c.snapshot())), c.want);
  });
