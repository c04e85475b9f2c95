// Kubernetes discovery against the test API server, driven by the real @kubernetes/client-node:
// peers follow Pods and Nodes through churn, and discovery survives what API servers do — 410
// Gone, dropped and silent watches, outages — without ever losing the peers it knew.
// Timers (grace, backoff, watchdog) run on a FakeClock; the HTTP traffic is real.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { FakeClock } from './support/fake-clock.ts';
import type { Peer } from '../src/core/types.ts';
import {
  DEFAULT_POD_SELECTOR,
  KubernetesPeerSource,
  kubeConfigFromEnvironment,
  namespaceFromEnvironment,
  type DiscoveryLog,
  type DnsReplica,
  type KubernetesPeerSourceOptions,
} from '../src/discovery/kubernetes.ts';
import {
  apiServerSliceObject,
  endpointSliceObject,
  FakeApiServer,
  nodeObject,
  parseLabelSelector,
  podObject,
  type KObject,
} from './support/fake-apiserver.ts';
import { until } from './support/agents.ts';

const NS = 'podmesh';
const SELECTOR = DEFAULT_POD_SELECTOR;
const WAIT = 4000;

interface Harness {
  api: FakeApiServer;
  clock: FakeClock;
  source: KubernetesPeerSource;
  /** Every list the source pushed, in order. */
  pushes: (readonly Peer[])[];
  ids(): string[];
  stat(resource: string): ReturnType<KubernetesPeerSource['syncStats']>[number];
  warnings: string[];
}

async function harness(
  t: ExecutionContext,
  objects: KObject[],
  opts: Partial<KubernetesPeerSourceOptions> = {},
): Promise<Harness> {
  const api = await FakeApiServer.start();
  for (const o of objects) api.upsert(o);
  const clock = new FakeClock();
  const warnings: string[] = [];
  const log: DiscoveryLog = {
    debug: () => {},
    info: () => {},
    warn: (_o, msg) => warnings.push(msg),
  };
  const source = new KubernetesPeerSource({
    kubeConfig: api.kubeConfig(),
    namespace: NS,
    podSelector: SELECTOR,
    nodeGraceMs: 30_000,
    watchdogMs: 60_000,
    clock,
    log,
    ...opts,
  });
  const pushes: (readonly Peer[])[] = [];
  t.teardown(async () => {
    await source.stop();
    await api.close();
  });
  await source.start((p) => pushes.push(p));
  const h: Harness = {
    api,
    clock,
    source,
    pushes,
    warnings,
    ids: () => source.peers().map((p) => p.id),
    stat: (resource) => {
      const s = source.syncStats().find((x) => x.resource === resource);
      if (s === undefined) throw new Error(`no informer for ${resource}`);
      return s;
    },
  };
  return h;
}

async function peersBecome(h: Harness, ids: string[], what = ids.join(',')): Promise<void> {
  const want = [...ids].sort().join(',');
  await until(`peers = ${what}`, () => h.ids().join(',') === want, WAIT);
}

