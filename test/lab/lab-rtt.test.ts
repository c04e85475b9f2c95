// Lab: podmesh's RTT on the lab's pod-to-pod path (node-1's pod to node-2's pod, across the
// VXLAN overlay) next to iputils ping's, measured at the same time with bench/rtt-lab.ts, on
// kernel timestamps, with the like-for-like icmp numbers (ping's own send path, podmesh's socket
// timed both ways) checked for causality. The prober runs without CAP_NET_RAW in a pod namespace
// whose net.ipv4.ping_group_range allows unprivileged ICMP, as containerd 2.x sets up a Pod, so
// icmp must come through a ping socket. Asserts correctness only (which timestamps and sockets
// are used, every RTT positive, medians in a sane range of ping's), never speed: the numbers are
// printed for reading, and docs/timestamps.md has the measured ones. Needs root, iproute2,
// nftables and iputils-ping; without root the test is skipped (under CI=true it fails).

import { execFileSync } from 'node:child_process';
import test from 'ava';
import { formatReport, measureRttPath, type RttLabReport } from '../../bench/rtt-lab.ts';
import { labSuite, sharedLab } from './gate.ts';
import { sysBin } from './lab.ts';

const NEEDS = 'the RTT lab needs root and iproute2, nftables, iputils-ping, setpriv (util-linux)';

labSuite('RTT lab', ['ip', 'nft', 'bridge', 'ping', 'setpriv'], NEEDS, registerRttLabTests);

/** A podmesh median may sit below ping's (its T1 is the kernel's, ping's a user-space reading
 * before the send), but not by more than ping's own send path; 50 µs is generous for that. */
const BELOW_PING_TOLERANCE_S = 50e-6;
/** Far above any healthy lab round trip, far below a mis-measured one (a timer, a timeout). */
const SANE_ABOVE_PING_S = 1e-3;

function registerRttLabTests(): void {
  const L = sharedLab(
    { nodes: 2, podsPerNode: 1, agents: false, dns: false },
    (lab) =>
      `pod ${lab.nodes[0]!.pods[0]!.ip} on ${lab.nodes[0]!.name} -> pod ${lab.nodes[1]!.pods[0]!.ip} on ${lab.nodes[1]!.name}`,
  );

  test.serial('podmesh RTT next to ping on a pod-to-pod path, kernel timestamps', async (t) => {
    t.timeout(180_000);
    const lab = L();
    const from = lab.nodes[0]!.pods[0]!;
    const to = lab.nodes[1]!.pods[0]!;
    execFileSync(sysBin('ip')!, [
      'netns',
      'exec',
      from.ns,
      '/bin/sh',
      '-c',
      'echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range',
    ]);
    const report: RttLabReport = await measureRttPath(
      {
        proberNs: from.ns,
        proberAddress: from.ip,
        reflectorNs: to.ns,
        reflectorAddress: to.ip,
      },
      {
        phases: ['kernel'],
        conditions: ['idle', 'busy-reflector'],
        rounds: 2,
        windowMs: 2000,
        settleMs: 300,
        intervalMs: 10,
        dropNetRaw: true,
      },
    );
    t.log(formatReport(report));

    const phase = report.phases[0]!;
    t.like(phase.sources, {
      udp: { source: 'kernel' },
      icmp: { source: 'kernel', mode: 'ping' },
    });
    t.is(phase.reflector.source, 'kernel');
    t.deepEqual(phase.kinds.sort(), ['icmp', 'udp']);
    t.is(phase.where['icmp'], 'worker thread');

    // The like-for-like icmp numbers (bench/rtt-send-path.ts, rtt-far-end.ts): a kernel transmit
    // time never precedes the clock read just before the send, and with one clock at both ends
    // no echo request reaches the far end before the time its sender wrote into it.
    t.is(phase.icmpDetailNote, undefined, phase.icmpDetailNote);
    const pingPath = phase.pingSendPath;
    t.not(pingPath, null);
    t.true(pingPath!.toFarEnd.n > 0 && pingPath!.hop.n > 0);
    t.true(pingPath!.toFarEndMin > 0, `ping T1 to far end min ${pingPath!.toFarEndMin} s`);
    // ping's T1 is whole µs (truncated, so earlier); the prober's is in ns.
    t.true(pingPath!.hopMin > -1e-6, `hop min ${pingPath!.hopMin} s`);
    for (const row of report.rows) {
      const d = row.icmpDetail;
      t.not(d, null, `${row.condition}: no send-path samples`);
      t.true(d!.userRtt.n > 0, `${row.condition}: send-path prober got no answers`);
      t.true(
        d!.sendPathMin >= 0,
        `${row.condition}: kernel T1 before user T1 by ${-d!.sendPathMin} s`,
      );
      t.true(d!.kernelRtt.p50 > 0);
    }

    for (const row of report.rows) {
      const what = `${row.condition}`;
      t.true(row.ping.n > 0, `${what}: ping got no answers`);
      for (const kind of ['udp', 'icmp'] as const) {
        const s = row[kind];
        const min = kind === 'udp' ? row.udpMin : row.icmpMin;
        t.true(s.n > 0, `${what} ${kind}: no answers`);
        t.true(s.lost <= s.n / 100, `${what} ${kind}: ${s.lost} lost of ${s.n + s.lost}`);
        t.true(min > 0, `${what} ${kind}: min RTT ${min}`);
        t.true(
          s.p50 >= row.ping.min - BELOW_PING_TOLERANCE_S,
          `${what} ${kind}: median ${s.p50} s below ping's minimum ${row.ping.min} s`,
        );
        // With kernel T2/T3 the busy reflector's wait is dwell, subtracted: the median stays
        // near ping's rather than at the load's milliseconds.
        t.true(
          s.p50 <= row.ping.p50 + SANE_ABOVE_PING_S,
          `${what} ${kind}: median ${s.p50} s vs ping's ${row.ping.p50} s`,
        );
      }
    }
  });
}
