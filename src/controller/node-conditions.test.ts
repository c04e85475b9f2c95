// conditionWrites (node-conditions.ts): which Nodes get the PodmeshNetworkProblem condition
// written, from the open findings and what each Node says now.

import test from 'ava';
import type { Finding } from '../api/findings.ts';
import { conditionWrites } from './node-conditions.ts';

function f(
  kind: Finding['kind'],
  subject: string,
  nodes: string[],
  severity: Finding['severity'] = 'critical',
): Finding {
  return {
    id: `${kind}:${subject}`,
    kind,
    severity,
    subject,
    nodes,
    title: '',
    summary: '',
    evidence: [],
    confidence: 0.5,
    nextSteps: [],
  };
}

const TRUE_N1 = {
  status: 'True',
  reason: 'PodmeshFindingsOpen',
  message: 'podmesh findings open on this node: node-isolated:n1 (podmesh diagnose)',
  lastTransitionTime: '2026-12-07T20:00:00Z',
};

test('True on the finding’s node only; a healthy Node without the condition is left alone', (t) => {
  const w = conditionWrites(
    [f('node-isolated', 'n1', ['n1', 'n2'])],
    [{ node: 'n2' }, { node: 'n1' }],
  );
  t.deepEqual(w, [
    {
      node: 'n1',
      condition: { status: 'True', reason: TRUE_N1.reason, message: TRUE_N1.message },
      transition: true,
    },
  ]);
});

test('nothing written when the Node already says so; a message change keeps lastTransitionTime', (t) => {
  t.deepEqual(
    conditionWrites([f('node-isolated', 'n1', ['n1'])], [{ node: 'n1', current: TRUE_N1 }]),
    [],
  );
  const w = conditionWrites(
    [f('node-isolated', 'n1', ['n1']), f('cni-unhealthy', 'n1', ['n1'], 'warning')],
    [{ node: 'n1', current: TRUE_N1 }],
  );
  t.is(w.length, 1);
  t.like(w[0], { transition: false, since: TRUE_N1.lastTransitionTime });
  t.regex(w[0]!.condition.message, /cni-unhealthy:n1, node-isolated:n1/);
});

test('False once no finding is open on a Node that had it True (also after a restart)', (t) => {
  t.deepEqual(conditionWrites([], [{ node: 'n1', current: TRUE_N1 }]), [
    {
      node: 'n1',
      condition: {
        status: 'False',
        reason: 'PodmeshNoFindings',
        message: 'no podmesh finding is open on this node',
      },
      transition: true,
    },
  ]);
  t.deepEqual(
    conditionWrites([], [{ node: 'n1', current: { ...TRUE_N1, status: 'False' } }]),
    [],
    'already False: the message is ours to leave',
  );
});

test('info findings, pairs and cluster-wide findings set nothing; the bound defers the rest', (t) => {
  t.deepEqual(
    conditionWrites(
      [
        f('prober-starved', 'n1/pod', ['n1'], 'info'),
        f('pair-loss', 'n1->n2', ['n1', 'n2'], 'warning'),
        f('overlay-broken', 'cluster', ['n1', 'n2']),
      ],
      [{ node: 'n1' }, { node: 'n2' }],
    ),
    [],
  );
  const many = ['n1', 'n2', 'n3'].map((n) => f('node-isolated', n, [n]));
  const nodes = ['n3', 'n1', 'n2'].map((node) => ({ node }));
  t.deepEqual(
    conditionWrites(many, nodes, 2).map((w) => w.node),
    ['n1', 'n2'],
  );
  const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((x) =>
    f('dns-replica', x, ['n1'], 'warning'),
  );
  t.regex(conditionWrites(ids, [{ node: 'n1' }])[0]!.condition.message, /dns-replica:e and 2 more/);
});
