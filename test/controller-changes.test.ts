// "What changed" end to end against the test API server: the controller's plumbing watch sees a
// CNI Pod's restart count go up in the stand-in, the change timeline records it, and the open
// finding on that node carries it (with the termination's reason) while a finding on another
// node does not; the wire shape still parses. And the NetworkPolicy watch: one created, changed
// and deleted in the agents' namespace reach the findings, one elsewhere does not; a Node's new
// boot ID reads as a reboot on that node's finding.

import type { V1Node } from '@kubernetes/client-node';
import test from 'ava';
import type { Finding } from '../src/api/findings.ts';
import { findingsReportSchema } from '../src/api/findings.ts';
import { DnsConfigWatcher, PolicyWatcher, clusterState } from '../src/controller/change-watch.ts';
import { ChangeTimeline } from '../src/controller/changes.ts';
import { Controller, StaticDirectory } from '../src/controller/controller.ts';
import { PlumbingWatcher } from '../src/controller/plumbing.ts';
import { SystemClock } from '../src/core/clock.ts';
import { until } from './support/agents.ts';
import { FakeApiServer, type KObject } from './support/fake-apiserver.ts';

const MIN = 60_000;

function calico(name: string, node: string, restarts: number, endedAgoMs?: number): KObject {
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: { name, namespace: 'kube-system', labels: { 'k8s-app': 'calico-node' } },
    spec: { nodeName: node, containers: [{ name: 'calico-node', image: 'x' }] },
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'True' }],
      containerStatuses: [
        {
          name: 'calico-node',
          ready: true,
          restartCount: restarts,
          image: 'x',
          imageID: '',
          state: { running: {} },
          ...(endedAgoMs !== undefined
            ? {
                lastState: {
                  terminated: {
                    reason: 'OOMKilled',
                    exitCode: 137,
                    finishedAt: new Date(Date.now() - endedAgoMs).toISOString(),
                  },
                },
              }
            : {}),
        },
      ],
    },
  };
}

function overlay(node: string): Finding {
  return {
    id: `overlay-broken:${node}`,
    kind: 'overlay-broken',
    severity: 'critical',
    subject: node,
    nodes: [node],
    title: `pod network broken on ${node}`,
    summary: '',
    evidence: [],
    confidence: 0.9,
    nextSteps: [],
  };
}

test("a CNI Pod's restart in the API server shows on the finding on its node", async (t) => {
  const api = await FakeApiServer.start();
  // n1's agent restarted three hours ago (not a change now), n2's never.
  api.upsert(calico('calico-node-a', 'n1', 2, 3 * 60 * MIN));
  api.upsert(calico('calico-node-b', 'n2', 0));
  const clock = new SystemClock();
  const w = new PlumbingWatcher({
    kubeConfig: api.kubeConfig(),
    namespaces: ['kube-system'],
    selectors: ['k8s-app=calico-node'],
    sandboxWindowMs: 10 * MIN,
    watchdogMs: 60_000,
    clock,
    log: { debug: () => {}, info: () => {}, warn: () => {} },
  });
  t.teardown(async () => {
    w.stop();
    await api.close();
  });
  w.start();
  await until('listed', () => w.report()?.nodes.length === 2, 5000);

  const timeline = new ChangeTimeline({ horizonMs: 15 * MIN, lookbackMs: 10 * MIN });
  const ctl = new Controller({
    clock,
    directory: new StaticDirectory([]),
    pullIntervalMs: 60_000,
    pullConcurrency: 1,
    pullTimeoutMs: 1000,
    version: 'test',
    triage: () => [overlay('n1'), overlay('n2')],
    plumbing: timeline.observing(() => w.report()),
    changes: (f, sinceMs) => timeline.forFinding(f, sinceMs),
    log: () => {},
  });
  await ctl.round();
  t.deepEqual(
    ctl.findings()?.findings.map((f) => f.changes),
    [undefined, undefined],
    'the restart hours ago is not a change',
  );

  api.upsert(calico('calico-node-a', 'n1', 3, 1000));
  await until(
    'restart seen by the watch',
    () => w.report()?.nodes.find((n) => n.node === 'n1')?.pods[0]?.restarts === 3,
    5000,
  );
  await ctl.round();
  const report = findingsReportSchema.parse(ctl.findings());
  const [n1, n2] = report.findings;
  t.is(n1?.subject, 'n1');
  t.deepEqual(
    n1?.changes?.map((c) => [c.kind, c.node, c.object, c.component]),
    [['pod-restarted', 'n1', 'kube-system/calico-node-a', 'calico-node']],
  );
  t.regex(n1?.changes?.[0]?.detail ?? '', /2 → 3.*OOMKilled/);
  t.is(n2?.changes, undefined, 'nothing changed on n2');
});

function policy(ns: string, name: string, generation: number): KObject {
  return {
    kind: 'NetworkPolicy',
    apiVersion: 'networking.k8s.io/v1',
    metadata: { name, namespace: ns, generation },
    spec: { podSelector: {}, policyTypes: ['Ingress'] },
  };
}

