// The controller's plumbing watch against the test API server (the real list/watch protocol and
// the real @kubernetes/client-node): the CNI, kube-proxy and CoreDNS Pods of the watched
// namespace by their labels, per node, kept in sync through watch updates and deletes; sandbox
// errors from Events of any namespace, bounded and aged out; and the controller handing that to
// triage, which names the crash-looping CNI agent.

import test from 'ava';
import { triage } from '../src/analysis/triage.ts';
import { API_VERSION } from '../src/api/agent-row.ts';
import { Controller, StaticDirectory } from '../src/controller/controller.ts';
import { PlumbingWatcher, parseSelectors, selectorsByKey } from '../src/controller/plumbing.ts';
import { SystemClock } from '../src/core/clock.ts';
import { FakeApiServer, type KObject } from './support/fake-apiserver.ts';
import { until } from './support/agents.ts';

const MIN = 60_000;
const SELECTORS = [
  'k8s-app=calico-node',
  'app=flannel',
  'k8s-app=kube-proxy',
  'name=weave-net',
  'k8s-app=kube-dns',
];

interface PodOpts {
  readonly ready?: boolean;
  readonly restarts?: number;
  readonly waiting?: string;
  readonly terminated?: { reason: string; agoMs: number };
}

function pod(
  ns: string,
  name: string,
  node: string,
  labels: Record<string, string>,
  o: PodOpts = {},
): KObject {
  const ready = o.ready ?? true;
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: { name, namespace: ns, labels, annotations: { big: 'x'.repeat(100) } },
    spec: { nodeName: node, containers: [{ name: 'main', image: 'x' }] },
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      containerStatuses: [
        {
          name: 'main',
          ready,
          restartCount: o.restarts ?? 0,
          image: 'x',
          imageID: '',
          state: o.waiting !== undefined ? { waiting: { reason: o.waiting } } : { running: {} },
          ...(o.terminated !== undefined
            ? {
                lastState: {
                  terminated: {
                    reason: o.terminated.reason,
                    exitCode: 137,
                    finishedAt: new Date(Date.now() - o.terminated.agoMs).toISOString(),
                  },
                },
              }
            : {}),
        },
      ],
    },
  };
}

function sandboxEvent(
  ns: string,
  name: string,
  node: string,
  pod: string,
  agoMs: number,
  count = 1,
  reason = 'FailedCreatePodSandBox',
): KObject {
  const at = new Date(Date.now() - agoMs).toISOString();
  return {
    kind: 'Event',
    apiVersion: 'v1',
    metadata: { name, namespace: ns },
    involvedObject: { kind: 'Pod', namespace: ns, name: pod },
    reason,
    message: `Failed to create pod sandbox: rpc error: plugin type="calico" failed (add): failed to setup network for sandbox "${pod}"`,
    source: { component: 'kubelet', host: node },
    type: 'Warning',
    count,
    firstTimestamp: at,
    lastTimestamp: at,
  };
}

test('selectors: one set-based watch per label key, roles from the value', (t) => {
  const sel = parseSelectors(SELECTORS);
  t.deepEqual(selectorsByKey(sel), [
    'k8s-app in (calico-node,kube-proxy,kube-dns)',
    'app in (flannel)',
    'name in (weave-net)',
  ]);
  t.deepEqual(
    sel.map((s) => s.role),
    ['cni', 'cni', 'proxy', 'cni', 'dns'],
  );
});

