// Which node a finding is about (node-events.ts findingNode), from its subject and nodes only,
// and the Event each transition becomes.

import test from 'ava';
import type { Finding } from '../api/findings.ts';
import { findingNode, nodeEventOf } from './node-events.ts';

function f(kind: Finding['kind'], subject: string, nodes: string[]): Finding {
  return {
    id: `${kind}:${subject}`,
    kind,
    severity: 'warning',
    subject,
    nodes,
    title: `${kind} ${subject}`,
    summary: '',
    evidence: [],
    confidence: 0.5,
    nextSteps: [],
  };
}

const cases: [string, Finding, string | undefined][] = [
  [
    'subject is one of its nodes (peers listed too)',
    f('node-isolated', 'n3', ['n1', 'n2', 'n3']),
    'n3',
  ],
  ['a hub overlay', f('overlay-broken', 'n2', ['n1', 'n2', 'n3', 'n4']), 'n2'],
  ['subject with its network', f('coverage-gap', 'n1/host', ['n1']), 'n1'],
  [
    'subject with a network, the node not among its nodes',
    f('prober-starved', 'n1/pod', ['n2', 'n3']),
    undefined,
  ],
  ['one node only, subject not a node', f('dns-replica', '10.96.0.10', ['n3']), 'n3'],
  ['the same node twice', f('port-blocked', 'db:5432', ['n2', 'n2']), 'n2'],
  ['a pair', f('pair-loss', 'n1->n2', ['n1', 'n2']), undefined],
  ['a zone pair', f('zone-pair', 'z1<->z2', ['n1', 'n2', 'n3']), undefined],
  ['cluster-wide', f('overlay-broken', 'cluster', ['n1', 'n2', 'n3']), undefined],
  ['no node at all', f('dns-all', 'all', []), undefined],
  ['a subject that only starts like a node', f('host-network', 'n1x', ['n1', 'n2']), undefined],
];

for (const [name, finding, want] of cases)
  test(`findingNode: ${name}`, (t) => {
    t.is(findingNode(finding), want);
  });

test('nodeEventOf: Warning on opening (Normal for info), Normal on clearing, short message', (t) => {
  const x = {
    ...f('node-isolated', 'n3', ['n3']),
    severity: 'critical' as const,
    title: 'n3 is isolated',
  };
  t.deepEqual(nodeEventOf(x, 'n3', 'opened'), {
    node: 'n3',
    transition: 'opened',
    type: 'Warning',
    reason: 'PodmeshFindingOpened',
    message:
      '[critical] node-isolated: n3 is isolated (finding node-isolated:n3; evidence and next steps: podmesh diagnose)',
  });
  t.like(nodeEventOf(x, 'n3', 'cleared'), { type: 'Normal', reason: 'PodmeshFindingCleared' });
  t.is(nodeEventOf({ ...x, severity: 'info' }, 'n3', 'opened').type, 'Normal');
  const long = nodeEventOf({ ...x, title: 'x'.repeat(2000) }, 'n3', 'opened').message;
  t.true(long.length < 450, `message of ${long.length} characters`);
});
