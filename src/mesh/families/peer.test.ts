// The peer family's plan: the sizes each kind sends come from the probe kind registry, in
// registry order, and a kind that does not run gets no jobs.

import test from 'ava';
import { pairKey } from '../../core/pair-key.ts';
import type { Peer } from '../../core/types.ts';
import type { ProbeKind, ProbeTarget } from '../../core/types.ts';
import type { Probe } from '../../probes/probe.ts';
import {
  ICMP_SMALL_BYTES,
  TCP_SYN_BYTES,
  laneKey,
  planJobs,
  planLaneJobs,
  probeExecutor,
} from './peer.ts';

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

test('rotating lanes: one job per lane and kind, small size only, keyed by lane', (t) => {
  const rotation = { lanes: [[peer('a'), peer('b')], [peer('c')]], periodSlots: 2 };
  const jobs = planLaneJobs(rotation, 1000, { kinds: new Set(['udp', 'tcp']), ...sizes });
  t.deepEqual(
    jobs.map((j) => [j.key, j.target.size, j.target.bytes, j.lane?.peers.map((p) => p.node)]),
    [
      [laneKey(0, 'udp'), 'small', 72, ['a', 'b']],
      [laneKey(0, 'tcp'), 'small', TCP_SYN_BYTES, ['a', 'b']],
      [laneKey(1, 'udp'), 'small', 72, ['c']],
      [laneKey(1, 'tcp'), 'small', TCP_SYN_BYTES, ['c']],
    ],
  );
});

test('a lane job probes the peer its schedule names for the slot, walking the lane', async (t) => {
  const probed: string[] = [];
  const probe: Probe = {
    kind: 'udp',
    timestamps: { source: 'userspace', detail: '' },
    run: (target: ProbeTarget) => {
      probed.push(target.peer.node);
      return Promise.resolve({
        ok: true,
        peerId: target.peer.id,
        kind: 'udp',
        size: 'small',
        sentAtMs: 0,
        rttSeconds: 0.001,
      });
    },
    forget: () => undefined,
    close: () => Promise.resolve(),
  };
  let now = 10_000; // slot 10 of 1 s slots
  const exec = probeExecutor(new Map([['udp', probe]]), { nowMs: () => now });
  const lane = [peer('a'), peer('b'), peer('c')];
  const [job] = planLaneJobs({ lanes: [lane], periodSlots: 3 }, 1000, {
    kinds: new Set(['udp']),
    ...sizes,
  });
  // Slot 10 is entry 10 mod 3 = 1; then one run a slot; two runs in one slot walk on.
  for (const at of [10_100, 11_050, 12_900, 13_000, 13_500]) {
    now = at;
    const r = await exec.execute(job!, 1000);
    t.is(r.peerId, probed.at(-1) + '/pod');
  }
  t.deepEqual(probed, ['b', 'c', 'a', 'b', 'c']);
  // A run cut off at its deadline is the failure of the peer it was visiting.
  t.is(exec.overran(job!, now, 'cut off').peerId, 'c/pod');
  // A job that is not a lane probes its own peer whatever the clock.
  const [plain] = planJobs([peer('z')], { kinds: new Set(['udp']), ...sizes });
  await exec.execute(plain!, 1000);
  t.is(probed.at(-1), 'z');
});

test('a lane whose peers changed restarts its loop; the same lane does not', (t) => {
  const exec = probeExecutor(new Map());
  const o = { kinds: new Set<ProbeKind>(['udp']), ...sizes };
  const [a] = planLaneJobs({ lanes: [[peer('a'), peer('b')]], periodSlots: 2 }, 1000, o);
  const [same] = planLaneJobs({ lanes: [[peer('a'), peer('b')]], periodSlots: 2 }, 1000, o);
  const [other] = planLaneJobs({ lanes: [[peer('a'), peer('c')]], periodSlots: 2 }, 1000, o);
  t.false(exec.changed!(a!, same!));
  t.true(exec.changed!(a!, other!));
});
