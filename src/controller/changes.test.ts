// The "what changed" timeline on plumbing reports: a restart, a Ready flip, a rollout and a new
// sandbox-error burst are each one change at the right time; the timeline is bounded and ages
// out; a finding gets the changes on its nodes (or CoreDNS's for DNS) from the lookback before
// it opened, and a restart hours before is never attached.

import test from 'ava';
import type { PlumbingPod, PlumbingReport } from '../api/plumbing.ts';
import { boundChanges, ChangeTimeline, changesFor, diffCluster, diffPlumbing } from './changes.ts';

const T0 = Date.parse('2026-01-01T12:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;

function cni(name: string, o: Partial<PlumbingPod> = {}): PlumbingPod {
  return {
    namespace: 'kube-system',
    name,
    component: 'calico-node',
    role: 'cni',
    ready: true,
    restarts: 0,
    ...o,
  };
}

function dns(name: string, o: Partial<PlumbingPod> = {}): PlumbingPod {
  return { ...cni(name, o), component: 'kube-dns', role: 'dns' };
}

function report(atMs: number, nodes: Record<string, PlumbingPod[]>): PlumbingReport {
  return {
    atMs,
    sandboxWindowMs: 10 * MIN,
    nodes: Object.entries(nodes).map(([node, pods]) => ({ node, pods })),
  };
}

const kinds = (cs: readonly { change: { kind: string; object: string } }[]): string[] =>
  cs.map((c) => `${c.change.kind} ${c.change.object}`);

test('a restart: count up, at the container end, with its reason', (t) => {
  const a = report(T0, { n1: [cni('calico-a', { restarts: 2 })], n2: [cni('calico-b')] });
  const b = report(T0 + 5000, {
    n1: [
      cni('calico-a', {
        restarts: 3,
        lastTermination: { container: 'calico-node', reason: 'OOMKilled', atMs: T0 + 2000 },
      }),
    ],
    n2: [cni('calico-b')],
  });
  const d = diffPlumbing(a, b);
  t.deepEqual(kinds(d), ['pod-restarted kube-system/calico-a']);
  t.is(d[0]!.atMs, T0 + 2000);
  t.is(d[0]!.change.node, 'n1');
  t.is(d[0]!.change.at, new Date(T0 + 2000).toISOString());
  t.regex(d[0]!.change.detail, /2 → 3.*OOMKilled/);
  t.deepEqual(diffPlumbing(b, b), [], 'the same report again: nothing changed');
});

test('Ready flips both ways, each when seen', (t) => {
  const a = report(T0, { n1: [cni('calico-a')] });
  const b = report(T0 + 5000, {
    n1: [cni('calico-a', { ready: false, waitingReason: 'CrashLoopBackOff' })],
  });
  const c = report(T0 + 10_000, { n1: [cni('calico-a')] });
  const down = diffPlumbing(a, b);
  t.deepEqual(kinds(down), ['pod-not-ready kube-system/calico-a']);
  t.is(down[0]!.atMs, T0 + 5000);
  t.regex(down[0]!.change.detail, /CrashLoopBackOff/);
  t.deepEqual(kinds(diffPlumbing(b, c)), ['pod-ready kube-system/calico-a']);
});

test('a rollout: a new Pod of the same component on the node replaces the old one', (t) => {
  const a = report(T0, { n1: [cni('calico-a'), dns('coredns-1')] });
  const b = report(T0 + 5000, { n1: [cni('calico-z'), dns('coredns-1')] });
  const d = diffPlumbing(a, b);
  t.deepEqual(kinds(d), ['pod-replaced kube-system/calico-z']);
  t.regex(d[0]!.change.detail, /calico-a replaced by calico-z/);
  // A Pod that appears beside the others (a new node's agent) replaces nothing.
  t.deepEqual(
    diffPlumbing(
      a,
      report(T0 + 5000, { n1: [cni('calico-a'), dns('coredns-1')], n2: [cni('calico-b')] }),
    ),
    [],
  );
});

test('a new sandbox-error burst on a node, once', (t) => {
  const a = report(T0, { n1: [cni('calico-a')] });
  const sandboxErrors = {
    count: 4,
    pods: ['default/web-1'],
    lastAtMs: T0 + 3000,
    lastMessage: 'failed to setup network for sandbox',
  };
  const b: PlumbingReport = { ...a, atMs: T0 + 5000, nodes: [{ ...a.nodes[0]!, sandboxErrors }] };
  const d = diffPlumbing(a, b);
  t.deepEqual(kinds(d), ['sandbox-errors n1']);
  t.is(d[0]!.atMs, T0 + 3000);
  t.deepEqual(diffPlumbing(b, { ...b, atMs: T0 + 10_000 }), [], 'the same burst goes on');
});

test('first report: a past restart is dated by its termination, so the horizon judges it', (t) => {
  const tl = new ChangeTimeline({ horizonMs: 15 * MIN, lookbackMs: 10 * MIN });
  tl.observe(
    report(T0, {
      n1: [
        cni('calico-a', {
          restarts: 5,
          lastTermination: { container: 'calico-node', reason: 'Error', atMs: T0 - 3 * HOUR },
        }),
      ],
      n2: [
        cni('calico-b', {
          restarts: 1,
          lastTermination: { container: 'calico-node', reason: 'OOMKilled', atMs: T0 - 2 * MIN },
        }),
      ],
    }),
  );
  t.deepEqual(kinds(tl.changes()), ['pod-restarted kube-system/calico-b']);
});

test('ageing: a change older than the horizon is dropped; each kept one is recorded once', (t) => {
  const recorded: string[] = [];
  const tl = new ChangeTimeline({
    horizonMs: 15 * MIN,
    lookbackMs: 10 * MIN,
    onRecorded: (c) => recorded.push(`${c.kind} ${c.object}`),
  });
  tl.observe(report(T0, { n1: [cni('calico-a')] }));
  tl.observe(report(T0 + MIN, { n1: [cni('calico-a', { ready: false })] }));
  t.is(tl.changes().length, 1);
  tl.observe(report(T0 + 15 * MIN, { n1: [cni('calico-a', { ready: false })] }));
  t.is(tl.changes().length, 1, 'still inside the horizon');
  tl.observe(report(T0 + 17 * MIN, { n1: [cni('calico-a', { ready: false })] }));
  t.deepEqual(tl.changes(), []);
  t.deepEqual(recorded, ['pod-not-ready kube-system/calico-a']);
});

test('bounds: newest kept per node and overall, a noisy node cannot push another out', (t) => {
  const many = Array.from({ length: 30 }, (_, i) => ({
    atMs: T0 + i * 1000,
    change: {
      at: new Date(T0 + i * 1000).toISOString(),
      kind: 'pod-ready' as const,
      node: 'noisy',
      object: `kube-system/p${i}`,
      detail: '',
    },
  }));
  const quiet = { ...many[0]!, change: { ...many[0]!.change, node: 'quiet' } };
  const kept = boundChanges([quiet, ...many], T0 + 30_000, {
    horizonMs: HOUR,
    maxPerNode: 5,
    maxTotal: 100,
  });
  t.deepEqual(
    kept.map((c) => c.change.object),
    [
      'kube-system/p0',
      'kube-system/p25',
      'kube-system/p26',
      'kube-system/p27',
      'kube-system/p28',
      'kube-system/p29',
    ],
  );
  t.is(kept.find((c) => c.change.node === 'quiet')?.change.node, 'quiet');
  t.is(boundChanges(many, T0 + 30_000, { horizonMs: HOUR, maxPerNode: 50, maxTotal: 7 }).length, 7);
  t.is(
    boundChanges([...many, ...many], T0 + 30_000, { horizonMs: HOUR }).length,
    20,
    'deduped, then 20 per node',
  );
});

test('a finding gets the changes on its nodes from the lookback, CoreDNS for DNS findings', (t) => {
  const at = (ms: number, node: string, role: 'cni' | 'dns', object: string) => ({
    atMs: ms,
    change: {
      at: new Date(ms).toISOString(),
      kind: 'pod-restarted' as const,
      node,
      object,
      role,
      detail: '',
    },
  });
  const all = [
    at(T0 - 3 * HOUR, 'n1', 'cni', 'hours-before'),
    at(T0 - 11 * MIN, 'n1', 'cni', 'before-lookback'),
    at(T0 - 9 * MIN, 'n1', 'cni', 'in-lookback'),
    at(T0 + MIN, 'n1', 'cni', 'after-open'),
    at(T0 - MIN, 'n2', 'cni', 'other-node'),
    at(T0 - MIN, 'n3', 'dns', 'coredns'),
  ];
  const since = T0;
  const objects = (kind: 'overlay-broken' | 'dns-replica', nodes: string[]) =>
    changesFor(all, { kind, nodes }, since, 10 * MIN).map((c) => c.object);
  t.deepEqual(objects('overlay-broken', ['n1']), ['in-lookback', 'after-open']);
  t.deepEqual(objects('overlay-broken', ['n1', 'n2']), ['in-lookback', 'after-open', 'other-node']);
  t.deepEqual(objects('dns-replica', ['n2']), ['other-node', 'coredns']);
  t.deepEqual(objects('overlay-broken', ['n4']), []);
});

test('Nodes: a reboot (new boot ID) and Ready flips; the first snapshot is no change', (t) => {
  const node = (name: string, ready = true, bootId = `${name}-boot-1`) => ({ name, ready, bootId });
  const a = { atMs: T0, nodes: [node('n1'), node('n2')] };
  t.deepEqual(diffCluster(undefined, a), []);
  const b = { atMs: T0 + 5000, nodes: [node('n1', false, 'n1-boot-2'), node('n2'), node('n3')] };
  const d = diffCluster(a, b);
  t.deepEqual(kinds(d), ['node-rebooted n1', 'node-not-ready n1']);
  t.is(d[0]!.change.node, 'n1');
  t.deepEqual(kinds(diffCluster(b, { ...a, atMs: T0 + 10_000 })), [
    'node-rebooted n1',
    'node-ready n1',
  ]);
});

test('NetworkPolicies: created (dated by creation), changed (generation), deleted', (t) => {
  const pol = (name: string, generation = 1, createdMs = T0 - 3 * HOUR) => ({
    namespace: 'podmesh',
    name,
    generation,
    createdMs,
  });
  const a = { atMs: T0, policies: [pol('old'), pol('fresh', 1, T0 - MIN)] };
  const first = diffCluster(undefined, a);
  t.deepEqual(
    first.map((c) => [c.change.kind, c.change.object, c.atMs]),
    [
      ['network-policy-created', 'podmesh/old', T0 - 3 * HOUR],
      ['network-policy-created', 'podmesh/fresh', T0 - MIN],
    ],
  );
  t.deepEqual(boundChanges(first, T0, { horizonMs: 15 * MIN }).length, 1, 'the old one ages out');
  const b = { atMs: T0 + 5000, policies: [pol('old', 2), pol('new', 1, T0 + 4000)] };
  const d = diffCluster(a, b);
  t.deepEqual(kinds(d), [
    'network-policy-changed podmesh/old',
    'network-policy-created podmesh/new',
    'network-policy-deleted podmesh/fresh',
  ]);
  t.is(d[0]!.change.node, undefined);
  t.is(d[0]!.change.namespace, 'podmesh');
  t.deepEqual(diffCluster(b, { atMs: T0 + 6000 }), [], 'a watch not listed says nothing');
});

test('NetworkPolicy changes go to the findings whose namespaces they concern', (t) => {
  const pol = (ns: string) => ({
    atMs: T0,
    change: {
      at: new Date(T0).toISOString(),
      kind: 'network-policy-created' as const,
      namespace: ns,
      object: `${ns}/deny`,
      detail: '',
    },
  });
  const all = [pol('podmesh'), pol('kube-system'), pol('shop')];
  const scope = { agentNamespace: 'podmesh', dnsNamespace: 'kube-system' };
  const objects = (kind: 'overlay-broken' | 'dns-service' | 'port-blocked') =>
    changesFor(all, { kind, nodes: ['n1'] }, T0, 10 * MIN, scope).map((c) => c.object);
  t.deepEqual(objects('overlay-broken'), ['podmesh/deny']);
  t.deepEqual(objects('dns-service'), ['podmesh/deny', 'kube-system/deny']);
  t.deepEqual(objects('port-blocked'), ['podmesh/deny', 'kube-system/deny', 'shop/deny']);
});

test('the timeline keeps the last snapshot of a watch that has not listed yet', (t) => {
  const tl = new ChangeTimeline({ horizonMs: 15 * MIN, lookbackMs: 10 * MIN });
  const pol = { namespace: 'podmesh', name: 'deny', generation: 1, createdMs: T0 - 3 * HOUR };
  tl.observeCluster({
    atMs: T0,
    policies: [pol],
    nodes: [{ name: 'n1', ready: true, bootId: 'b1' }],
  });
  tl.observeCluster({ atMs: T0 + 1000 });
  tl.observeCluster({
    atMs: T0 + 2000,
    policies: [pol],
    nodes: [{ name: 'n1', ready: false, bootId: 'b1' }],
  });
  t.deepEqual(kinds(tl.changes()), ['node-not-ready n1']);
});

test('each change is recorded once, when the timeline first keeps it', (t) => {
  const recorded: string[] = [];
  const tl = new ChangeTimeline({
    horizonMs: 15 * MIN,
    lookbackMs: 10 * MIN,
    onRecorded: (c) => recorded.push(c.kind),
  });
  tl.observe(report(T0, { n1: [cni('calico-a')] }));
  tl.observe(report(T0 + MIN, { n1: [cni('calico-a', { ready: false })] }));
  tl.observe(report(T0 + 2 * MIN, { n1: [cni('calico-a')] }));
  tl.observe(report(T0 + 3 * MIN, { n1: [cni('calico-a', { ready: false })] }));
  t.deepEqual(recorded, ['pod-not-ready', 'pod-ready', 'pod-not-ready']);
});

test('the Corefile: a new digest, a ConfigMap created or deleted; the first list is the baseline', (t) => {
  const cm = (name: string, digest: string) => ({ namespace: 'kube-system', name, digest });
  const a = { atMs: T0, dnsConfigs: [cm('coredns', 'd1')] };
  t.deepEqual(diffCluster(undefined, a), [], 'an old Corefile is no change: it has no date');
  t.deepEqual(diffCluster(a, { atMs: T0 + 1000, dnsConfigs: [cm('coredns', 'd1')] }), []);
  const b = { atMs: T0 + 2000, dnsConfigs: [cm('coredns', 'd2'), cm('coredns-custom', 'c1')] };
  const d = diffCluster(a, b);
  t.deepEqual(kinds(d), [
    'dns-config-changed kube-system/coredns',
    'dns-config-changed kube-system/coredns-custom',
  ]);
  t.deepEqual(
    d.map((c) => [c.atMs, c.change.namespace, c.change.node, c.change.detail]),
    [
      [
        T0 + 2000,
        'kube-system',
        undefined,
        'ConfigMap kube-system/coredns changed (its data differs)',
      ],
      [T0 + 2000, 'kube-system', undefined, 'ConfigMap kube-system/coredns-custom created'],
    ],
  );
  t.deepEqual(
    diffCluster(b, { atMs: T0 + 3000, dnsConfigs: [cm('coredns', 'd2')] }).map(
      (c) => c.change.detail,
    ),
    ['ConfigMap kube-system/coredns-custom deleted'],
  );
  t.deepEqual(diffCluster(b, { atMs: T0 + 3000 }), [], 'a watch not listed says nothing');
});

test('a Corefile change goes to every DNS finding and to no other', (t) => {
  const all = [
    {
      atMs: T0 - MIN,
      change: {
        at: new Date(T0 - MIN).toISOString(),
        kind: 'dns-config-changed' as const,
        namespace: 'kube-system',
        object: 'kube-system/coredns',
        detail: '',
      },
    },
  ];
  const scope = { agentNamespace: 'podmesh', dnsNamespace: 'kube-system' };
  const objects = (kind: 'overlay-broken' | 'dns-service' | 'dns-replica' | 'port-blocked') =>
    changesFor(all, { kind, nodes: ['n1'] }, T0, 10 * MIN, scope).map((c) => c.object);
  t.deepEqual(objects('dns-service'), ['kube-system/coredns']);
  t.deepEqual(objects('dns-replica'), ['kube-system/coredns']);
  t.deepEqual(objects('overlay-broken'), []);
  t.deepEqual(objects('port-blocked'), [], 'not a NetworkPolicy, though in kube-system');
  t.deepEqual(
    changesFor(all, { kind: 'dns-service', nodes: [] }, T0 + 20 * MIN, 10 * MIN, scope),
    [],
    'outside the lookback',
  );
});

test('the timeline keeps the DNS ConfigMaps of the last listed snapshot', (t) => {
  const tl = new ChangeTimeline({ horizonMs: 15 * MIN, lookbackMs: 10 * MIN });
  const cm = (digest: string) => [{ namespace: 'kube-system', name: 'coredns', digest }];
  tl.observeCluster({ atMs: T0, dnsConfigs: cm('d1') });
  tl.observeCluster({ atMs: T0 + 1000 });
  tl.observeCluster({ atMs: T0 + 2000, dnsConfigs: cm('d2') });
  t.deepEqual(kinds(tl.changes()), ['dns-config-changed kube-system/coredns']);
});
