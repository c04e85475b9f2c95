// "What changed" end to end against the test API server: the controller's plumbing watch sees a
// CNI Pod's restart count go up in the stand-in, the change timeline records it, and the open
// finding on that node carries it (with the termination's reason) while a finding on another
// node does not; the wire shape still parses.

import test from 'ava';
import type { Finding } from '../src/api/findings.ts';
import { findingsReportSchema } from '../src/api/findings.ts';
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