function node(name: string, bootID: string): KObject {
  return {
    kind: 'Node',
    apiVersion: 'v1',
    metadata: { name },
    status: { conditions: [{ type: 'Ready', status: 'True' }], nodeInfo: { bootID } },
  };
}

test('NetworkPolicies and Node reboots from the API server reach the findings', async (t) => {
  const api = await FakeApiServer.start();
  api.upsert(policy('podmesh', 'existing', 1));
  const clock = new SystemClock();
  const w = new PolicyWatcher({
    kubeConfig: api.kubeConfig(),
    clock,
    log: { debug: () => {}, info: () => {}, warn: () => {} },
    watchdogMs: 60_000,
  });
  t.teardown(async () => {
    w.stop();
    await api.close();
  });
  t.is(w.policies(), undefined, 'nothing before the first list');
  w.start();
  await until('listed', () => w.policies()?.length === 1, 5000);
  const nodes = [node('n1', 'boot-a')];
  const timeline = new ChangeTimeline({
    horizonMs: 15 * MIN,
    lookbackMs: 10 * MIN,
    scope: { agentNamespace: 'podmesh', dnsNamespace: 'kube-system' },
  });
  const observe = (): void =>
    timeline.observeCluster(clusterState(Date.now(), nodes as V1Node[], w.policies()));
  observe();
  const sinceMs = Date.now();

  api.upsert(policy('podmesh', 'existing', 2));
  api.upsert(policy('podmesh', 'deny-all', 1));
  api.upsert(policy('shop', 'web', 1));
  await until('watched', () => w.policies()?.length === 3, 5000);
  observe();
  api.remove('NetworkPolicy', 'podmesh', 'deny-all');
  await until(
    'deleted and changed',
    () =>
      w.policies()?.length === 2 &&
      w.policies()?.find((p) => p.name === 'existing')?.generation === 2,
    5000,
  );
  nodes[0] = node('n1', 'boot-b');
  observe();

  const got = timeline
    .forFinding(overlay('n1'), sinceMs)
    .map((c) => `${c.kind} ${c.object}`)
    .sort();
  // The first list dates "existing" by its creation (a moment ago in the stand-in).
  t.deepEqual(got, [
    'network-policy-changed podmesh/existing',
    'network-policy-created podmesh/deny-all',
    'network-policy-created podmesh/existing',
    'network-policy-deleted podmesh/deny-all',
    'node-rebooted n1',
  ]);
  t.false(
    timeline.forFinding(overlay('n2'), sinceMs).some((c) => c.namespace === 'shop'),
    'a policy in a namespace the finding does not involve',
  );
});

test('the Corefile ConfigMap: watched by name, an edit shows on a DNS finding, no data kept', async (t) => {
  const api = await FakeApiServer.start();
  const corefile = (data: string): KObject => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'coredns', namespace: 'kube-system' },
    data: { Corefile: data },
  });
  api.upsert(corefile('.:53 { forward . /etc/resolv.conf }'));
  // Not watched: another ConfigMap of kube-system, and a coredns in another namespace.
  api.upsert({ ...corefile('x'), metadata: { name: 'other', namespace: 'kube-system' } });
  api.upsert({ ...corefile('x'), metadata: { name: 'coredns', namespace: 'shop' } });
  const w = new DnsConfigWatcher({
    kubeConfig: api.kubeConfig(),
    clock: new SystemClock(),
    log: { debug: () => {}, info: () => {}, warn: () => {} },
    watchdogMs: 60_000,
    configMaps: [
      { namespace: 'kube-system', name: 'coredns' },
      { namespace: 'kube-system', name: 'coredns-custom' },
    ],
  });
  t.teardown(async () => {
    w.stop();
    await api.close();
  });
  t.is(w.configs(), undefined, 'nothing before every watch listed');
  w.start();
  await until('listed', () => w.configs()?.length === 1, 5000);
  const first = w.configs()![0]!;
  t.is(`${first.namespace}/${first.name}`, 'kube-system/coredns');
  t.regex(first.digest, /^[0-9a-f]{64}$/);
  t.false(JSON.stringify(w.configs()).includes('forward'), 'the Corefile itself is not kept');
  const timeline = new ChangeTimeline({ horizonMs: 15 * MIN, lookbackMs: 10 * MIN });
  const observe = (): void =>
    timeline.observeCluster(clusterState(Date.now(), undefined, undefined, w.configs()));
  observe();
  const sinceMs = Date.now();

  api.upsert({
    ...corefile('x'),
    metadata: { name: 'other', namespace: 'kube-system' },
    data: { a: 'b' },
  });
  api.upsert(corefile('.:53 { forward . 198.18.0.53 }'));
  await until('edited', () => w.configs()?.[0]?.digest !== first.digest, 5000);
  observe();
  const dnsFinding = { ...overlay('n1'), kind: 'dns-service' as const };
  t.deepEqual(
    timeline.forFinding(dnsFinding, sinceMs).map((c) => `${c.kind} ${c.detail}`),
    ['dns-config-changed ConfigMap kube-system/coredns changed (its data differs)'],
  );
  t.deepEqual(timeline.forFinding(overlay('n1'), sinceMs), [], 'not on a non-DNS finding');
});
