// The demo fault wire shape and the CLI's short form, and the reflector's drop decision: the
// pure parts of the demo's fault injection (test/demo-faults.test.ts runs it end to end).

import test from 'ava';
import { parseDemoFault } from './demo-faults.ts';
import { faultDrops, faultFor, MTU_PROBE_MIN_BYTES } from '../responders/demo-faults.ts';
import { checkFaults, reflectorTable } from '../demo/faults.ts';

test('the CLI short form parses each fault kind', (t) => {
  t.deepEqual(parseDemoFault('demo-node-2:loss=30'), {
    kind: 'loss',
    node: 'demo-node-2',
    percent: 30,
  });
  t.deepEqual(parseDemoFault('demo-node-1:mtu'), { kind: 'mtu', node: 'demo-node-1' });
  t.deepEqual(parseDemoFault('dns:demo-node-1'), { kind: 'dns-servfail', replica: 'demo-node-1' });
  t.deepEqual(parseDemoFault('port:demo-web'), { kind: 'port-refused', target: 'demo-web' });
});

test('the CLI short form refuses what is not a fault', (t) => {
  for (const bad of ['demo-node-2', 'demo-node-2:loss=0', 'demo-node-2:loss=101', 'x:y', 'dns:'])
    t.is(typeof parseDemoFault(bad), 'string', bad);
});

test('a loss fault drops its share of every size, an mtu fault only big packets', (t) => {
  const table = reflectorTable([
    { kind: 'loss', node: 'a', percent: 30 },
    { kind: 'mtu', node: 'b' },
  ]);
  const a = faultFor(table, 'a')!;
  const b = faultFor(table, 'b')!;
  t.is(faultFor(table, 'c'), null);
  t.true(faultDrops(a, 44, 0.29));
  t.false(faultDrops(a, 44, 0.3));
  t.true(faultDrops(a, 1400, 0.1));
  t.false(faultDrops(b, 44, 0));
  t.false(faultDrops(b, MTU_PROBE_MIN_BYTES, 0));
  t.true(faultDrops(b, MTU_PROBE_MIN_BYTES + 1, 0.99));
});

test('a malformed channel message reads as healthy', (t) => {
  for (const m of [null, 1, 'x', { a: null }, { a: { dropShare: '1', minBytes: 0 } }])
    t.is(faultFor(m, 'a'), null);
});

test('faults naming what the demo lacks, or one node twice, are refused', (t) => {
  const targets = { nodes: ['n1', 'n2'], replicas: new Map(), ports: [] };
  t.deepEqual(checkFaults([{ kind: 'mtu', node: 'n1' }], targets), []);
  t.is(checkFaults([{ kind: 'mtu', node: 'n3' }], targets).length, 1);
  t.is(checkFaults([{ kind: 'dns-servfail', replica: 'n1' }], targets).length, 1);
  t.is(
    checkFaults(
      [
        { kind: 'mtu', node: 'n1' },
        { kind: 'loss', node: 'n1', percent: 5 },
      ],
      targets,
    ).length,
    1,
  );
});