test('plumbing Pods per node and sandbox errors, kept in sync by the watch', async (t) => {
  const api = await FakeApiServer.start();
  const ks = 'kube-system';
  api.upsert(pod(ks, 'calico-node-a', 'n1', { 'k8s-app': 'calico-node' }));
  api.upsert(pod(ks, 'calico-node-b', 'n2', { 'k8s-app': 'calico-node' }));
  api.upsert(pod(ks, 'kube-proxy-a', 'n1', { 'k8s-app': 'kube-proxy' }));
  api.upsert(
    pod(
      ks,
      'coredns-1',
      'n2',
      { 'k8s-app': 'kube-dns' },
      { restarts: 4, terminated: { reason: 'OOMKilled', agoMs: 2 * MIN } },
    ),
  );
  // Not plumbing: another DaemonSet in kube-system, and a CNI in a namespace not watched.
  api.upsert(pod(ks, 'ebs-csi-node-a', 'n1', { app: 'ebs-csi-node' }));
  api.upsert(pod('calico-system', 'calico-node-x', 'n3', { 'k8s-app': 'calico-node' }));
  // Sandbox errors: three in the window on n2 (one aggregated, count 2), one aged out on n1,
  // one of another reason on n1.
  api.upsert(sandboxEvent('default', 'web-1.1', 'n2', 'web-1', 1 * MIN, 2));
  api.upsert(sandboxEvent('shop', 'cart-1.1', 'n2', 'cart-1', 3 * MIN));
  api.upsert(sandboxEvent('default', 'web-2.1', 'n1', 'web-2', 30 * MIN));
  api.upsert(sandboxEvent('default', 'web-3.1', 'n1', 'web-3', 1 * MIN, 1, 'FailedScheduling'));

  const w = new PlumbingWatcher({
    kubeConfig: api.kubeConfig(),
    namespaces: [ks],
    selectors: SELECTORS,
    sandboxWindowMs: 10 * MIN,
    watchdogMs: 60_000,
    clock: new SystemClock(),
    log: { debug: () => {}, info: () => {}, warn: () => {} },
  });
  t.teardown(async () => {
    w.stop();
    await api.close();
  });
  t.is(w.report(), undefined, 'nothing before the first list');
  w.start();

  const first = await until(
    'first report',
    () => {
      const r = w.report();
      return r !== undefined && r.nodes.length === 2 && r.nodes.some((n) => n.sandboxErrors)
        ? r
        : undefined;
    },
    5000,
  );
  t.deepEqual(
    first.nodes.map((n) => [n.node, n.pods.map((p) => `${p.name}:${p.role}:${p.ready}`)]),
    [
      ['n1', ['calico-node-a:cni:true', 'kube-proxy-a:proxy:true']],
      ['n2', ['calico-node-b:cni:true', 'coredns-1:dns:true']],
    ],
  );
  const dns = first.nodes[1]!.pods[1]!;
  t.is(dns.restarts, 4);
  t.is(dns.lastTermination?.reason, 'OOMKilled');
  t.true(Math.abs(first.atMs - 2 * MIN - (dns.lastTermination?.atMs ?? 0)) < 10_000);
  t.is(first.nodes[0]!.sandboxErrors, undefined, 'aged out and other reasons do not count');
  const sb = first.nodes[1]!.sandboxErrors!;
  t.is(sb.count, 3);
  t.deepEqual(sb.pods, ['default/web-1', 'shop/cart-1']);
  t.regex(sb.lastMessage, /failed to setup network for sandbox "web-1"/);
  t.is(first.sandboxWindowMs, 10 * MIN);

  // A watch update: calico-node on n2 crash-loops; then kube-proxy on n1 goes away.
  api.upsert(
    pod(
      ks,
      'calico-node-b',
      'n2',
      { 'k8s-app': 'calico-node' },
      {
        ready: false,
        restarts: 6,
        waiting: 'CrashLoopBackOff',
        terminated: { reason: 'Error', agoMs: 30_000 },
      },
    ),
  );
  api.remove('Pod', ks, 'kube-proxy-a');
  const second = await until(
    'update seen',
    () => {
      const r = w.report();
      const b = r?.nodes.find((n) => n.node === 'n2')?.pods.find((p) => p.name === 'calico-node-b');
      return b?.ready === false && r?.nodes[0]?.pods.length === 1 ? r : undefined;
    },
    5000,
  );
  const b = second.nodes[1]!.pods[0]!;
  t.is(b.waitingReason, 'CrashLoopBackOff');
  t.is(b.restarts, 6);

  // Triage reads it: the crash-looping agent is named on n2, and n2's sandbox errors too.
  const found = triage({
    matrix: {
      apiVersion: API_VERSION,
      kind: 'Matrix',
      generatedAt: new Date().toISOString(),
      nodes: [],
      zones: {},
      agents: [],
      cells: [],
      dns: [],
      ports: [],
      apiserver: [],
    },
    coverage: undefined,
    plumbing: second,
  });
  t.deepEqual(found.map((f) => f.id).sort(), ['cni-sandbox-errors:n2', 'cni-unhealthy:n2']);
});

test('the controller hands the plumbing to triage each round', async (t) => {
  const report = {
    atMs: Date.now(),
    sandboxWindowMs: 10 * MIN,
    nodes: [
      {
        node: 'n1',
        pods: [
          {
            namespace: 'kube-system',
            name: 'cilium-x',
            component: 'cilium',
            role: 'cni' as const,
            ready: false,
            restarts: 9,
            waitingReason: 'CrashLoopBackOff',
          },
        ],
      },
    ],
  };
  const seen: unknown[] = [];
  const ctl = new Controller({
    clock: new SystemClock(),
    directory: new StaticDirectory([]),
    pullIntervalMs: 60_000,
    pullConcurrency: 1,
    pullTimeoutMs: 1000,
    version: 'test',
    triage: (s) => {
      seen.push(s.plumbing);
      return triage(s);
    },
    plumbing: () => report,
    log: () => {},
  });
  await ctl.round();
  t.deepEqual(seen, [report]);
  t.deepEqual(
    ctl.findings()?.findings.map((f) => f.id),
    ['cni-unhealthy:n1'],
  );
});