/** Error restarts over all informers; wait for all of them before moving the fake clock. */
function failures(h: Harness): number {
  return h.source.syncStats().reduce((n, s) => n + s.errorRestarts, 0);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function twoNodes(): KObject[] {
  return [
    nodeObject({ name: 'n1', zone: 'z1', region: 'r1' }),
    nodeObject({ name: 'n2', zone: 'z2', region: 'r1' }),
    podObject({ name: 'pod-n1', node: 'n1', ip: '10.0.1.5' }),
    podObject({
      name: 'host-n1',
      node: 'n1',
      ip: '192.168.0.1',
      hostNetwork: true,
      ports: { http: 19860, stamp: 19862, tcp: 19863 },
    }),
    podObject({ name: 'pod-n2', node: 'n2', ip: '10.0.2.7' }),
  ];
}

test('agents appear and disappear as Pods are added, deleted and go not-Ready', async (t) => {
  const h = await harness(t, [
    ...twoNodes(),
    // Neither of these is an agent of ours: another app, and the right label elsewhere.
    podObject({
      name: 'other',
      node: 'n1',
      ip: '10.0.1.9',
      labels: { 'app.kubernetes.io/component': 'web' },
    }),
    podObject({ name: 'stray', namespace: 'default', node: 'n1', ip: '10.0.1.10' }),
  ]);
  await peersBecome(h, ['n1/host', 'n1/pod', 'n2/pod']);
  t.deepEqual(h.source.peers(), [
    {
      id: 'n1/host',
      node: 'n1',
      network: 'host',
      zone: 'z1',
      address: '192.168.0.1',
      httpPort: 19860,
      stampPort: 19862,
      tcpPort: 19863,
    },
    {
      id: 'n1/pod',
      node: 'n1',
      network: 'pod',
      zone: 'z1',
      address: '10.0.1.5',
      httpPort: 9860,
      stampPort: 9862,
      tcpPort: 9863,
    },
    {
      id: 'n2/pod',
      node: 'n2',
      network: 'pod',
      zone: 'z2',
      address: '10.0.2.7',
      httpPort: 9860,
      stampPort: 9862,
      tcpPort: 9863,
    },
  ]);
  t.is(h.pushes.length, 1, 'the first push waits for Pods and Nodes, so zones are right');
  t.is(h.source.nodeInfo('n2')?.region, 'r1');

  h.api.upsert(podObject({ name: 'host-n2', node: 'n2', ip: '192.168.0.2', hostNetwork: true }));
  await peersBecome(h, ['n1/host', 'n1/pod', 'n2/host', 'n2/pod']);

  h.api.patch('Pod', NS, 'pod-n1', (p) => {
    (p.status as { conditions: { type: string; status: string }[] }).conditions = [
      { type: 'Ready', status: 'False' },
    ];
  });
  await peersBecome(h, ['n1/host', 'n2/host', 'n2/pod'], 'pod-n1 not Ready gone');

  h.api.remove('Pod', NS, 'pod-n2');
  await peersBecome(h, ['n1/host', 'n2/host']);

  // A Pod starting up (no IP, not Ready) is no peer until it is Ready.
  h.api.upsert(podObject({ name: 'pod-n1b', node: 'n1', ready: false }));
  await sleep(150);
  t.deepEqual(h.ids(), ['n1/host', 'n2/host']);
  h.api.upsert(podObject({ name: 'pod-n1b', node: 'n1', ip: '10.0.1.6' }));
  await peersBecome(h, ['n1/host', 'n1/pod', 'n2/host']);
  t.is(h.source.peers().find((p) => p.id === 'n1/pod')?.address, '10.0.1.6');
  t.true(
    h.pushes.every((p) => p.length > 0),
    'never an empty list',
  );
});

test('terminating Pods are skipped; mid-rollout the newer of two agents on a node wins', async (t) => {
  const h = await harness(t, [
    ...twoNodes(),
    podObject({
      name: 'dying',
      node: 'n2',
      ip: '192.168.0.2',
      hostNetwork: true,
      terminating: true,
    }),
  ]);
  await peersBecome(h, ['n1/host', 'n1/pod', 'n2/pod']);

  // A rolling update with surge: the new Pod becomes Ready while the old one is still there.
  const newer = podObject({ name: 'pod-n2-new', node: 'n2', ip: '10.0.2.8' });
  (newer.metadata ??= {}).creationTimestamp = new Date(Date.now() + 60_000).toISOString();
  h.api.upsert(newer);
  await until(
    'the newer Pod is the n2/pod peer',
    () => h.source.peers().find((p) => p.id === 'n2/pod')?.address === '10.0.2.8',
    WAIT,
  );
  // The old one starts terminating: no change.
  const before = h.pushes.length;
  h.api.patch('Pod', NS, 'pod-n2', (p) => {
    (p.metadata ??= {}).deletionTimestamp = new Date().toISOString();
  });
  // And a terminating Pod that is still Ready drops out on its own.
  h.api.patch('Pod', NS, 'host-n1', (p) => {
    (p.metadata ??= {}).deletionTimestamp = new Date().toISOString();
  });
  await peersBecome(h, ['n1/pod', 'n2/pod']);
  t.is(h.pushes.length, before + 1);
  t.is(h.source.peers().find((p) => p.id === 'n2/pod')?.address, '10.0.2.8');
});

test('a cordoned node’s agents leave after the grace period, not before', async (t) => {
  const h = await harness(t, twoNodes(), { nodeGraceMs: 30_000 });
  await peersBecome(h, ['n1/host', 'n1/pod', 'n2/pod']);

  h.api.patch('Node', undefined, 'n1', (n) => {
    n.spec = { unschedulable: true };
  });
  await until('n1 seen cordoned', () => h.source.nodeInfo('n1')?.cordoned === true, WAIT);
  await h.clock.advance(29_999);
  await sleep(100);
  t.deepEqual(h.ids(), ['n1/host', 'n1/pod', 'n2/pod'], 'still there inside the grace period');
  await h.clock.advance(1);
  await peersBecome(h, ['n2/pod'], 'n1 gone after the grace period');

  // Uncordoned: back at once.
  h.api.patch('Node', undefined, 'n1', (n) => {
    n.spec = {};
  });
  await peersBecome(h, ['n1/host', 'n1/pod', 'n2/pod']);
});

test('a node cordoned or NotReady only briefly never loses its agents', async (t) => {
  const h = await harness(t, twoNodes(), { nodeGraceMs: 30_000 });
  await peersBecome(h, ['n1/host', 'n1/pod', 'n2/pod']);
  const pushed = h.pushes.length;

  h.api.patch('Node', undefined, 'n2', (n) => {
    n.status = { conditions: [{ type: 'Ready', status: 'Unknown' }] };
  });
  await until('n2 seen NotReady', () => h.source.nodeInfo('n2')?.ready === false, WAIT);
  await h.clock.advance(20_000);
  h.api.patch('Node', undefined, 'n2', (n) => {
    n.status = { conditions: [{ type: 'Ready', status: 'True' }] };
  });
  await until('n2 seen Ready', () => h.source.nodeInfo('n2')?.ready === true, WAIT);
  // Long past the first grace period: had the timer survived, n2 would be gone now.
  await h.clock.advance(60_000);
  await sleep(100);
  t.deepEqual(h.ids(), ['n1/host', 'n1/pod', 'n2/pod']);
  t.is(h.pushes.length, pushed, 'no churn was pushed at all');

  // NotReady for longer than the grace period does count as leaving.
  h.api.patch('Node', undefined, 'n2', (n) => {
    n.status = { conditions: [{ type: 'Ready', status: 'False' }] };
  });
  await until('n2 seen NotReady', () => h.source.nodeInfo('n2')?.ready === false, WAIT);
  await h.clock.advance(30_000);
  await peersBecome(h, ['n1/host', 'n1/pod']);

  // A deleted Node takes its agents with it at once, before their Pods are cleaned up.
  h.api.remove('Node', undefined, 'n1');
  await until('no peers', () => h.pushes.at(-1)?.length === 0, WAIT);
});

test('nodes that come and go are forgotten once their Pods are gone (cluster autoscaler churn)', async (t) => {
  const h = await harness(t, twoNodes());
  await peersBecome(h, ['n1/host', 'n1/pod', 'n2/pod']);
  const base = ['n1/host', 'n1/pod', 'n2/pod'];
  // What discovery remembers about nodes it has seen; private, read here to show it is bounded.
  const seenNodes = (): string[] =>
    [...(h.source as unknown as { seenNodes: ReadonlySet<string> }).seenNodes].sort();
  for (let i = 0; i < 20; i++) {
    const name = `scale-${i}`;
    // The node joins, then its agent is scheduled there.
    h.api.upsert(nodeObject({ name, zone: 'z1' }));
    await until(`${name} known`, () => h.source.nodeInfo(name) !== undefined, WAIT);
    h.api.upsert(podObject({ name: `pod-${name}`, node: name, ip: `10.1.${i}.5` }));
    await peersBecome(h, [...base, `${name}/pod`]);
    // The Node goes first; its agent Pod lingers until garbage collection and must not count.
    h.api.remove('Node', undefined, name);
    await peersBecome(h, base, `${name}/pod gone with its Node`);
    if (i === 0) {
      // Another change recomputes the peers while the Pod lingers: it stays out.
      h.api.patch('Node', undefined, 'n2', (n) => {
        n.metadata = { ...n.metadata, labels: { ...n.metadata?.labels, churn: 'yes' } };
      });
      await sleep(100);
      t.deepEqual(h.ids(), base, 'a Pod on a deleted Node stays out');
    }
    h.api.remove('Pod', NS, `pod-${name}`);
    await until(
      `pod-${name} gone from the informer`,
      () => !h.source.agentPods().some((p) => p.metadata?.name === `pod-${name}`),
      WAIT,
    );
  }
  await sleep(50);
  t.deepEqual(seenNodes(), ['n1', 'n2'], 'only the nodes that still exist are remembered');
  // A name that comes back is a new node like any other.
  h.api.upsert(nodeObject({ name: 'scale-0', zone: 'z1' }));
  h.api.upsert(podObject({ name: 'pod-scale-0', node: 'scale-0', ip: '10.1.0.6' }));
  await peersBecome(h, [...base, 'scale-0/pod']);
  t.deepEqual(seenNodes(), ['n1', 'n2', 'scale-0']);
});

test('410 Gone on a stale resourceVersion: the informer lists again and catches up', async (t) => {
  const h = await harness(t, twoNodes());
  await peersBecome(h, ['n1/host', 'n1/pod', 'n2/pod']);
  const lists = h.api.listCount('pods');
  const watches = h.api.watchCount('pods');

  // The client misses changes, then the history it would resume from is compacted away.
  h.api.silence();
  h.api.remove('Pod', NS, 'pod-n2');
  h.api.upsert(podObject({ name: 'host-n2', node: 'n2', ip: '192.168.0.2', hostNetwork: true }));
  await sleep(100);
  t.deepEqual(h.ids(), ['n1/host', 'n1/pod', 'n2/pod'], 'silenced: nothing delivered');
  h.api.compact();
  h.api.endWatches();
  h.api.unsilence();

  await peersBecome(h, ['n1/host', 'n1/pod', 'n2/host']);
  t.true(h.api.listCount('pods') > lists, 'a relist happened');
  // The fresh watch opens after the relist has been pushed: wait for it, don't race it.
  await until(
    'a fresh watch after the relist',
    () => h.api.watchCount('pods') >= watches + 2,
    WAIT,
  );
  t.true(h.api.watchCount('pods') >= watches + 2, 'the stale watch, then a fresh one');
  t.is(h.stat('pods').errorRestarts, 0, '410 is handled as a relist, not a failure');
  t.true(h.pushes.every((p) => p.length > 0));
});

test('a dropped watch resumes from its resourceVersion; after compaction it lists again', async (t) => {
  const h = await harness(t, twoNodes());
  await peersBecome(h, ['n1/host', 'n1/pod', 'n2/pod']);
  await until('watches open', () => h.api.openWatches() === 3, WAIT);
  const lists = h.api.listCount('pods');
  const watches = h.api.watchCount('pods');

  t.is(h.api.dropWatches(), 3);
  h.api.remove('Pod', NS, 'pod-n1');
  await until('the cut is noticed', () => failures(h) === 3, WAIT);
  await h.clock.advance(1000); // the first backoff step
  await peersBecome(h, ['n1/host', 'n2/pod']);
  t.is(h.api.listCount('pods'), lists, 'resumed: the missed change came from the watch');
  t.is(h.api.watchCount('pods'), watches + 1);

  // Cut again, and this time the history it would resume from is gone: 410, then a list.
  await until('watches open', () => h.api.openWatches() === 3, WAIT);
  h.api.dropWatches();
  h.api.upsert(podObject({ name: 'host-n2', node: 'n2', ip: '192.168.0.2', hostNetwork: true }));
  h.api.compact();
  await until('the cut is noticed', () => failures(h) === 6, WAIT);
  // The informer ran for less than backoffMaxMs since the last failure: the delay doubled.
  await h.clock.advance(1999);
  await sleep(80);
  t.deepEqual(h.ids(), ['n1/host', 'n2/pod'], 'not yet retried');
  await h.clock.advance(1);
  await peersBecome(h, ['n1/host', 'n2/host', 'n2/pod']);
  t.is(h.api.listCount('pods'), lists + 1, 'a relist happened');
  t.true(h.pushes.every((p) => p.length > 0));
  // The watch is live again: a new change arrives with no clock help.
  h.api.upsert(podObject({ name: 'pod-n1', node: 'n1', ip: '10.0.1.50' }));
  await peersBecome(h, ['n1/host', 'n1/pod', 'n2/host', 'n2/pod']);
});

test('an API outage keeps the last peers, freezes the sync time, and recovers', async (t) => {
  const h = await harness(t, twoNodes());
  await peersBecome(h, ['n1/host', 'n1/pod', 'n2/pod']);
  const synced = h.source.lastSyncMs();
  t.not(synced, undefined);
  const pushed = h.pushes.length;

  h.api.pause('refuse');
  await until('the pods informer notices', () => h.stat('pods').errorRestarts >= 1, WAIT);
  // Retries keep failing; time passes.
  for (let i = 0; i < 8; i++) {
    await h.clock.advance(5_000);
    await sleep(30);
  }
  t.true(h.stat('pods').errorRestarts >= 3, 'it kept retrying');
  t.deepEqual(h.ids(), ['n1/host', 'n1/pod', 'n2/pod'], 'last known peers kept');
  t.is(h.pushes.length, pushed, 'nothing pushed during the outage');
  t.is(h.source.lastSyncMs(), synced, 'last sync time frozen');
  t.true(h.clock.nowMs() - (synced ?? 0) >= 40_000, 'so the sync age rises');
  t.true(h.warnings.some((w) => w.includes('failed')));

  // Meanwhile in the cluster:
  h.api.remove('Pod', NS, 'pod-n2');
  h.api.resume();
  await until(
    'recovered',
    async () => {
      await h.clock.advance(1_000);
      return !h.ids().includes('n2/pod');
    },
    WAIT,
  );
  t.deepEqual(h.ids(), ['n1/host', 'n1/pod']);
  t.true((h.source.lastSyncMs() ?? 0) > (synced ?? 0));
});

test('failed informers are retried with exponential backoff capped at backoffMaxMs', async (t) => {
  const h = await harness(t, twoNodes(), { backoffInitialMs: 1000, backoffMaxMs: 8000 });
  await peersBecome(h, ['n1/host', 'n1/pod', 'n2/pod']);
  h.api.pause('503');
  await until('the informers notice', () => failures(h) === 3, WAIT);
  // Each retry resumes the watch from the last resourceVersion.
  for (const delay of [1000, 2000, 4000, 8000, 8000]) {
    const n = h.api.watchCount('pods');
    const failed = failures(h);
    await h.clock.advance(delay - 1);
    await sleep(80);
    t.is(h.api.watchCount('pods'), n, `no retry before ${delay} ms`);
    await h.clock.advance(1);
    await until(`retry after ${delay} ms`, () => h.api.watchCount('pods') === n + 1, WAIT);
    // The 503 comes back and the next retry is scheduled before time moves again.
    await until('503 seen', () => failures(h) === failed + 3, WAIT);
  }
  h.api.resume();
  await h.clock.advance(8000);
  await until('recovered', () => h.stat('pods').lastSyncMs === h.clock.nowMs(), WAIT);
  t.deepEqual(h.ids(), ['n1/host', 'n1/pod', 'n2/pod']);
});

test('the watchdog restarts a watch gone silent, not one that hears bookmarks', async (t) => {
  const h = await harness(t, twoNodes(), { watchdogMs: 60_000 });
  await peersBecome(h, ['n1/host', 'n1/pod', 'n2/pod']);
  await until('watches open', () => h.api.openWatches() === 3, WAIT);

  // Bookmarks are activity: the client asked for them, and they keep the watch alive.
  await h.clock.advance(40_000);
  t.is(h.api.sendBookmarks(), 3, 'every informer asked for bookmarks');
  await until('bookmark seen', () => h.source.lastSyncMs() === h.clock.nowMs(), WAIT);
  await h.clock.advance(40_000);
  await sleep(50);
  t.is(h.stat('pods').watchdogRestarts, 0, 'a watch with bookmarks is left alone');

  const watches = h.api.watchCount('pods');
  h.api.silence();
  h.api.upsert(podObject({ name: 'pod-n2b', node: 'n2', ip: '192.168.0.2', hostNetwork: true }));
  await sleep(150);
  t.deepEqual(h.ids(), ['n1/host', 'n1/pod', 'n2/pod'], 'the silent watch delivers nothing');
  await h.clock.advance(60_000);
  await peersBecome(h, ['n1/host', 'n1/pod', 'n2/host', 'n2/pod']);
  t.is(h.stat('pods').watchdogRestarts, 1);
  await until('a new watch was opened', () => h.api.watchCount('pods') > watches, WAIT);
  t.true(h.warnings.some((w) => w.includes('silent')));
  h.api.unsilence();
});

test('DNS replicas come from the DNS Service’s EndpointSlices, ready endpoints only', async (t) => {
  const h = await harness(t, [
    ...twoNodes(),
    endpointSliceObject({
      name: 'kube-dns-abc',
      endpoints: [
        { ip: '10.96.0.20', node: 'n2', zone: 'z2', pod: 'coredns-2' },
        { ip: '10.96.0.10', node: 'n1', zone: 'z1', pod: 'coredns-1' },
        { ip: '10.96.0.30', node: 'n1', zone: 'z1', pod: 'coredns-3', ready: false },
      ],
    }),
    endpointSliceObject({ name: 'web-xyz', service: 'web', endpoints: [{ ip: '10.96.9.9' }] }),
    endpointSliceObject({
      name: 'elsewhere',
      namespace: 'default',
      endpoints: [{ ip: '10.96.8.8' }],
    }),
  ]);
  const seen: (readonly DnsReplica[])[] = [];
  h.source.onDnsReplicas((r) => seen.push(r));
  await until('replicas', () => seen.length > 0, WAIT);
  t.deepEqual(seen[0], [
    { address: '10.96.0.10', port: 53, tcpPort: 53, node: 'n1', zone: 'z1', pod: 'coredns-1' },
    { address: '10.96.0.20', port: 53, tcpPort: 53, node: 'n2', zone: 'z2', pod: 'coredns-2' },
  ]);

  h.api.upsert(
    endpointSliceObject({
      name: 'kube-dns-abc',
      endpoints: [
        { ip: '10.96.0.10', node: 'n1', zone: 'z1', pod: 'coredns-1', ready: false },
        { ip: '10.96.0.30', node: 'n1', zone: 'z1', pod: 'coredns-3' },
      ],
    }),
  );
  await until('replicas changed', () => seen.length === 2, WAIT);
  t.deepEqual(
    h.source.dnsReplicas().map((r) => r.address),
    ['10.96.0.30'],
  );
  // A second slice of the same Service adds to the set.
  h.api.upsert(endpointSliceObject({ name: 'kube-dns-def', endpoints: [{ ip: '10.96.0.40' }] }));
  await until('two slices', () => h.source.dnsReplicas().length === 2, WAIT);
  // A late subscriber hears the current list at once.
  let late: readonly DnsReplica[] | undefined;
  h.source.onDnsReplicas((r) => (late = r));
  t.deepEqual(
    late?.map((r) => r.address),
    ['10.96.0.30', '10.96.0.40'],
  );
});

/** The `kubernetes` Service's EndpointSlice in `default`: the API server's addresses. */
const apiServerSlice = (name: string, ips: readonly string[], ready = true): KObject =>
  apiServerSliceObject({ name, ips, ready });

test('API server endpoints come from the `kubernetes` EndpointSlice in default, only when asked', async (t) => {
  const slices = [
    apiServerSlice('kubernetes', ['10.0.0.12', '10.0.0.11']),
    apiServerSlice('kubernetes-old', ['10.0.0.13'], false),
    // Another Service in default, and the DNS Service: neither is the API server.
    endpointSliceObject({
      name: 'web',
      namespace: 'default',
      service: 'web',
      endpoints: [{ ip: '10.1.1.1' }],
    }),
    endpointSliceObject({ name: 'kube-dns-abc', endpoints: [{ ip: '10.96.0.10' }] }),
  ];
  const h = await harness(t, [...twoNodes(), ...slices], { apiServerEndpoints: true });
  const seen: (readonly { address: string; port: number }[])[] = [];
  h.source.onApiServerEndpoints((e) => seen.push(e));
  await until('endpoints', () => seen.length > 0, WAIT);
  t.deepEqual(seen[0], [
    { address: '10.0.0.11', port: 6443 },
    { address: '10.0.0.12', port: 6443 },
  ]);
  t.not(h.stat('apiserver-endpointslices').lastSyncMs, undefined);
  h.api.upsert(apiServerSlice('kubernetes', ['10.0.0.12']));
  await until('an endpoint left', () => seen.length === 2, WAIT);
  t.deepEqual(seen[1], [{ address: '10.0.0.12', port: 6443 }]);

  // Not asked (the controller, or apiserver.endpoints set): no such informer at all.
  const other = await harness(t, [...twoNodes(), ...slices]);
  t.false(other.source.syncStats().some((s) => s.resource === 'apiserver-endpointslices'));
});

test('fromEnvironment: a kubeconfig file outside a cluster', async (t) => {
  const api = await FakeApiServer.start({ token: 'file-token' });
  for (const o of twoNodes()) api.upsert(o);
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-kubeconfig-'));
  const file = join(dir, 'config');
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: fake`,
      `  cluster: {server: "${api.url}", insecure-skip-tls-verify: true}`,
      'users:',
      '- name: me',
      '  user: {token: file-token}',
      'contexts:',
      '- name: fake',
      `  context: {cluster: fake, user: me, namespace: ${NS}}`,
      'current-context: fake',
    ].join('\n'),
  );
  const saved = { KUBECONFIG: process.env.KUBECONFIG, HOST: process.env.KUBERNETES_SERVICE_HOST };
  process.env.KUBECONFIG = file;
  delete process.env.KUBERNETES_SERVICE_HOST;
  const clock = new FakeClock();
  let source: KubernetesPeerSource;
  try {
    const kc = kubeConfigFromEnvironment();
    t.is(namespaceFromEnvironment({}, kc), NS, 'namespace from the kubeconfig context');
    t.is(namespaceFromEnvironment({ POD_NAMESPACE: 'from-downward-api' }, kc), 'from-downward-api');
    source = KubernetesPeerSource.fromEnvironment({ podSelector: SELECTOR, clock });
  } finally {
    if (saved.KUBECONFIG === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved.KUBECONFIG;
    if (saved.HOST !== undefined) process.env.KUBERNETES_SERVICE_HOST = saved.HOST;
  }
  t.teardown(async () => {
    await source.stop();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await source.start(() => {});
  await until('peers', () => source.peers().length === 3, WAIT);
  t.pass();
});

test('fake API server: label selector grammar', (t) => {
  const o = (labels: Record<string, string>): KObject => ({ kind: 'Pod', metadata: { labels } });
  const sel = (s: string, labels: Record<string, string>): boolean =>
    parseLabelSelector(s)(o(labels));
  t.true(sel('', {}));
  t.true(sel('a=1,b', { a: '1', b: '' }));
  t.false(sel('a=1,b', { a: '1' }));
  t.true(sel('a==1', { a: '1' }));
  t.true(sel('a!=1', {}), 'a missing label is not equal');
  t.false(sel('a!=1', { a: '1' }));
  t.true(sel('!a', { b: '1' }));
  t.false(sel('!a', { a: '1' }));
  t.true(sel('env in (prod, staging),tier notin (db)', { env: 'staging', tier: 'web' }));
  t.false(sel('env in (prod, staging)', { env: 'dev' }));
  t.false(sel('tier notin (db)', { tier: 'db' }));
  t.throws(() => parseLabelSelector('a b c'));
});

test('fake API server: list, watch, selectors, bookmarks and 410 as the protocol says', async (t) => {
  const api = await FakeApiServer.start();
  t.teardown(() => api.close());
  const auth = { authorization: `Bearer ${api.token}` };
  api.upsert(podObject({ name: 'a', node: 'n1', ip: '10.0.0.1' }));
  api.upsert(podObject({ name: 'b', node: 'n2', ip: '10.0.0.2', labels: { tier: 'x' } }));

  t.is((await fetch(`${api.url}/api/v1/namespaces/${NS}/pods`)).status, 401);
  const list = (await (
    await fetch(`${api.url}/api/v1/namespaces/${NS}/pods?labelSelector=tier%3Dx`, { headers: auth })
  ).json()) as { kind: string; metadata: { resourceVersion: string }; items: KObject[] };
  t.is(list.kind, 'PodList');
  t.deepEqual(
    list.items.map((i) => i.metadata?.name),
    ['b'],
  );
  const byField = (await (
    await fetch(`${api.url}/api/v1/pods?fieldSelector=spec.nodeName%3Dn1`, { headers: auth })
  ).json()) as { items: KObject[] };
  t.deepEqual(
    byField.items.map((i) => i.metadata?.name),
    ['a'],
  );

  // Watch from the list's version with a selector: b leaving the selector is a DELETED.
  const ctl = new AbortController();
  t.teardown(() => ctl.abort());
  const res = await fetch(
    `${api.url}/api/v1/namespaces/${NS}/pods?watch=1&allowWatchBookmarks=true&labelSelector=tier%3Dx&resourceVersion=${list.metadata.resourceVersion}`,
    { headers: auth, signal: ctl.signal },
  );
  t.is(res.status, 200);
  const events: { type: string; object: KObject }[] = [];
  const reader = res.body?.getReader();
  let buf = '';
  const pumping = (async () => {
    for (;;) {
      const chunk = await reader?.read();
      if (chunk === undefined || chunk.done) return;
      buf += Buffer.from(chunk.value).toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        events.push(JSON.parse(buf.slice(0, i)) as { type: string; object: KObject });
        buf = buf.slice(i + 1);
      }
    }
  })().catch(() => {});
  api.patch('Pod', NS, 'a', (p) => ((p.metadata ??= {}).labels = { tier: 'x' }));
  api.patch('Pod', NS, 'b', (p) => ((p.metadata ??= {}).labels = {}));
  api.sendBookmarks();
  await until('3 events', () => events.length >= 3, WAIT);
  t.deepEqual(
    events.map((e) => `${e.type} ${e.object.metadata?.name ?? ''}`),
    ['ADDED a', 'DELETED b', 'BOOKMARK '],
  );
  t.is(events[2]?.object.metadata?.resourceVersion, String(api.resourceVersion()));
  ctl.abort();
  await pumping;

  // A version older than the retained history: 200 with an ERROR event carrying 410.
  const stale = list.metadata.resourceVersion;
  api.compact();
  const gone = await fetch(
    `${api.url}/api/v1/namespaces/${NS}/pods?watch=true&resourceVersion=${stale}`,
    {
      headers: auth,
    },
  );
  const body = (await gone.text()).trim();
  const ev = JSON.parse(body) as {
    type: string;
    object: { kind: string; code: number; reason: string };
  };
  t.is(ev.type, 'ERROR');
  t.deepEqual([ev.object.kind, ev.object.code, ev.object.reason], ['Status', 410, 'Expired']);

  // Events can be written and are kept for assertions. As the real API server validates: an
  // Event about a cluster-scoped object (a Node, no involvedObject.namespace) only in
  // `default`, one about a namespaced object only in that object's namespace.
  const postEvent = (ns: string, involvedObject: Record<string, string>) =>
    fetch(`${api.url}/api/v1/namespaces/${ns}/events`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: 'podmesh.' },
        reason: 'CoverageLost',
        involvedObject,
      }),
    });
  t.is((await postEvent('default', { kind: 'Node', name: 'n1' })).status, 201);
  t.is((await postEvent(NS, { kind: 'Node', name: 'n1' })).status, 422);
  t.is((await postEvent(NS, { kind: 'Pod', name: 'p', namespace: NS })).status, 201);
  t.is((await postEvent('default', { kind: 'Pod', name: 'p', namespace: NS })).status, 422);
  t.deepEqual(
    api.created('Event').map((e) => `${e.metadata?.namespace} ${String(e.reason)}`),
    ['default CoverageLost', `${NS} CoverageLost`],
  );

  api.pause('503');
  t.is((await fetch(`${api.url}/api/v1/nodes`, { headers: auth })).status, 503);
  api.resume();
  t.is((await fetch(`${api.url}/api/v1/nodes`, { headers: auth })).status, 200);
});
