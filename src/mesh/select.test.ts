// Peer selection: bounded, deterministic, topology-aware and stable under churn.

import test from 'ava';
import fc from 'fast-check';
import type { Self } from '../core/types.ts';
import { selectPeers, topK } from './select.ts';
import { agentPeer } from '../../test/support/cluster-fixture.ts';

const self: Self = { node: 'n0', network: 'pod', zone: 'a', address: '10.0.0.1' };
const cluster = [
  agentPeer('n0', 'a', 'host'),
  ...Array.from({ length: 20 }, (_, i) => agentPeer(`a${i}`, 'a')),
  ...Array.from({ length: 20 }, (_, i) => agentPeer(`b${i}`, 'b')),
];

test('never more than the limit, never itself, no duplicates', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 50 }), fc.shuffledSubarray(cluster), (limit, cands) => {
      const got = selectPeers(self, [...cands, agentPeer('n0', 'a', 'pod')], limit);
      t.true(got.length <= limit);
      t.is(new Set(got.map((p) => p.id)).size, got.length);
      t.false(got.some((p) => p.id === 'n0/pod'));
      t.is(got.length, Math.min(limit, cands.length));
    }),
  );
});

test('deterministic regardless of input order', (t) => {
  const a = selectPeers(self, cluster, 9).map((p) => p.id);
  const b = selectPeers(self, [...cluster].reverse(), 9).map((p) => p.id);
  t.deepEqual(a, b);
});

test('same-node agent first, then zones share the rest', (t) => {
  const got = selectPeers(self, cluster, 9);
  t.is(got[0]!.id, 'n0/host');
  t.is(got.filter((p) => p.zone === 'a' && p.node !== 'n0').length, 4);
  t.is(got.filter((p) => p.zone === 'b').length, 4);
});

test('a short side gives its share to the other', (t) => {
  const few = [
    agentPeer('b1', 'b'),
    ...Array.from({ length: 10 }, (_, i) => agentPeer(`a${i}`, 'a')),
  ];
  const got = selectPeers(self, few, 8);
  t.is(got.filter((p) => p.zone === 'b').length, 1);
  t.is(got.length, 8);
});

test('a departing peer changes at most its own slot', (t) => {
  const before = selectPeers(self, cluster, 10);
  const gone = before[3]!;
  const after = selectPeers(
    self,
    cluster.filter((p) => p.id !== gone.id),
    10,
  );
  const kept = before.filter((p) => p.id !== gone.id).map((p) => p.id);
  t.true(kept.every((id) => after.some((p) => p.id === id)));
});

test('different agents pick different peers (load spreads)', (t) => {
  const other: Self = { ...self, node: 'n1' };
  const a = selectPeers(self, cluster, 6).map((p) => p.id);
  const b = selectPeers(other, cluster, 6).map((p) => p.id);
  t.notDeepEqual(a, b);
});

test('topK is the sorted prefix, for any input and k', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 20 })),
      fc.integer({ min: -1, max: 40 }),
      (xs, k) => {
        const cmp = (a: number, b: number): number => a - b;
        t.deepEqual(topK([...xs], k, cmp), [...xs].sort(cmp).slice(0, Math.max(0, k)));
      },
    ),
  );
});

test("watched nodes come right after the same-node agent, on this agent's network", (t) => {
  const withHost = [...cluster, agentPeer('b7', 'b', 'host')];
  const got = selectPeers(self, withHost, 9, new Set(['b7', 'b3']));
  t.deepEqual(
    got
      .slice(0, 3)
      .map((p) => p.id)
      .sort(),
    ['b3/pod', 'b7/pod', 'n0/host'].sort(),
  );
  t.is(got[0]!.id, 'n0/host');
  // A host agent watching b7 takes b7's host agent; b7/pod still competes like any peer.
  const host = selectPeers({ ...self, network: 'host' }, withHost, 40, new Set(['b7']));
  t.true(host.slice(0, 2).some((p) => p.id === 'b7/host'));
  t.true(host.some((p) => p.id === 'b7/pod'));
});

test('with watched nodes the limit, uniqueness and input-order invariants still hold', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 50 }),
      fc.shuffledSubarray(cluster),
      fc.subarray(cluster.map((p) => p.node)),
      (limit, cands, watched) => {
        const w = new Set(watched);
        const got = selectPeers(self, cands, limit, w);
        t.is(new Set(got.map((p) => p.id)).size, got.length);
        t.is(got.length, Math.min(limit, cands.length));
        t.deepEqual(
          selectPeers(self, [...cands].reverse(), limit, w).map((p) => p.id),
          got.map((p) => p.id),
        );
        // Every watched candidate is in when the limit has room for the same node + watched.
        const present = cands.filter((p) => w.has(p.node));
        if (limit >= 1 + present.length)
          t.true(present.every((p) => got.some((g) => g.id === p.id)));
      },
    ),
  );
});
