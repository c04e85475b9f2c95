// diffPeers: each peer lands in exactly one of arrived, departed, kept, by id.

import test from 'ava';
import { diffPeers, peersChanged } from './peer-diff.ts';

const p = (id: string, address = '10.0.0.1') => ({ id, address });

test('arrived, departed and kept by id; kept as in the new list', (t) => {
  const d = diffPeers([p('a'), p('b'), p('c')], [p('b', '10.0.0.2'), p('c'), p('d')]);
  t.deepEqual(d.arrived, [p('d')]);
  t.deepEqual(d.departed, [p('a')]);
  t.deepEqual(d.kept, [p('b', '10.0.0.2'), p('c')]);
  t.true(peersChanged(d));
});

test('the same ids are no change, even when a peer moved', (t) => {
  const d = diffPeers([p('a')], [p('a', '10.0.0.9')]);
  t.deepEqual(d.arrived, []);
  t.deepEqual(d.departed, []);
  t.false(peersChanged(d));
});

test('from nothing everything arrives; to nothing everything departs', (t) => {
  t.deepEqual(diffPeers([], [p('a')]).arrived, [p('a')]);
  t.deepEqual(diffPeers([p('a')], []).departed, [p('a')]);
});
