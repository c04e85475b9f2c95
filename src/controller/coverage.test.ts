// Coverage reasons as a table of named cases, plus near misses.

import test from 'ava';
import type { CoverageReason } from '../api/coverage.ts';
import {
  coverage,
  podVerdict,
  type AgentPodSnapshot,
  type EventSnapshot,
  type NodeSnapshot,
} from './coverage.ts';

const running: AgentPodSnapshot = {
  name: 'podmesh-agent-a',
  node: 'n1',
  network: 'pod',
  phase: 'Running',
  ready: true,
  terminating: false,
  containers: [{ ready: true, restartCount: 0 }],
};

const cases: [string, Partial<AgentPodSnapshot>, EventSnapshot[], CoverageReason, RegExp][] = [
  ['Ready and Running', {}, [], 'ready', /is Ready/],
  [
    'CrashLoopBackOff',
    {
      ready: false,
      containers: [
        {
          ready: false,
          restartCount: 7,
          waitingReason: 'CrashLoopBackOff',
          lastTerminatedReason: 'Error',
        },
      ],
    },
    [],
    'crash-loop',
    /after 7 restarts \(last exit: Error\)/,
  ],
  [
    'image pull',
    {
      phase: 'Pending',
      ready: false,
      containers: [
        {
          ready: false,
          restartCount: 0,
          waitingReason: 'ImagePullBackOff',
          waitingMessage: 'not found',
        },
      ],
    },
    [],
    'image-pull',
    /ImagePullBackOff: not found/,
  ],
  [
    'config error',
    {
      ready: false,
      phase: 'Pending',
      containers: [
        {
          ready: false,
          restartCount: 0,
          waitingReason: 'CreateContainerConfigError',
          waitingMessage: 'configmap "podmesh" not found',
        },
      ],
    },
    [],
    'config-error',
    /configmap/,
  ],
  [
    'unschedulable',
    {
      phase: 'Pending',
      ready: false,
      containers: [],
      unschedulableMessage: '0/3 nodes are available: insufficient cpu',
    },
    [],
    'unschedulable',
    /insufficient cpu/,
  ],
  [
    'CNI failure shows as sandbox error',
    {
      phase: 'Pending',
      ready: false,
      containers: [{ ready: false, restartCount: 0, waitingReason: 'ContainerCreating' }],
    },
    [
      {
        pod: 'podmesh-agent-a',
        reason: 'FailedCreatePodSandBox',
        message:
          'failed to set up sandbox container network: plugin type="flannel" failed: open /run/flannel/subnet.env: no such file',
        lastMs: 5,
      },
    ],
    'sandbox-error',
    /subnet\.env/,
  ],
  [
    'pending without events',
    {
      phase: 'Pending',
      ready: false,
      containers: [{ ready: false, restartCount: 0, waitingReason: 'ContainerCreating' }],
    },
    [],
    'pending',
    /Pending \(ContainerCreating\)/,
  ],
  [
    'running but readiness failing',
    { ready: false, containers: [{ ready: false, restartCount: 0 }] },
    [],
    'not-ready',
    /readiness/,
  ],
  ['terminating', { terminating: true }, [], 'terminating', /being deleted/],
  [
    'near miss: sandbox event for another pod is ignored',
    { phase: 'Pending', ready: false, containers: [] },
    [{ pod: 'other', reason: 'FailedCreatePodSandBox', message: 'x', lastMs: 1 }],
    'pending',
    /Pending/,
  ],
  [
    'near miss: restarts alone while Ready is fine',
    { containers: [{ ready: true, restartCount: 3 }] },
    [],
    'ready',
    /Ready/,
  ],
];

for (const [name, patch, events, reason, detail] of cases) {
  test(`pod verdict: ${name}`, (t) => {
    const v = podVerdict({ ...running, ...patch }, events);
    t.is(v.reason, reason);
    t.regex(v.detail, detail);
    t.is(v.covered, reason === 'ready');
  });
}

const nodes: NodeSnapshot[] = [
  { name: 'n1', ready: true, unschedulable: false },
  { name: 'n2', ready: true, unschedulable: false },
  { name: 'n3', ready: true, unschedulable: true },
  { name: 'n4', ready: false, unschedulable: false },
];

test('every expected node gets a verdict per agent kind; cordoned and NotReady nodes are not expected', (t) => {
  const pods: AgentPodSnapshot[] = [
    running,
    { ...running, name: 'host-a', network: 'host' },
    {
      ...running,
      name: 'pod-b',
      node: 'n2',
      ready: false,
      containers: [{ ready: false, restartCount: 4, waitingReason: 'CrashLoopBackOff' }],
    },
  ];
  const c = coverage(nodes, pods);
  t.deepEqual(
    c.map((x) => x.node),
    ['n1', 'n2'],
  );
  t.true(c[0]!.pod.covered && c[0]!.host.covered);
  t.is(c[1]!.pod.reason, 'crash-loop');
  t.is(c[1]!.host.reason, 'missing');
  t.is(c[1]!.host.pod, null);
});

test('a Ready replacement wins over its terminating predecessor', (t) => {
  const c = coverage(nodes.slice(0, 1), [
    { ...running, name: 'old', terminating: true },
    { ...running, name: 'new' },
  ]);
  t.true(c[0]!.pod.covered);
  t.is(c[0]!.pod.pod, 'new');
});
