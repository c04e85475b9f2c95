// The peer family's plan: the sizes each kind sends come from the probe kind registry, in
// registry order, and a kind that does not run gets no jobs.

import test from 'ava';
import { pairKey } from '../../core/pair-key.ts';
import type { Peer } from '../../core/types.ts';
import { ICMP_SMALL_BYTES, TCP_SYN_BYTES, planJobs } from './peer.ts';

const peer = (node: string): Peer => ({
  id: `${node}/pod`,
  node,
  network: 'pod',
  zone: '',
  address: '10.0.0.1',
  stampPort: 1,
  tcpPort: 2,
  httpPort: 3,
});

const sizes = { mtu: true, mtuBytes: 1500, udpSmallBytes: 72 };

test('every kind that runs: udp and icmp small and mtu, tcp small, in that order', (t) => {
  const jobs = planJobs([peer('a')], { kinds: new Set(['tcp', 'icmp', 'udp']), ...sizes });
  t.deepEqual(
    jobs.map((j) => [j.key, j.target.bytes]),
    [
      [pairKey('a/pod', 'udp', 'small'), 72],
      [pairKey('a/pod', 'udp', 'mtu'), 1500],
      [pairKey('a/pod', 'icmp', 'small'), ICMP_SMALL_BYTES],
      [pairKey('a/pod', 'icmp', 'mtu'), 1500],
      [pairKey('a/pod', 'tcp', 'small'), TCP_SYN_BYTES],
    ],
  );
});

test('no mtu jobs when mtu probing is off or the MTU is not above the small size', (t) => {
  const off = planJobs([peer('a')], { kinds: new Set(['udp', 'icmp']), ...sizes, mtu: false });
  t.deepEqual(
    off.map((j) => j.target.size),
    ['small', 'small'],
  );
  const tiny = planJobs([peer('a')], { kinds: new Set(['udp']), ...sizes, mtuBytes: 72 });
  t.deepEqual(
    tiny.map((j) => j.key),
    [pairKey('a/pod', 'udp', 'small')],
  );
});

test('a kind that does not run gets no jobs; jobs carry their peer', (t) => {
  const jobs = planJobs([peer('a'), peer('b')], { kinds: new Set(['tcp']), ...sizes });
  t.deepEqual(
    jobs.map((j) => [j.kind, j.target.peer.id]),
    [
      ['tcp', 'a/pod'],
      ['tcp', 'b/pod'],
    ],
  );
});
