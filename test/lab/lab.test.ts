// End-to-end: real podmesh agents in the namespace lab (3 nodes, VXLAN overlay) and real faults
// (nftables loss, link down, VXLAN port blocked, MTU black hole, TCP port blocked); each fault
// must show on the pairs it affects, and only those, within 5 probe intervals, and clear after
// its undo. Needs root, iproute2, nftables, iputils-ping, dnsmasq and conntrack (the lab's
// cluster DNS, whose checks the agents run alongside); without root the tests are skipped
// (in CI, CI=true, they fail instead). One lab for the whole file: tests run serially.
//
// Counts come from the cumulative counters in /metrics, read before and after: their
// differences cover exactly the probes completed in between, unlike the results API's window.

import test, { type ExecutionContext } from 'ava';
import { labSuite, sharedLab } from './gate.ts';
import { Lab, AGENT_PORTS, type Undo } from './lab.ts';
import {
  binomialInterval,
  cellOf,
  countsFromMetrics,
  diff,
  dnsDiff,
  dnsSnapshot,
  dnsTotal,
  key,
  nodeOf,
  parseKey,
  quantile,
  results,
  snapshot,
  total,
  type Series,
  type Snapshot,
} from './observe.ts';

/**
 * Probe interval and timeout of the lab's agents. 100 ms works on an idle machine; on a busy
 * shared one, agents starved of CPU for longer than the timeout count answered probes as lost
 * (see docs/lab.md), so the default leaves more room.
 */
const INTERVAL = Number(process.env['LAB_INTERVAL_MS'] ?? 250);
/**
 * Below the interval: an agent skips a probe whose predecessor to the same peer is still in
 * flight, so with timeout = interval an outage would halve the probe rate and slow detection.
 */
const TIMEOUT = Math.round(0.8 * INTERVAL);
const RTT_SECONDS = 20;
const DETECT_MS = 5 * INTERVAL;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const NEEDS =
  'the network lab needs root (network namespaces, nftables, raw ICMP) and iproute2, nftables, iputils-ping, dnsmasq (dnsmasq-base), conntrack';

labSuite(
  'network lab',
  ['ip', 'nft', 'bridge', 'ping', 'dnsmasq', 'conntrack'],
  NEEDS,
  registerLabTests,
);

function registerLabTests(): void {
  const L = sharedLab(
    {
      nodes: 3,
      podsPerNode: 2,
      agentSettings: {
        probes: { intervalMs: INTERVAL, timeoutMs: TIMEOUT },
        // The RTT test reads quantiles from the results window: make it span the ping run.
        window: { seconds: RTT_SECONDS },
      },
    },
    (lab) => `${lab.agents.length} agents, probe interval ${INTERVAL} ms, timeout ${TIMEOUT} ms`,
  );

  /**
   * Each agent's event-loop delay p99 (since the last scrape): when an agent is starved of CPU
   * beyond the probe timeout, answered probes count as lost; this tells that apart from the
   * network losing them.
   */
  async function selfHealth(lab: Lab): Promise<string> {
    const lines = await Promise.all(
      lab.agents.map(async (a) => {
        const text = await lab.get(a, '/metrics');
        const delay = [
          ...text.matchAll(
            /podmesh_event_loop_delay_seconds\{[^}]*thread="(\w+)",quantile="0.99"\} (\S+)/g,
          ),
        ]
          .map((m) => `${m[1]} p99 ${(Number(m[2]) * 1000).toFixed(0)} ms`)
          .join(', ');
        return `${a.id}: event-loop delay ${delay}`;
      }),
    );
    return lines.join('\n');
  }

  const series = (s: Snapshot): Series[] => [...s.keys()].map(parseKey);
  const pairOf = (s: Series): string => `${s.src}>${s.dst}`;
  const crossNode = (s: Series): boolean => nodeOf(s.src) !== nodeOf(s.dst);
  const touches = (s: Series, node: string): boolean =>
    nodeOf(s.src) === node || nodeOf(s.dst) === node;
  const between = (a: string, b: string) => (s: Series) =>
    (nodeOf(s.src) === a && nodeOf(s.dst) === b) || (nodeOf(s.src) === b && nodeOf(s.dst) === a);
  const ratio = (lost: number, sent: number): number => (sent === 0 ? 0 : lost / sent);

  interface FaultCase {
    readonly inject: () => Promise<Undo>;
    /** Series the fault must break. */
    readonly affected: (s: Series) => boolean;
    /** How affected series are grouped when judging "crossed" (default: each series alone). */
    readonly group?: (s: Series) => string;
    /** Loss ratio every affected group must reach while the fault holds. */
    readonly minLoss?: number;
    /** Agents to read from inside their namespace (cut off from the test process). */
    readonly netns?: readonly string[];
    /** Extra checks while the fault is active; gets the counts over the hold period. */
    readonly during?: (held: Snapshot) => Promise<void>;
  }

  /**
   * Injects a fault and checks: every affected group crosses (≥ 2 probes lost since the
   * injection) within 5 probe intervals; while held, affected groups lose at least minLoss and
   * no other series comes near breaking; after the undo every affected series answers again.
   */
  async function faultCase(t: ExecutionContext, c: FaultCase): Promise<void> {
    const lab = L();
    const via = new Set(c.netns ?? []);
    const snap = (agents = lab.agents): Promise<Snapshot> => snapshot(lab, agents, via);
    const group = c.group ?? key;
    const base = await snap();
    const affected = series(base).filter(c.affected);
    t.true(affected.length > 0, 'the fault affects some series');
    const groups = new Map<string, Series[]>();
    for (const s of affected) groups.set(group(s), [...(groups.get(group(s)) ?? []), s]);
    const sources = lab.agents.filter((a) => affected.some((s) => s.src === a.id));

    // 1. Detection: each source of affected series is polled on its own, and a group counts
    //    as seen when the response showing it crossed has arrived (render time ≤ that).
    const t0 = performance.now();
    const undo = await c.inject();
    const seenAt = new Map<string, number>();
    await Promise.all(
      sources.map(async (a) => {
        const mine = [...groups].filter(([, members]) => members[0]!.src === a.id);
        while (
          mine.some(([g]) => !seenAt.has(g)) &&
          performance.now() - t0 < DETECT_MS * 4 + 2000
        ) {
          const text = await lab.get(a, '/metrics', via.has(a.id) ? 'netns' : 'http');
          const at = performance.now() - t0;
          const d = diff(countsFromMetrics(a.id, text), base);
          for (const [g, members] of mine) {
            if (seenAt.has(g)) continue;
            const lost = members.reduce((n, s) => n + (d.get(key(s))?.lost ?? 0), 0);
            if (lost >= 2) seenAt.set(g, at);
          }
          await sleep(10);
        }
      }),
    );
    const slowest = Math.max(...seenAt.values());
    const missed = [...groups.keys()].filter((g) => !seenAt.has(g));
    t.deepEqual(missed, [], 'every affected group crossed its threshold');
    t.log(
      `detected ${groups.size} affected groups (${affected.length} series) in ≤ ${slowest.toFixed(0)} ms (budget ${DETECT_MS} ms = 5 intervals)`,
    );
    t.true(slowest <= DETECT_MS, `slowest detection ${slowest.toFixed(0)} ms > ${DETECT_MS} ms`);

    // 2. Hold: affected groups keep losing, every other series stays healthy.
    const h0 = await snap();
    await sleep(10 * INTERVAL);
    const held = diff(await snap(), h0);
    for (const [g, members] of groups) {
      const tot = total(held, (s) => members.some((m) => key(m) === key(s)));
      t.true(
        ratio(tot.lost, tot.sent) >= (c.minLoss ?? 0.9) && tot.sent > 0,
        `${g}: ${tot.lost}/${tot.sent} lost while the fault held`,
      );
    }
    const others = [...held.entries()].filter(([k]) => !c.affected(parseKey(k)));
    t.true(others.length > 0);
    const bad = others.filter(([, v]) => ratio(v.lost, v.sent) >= 0.2);
    t.deepEqual(
      bad.map(([k, v]) => `${k}: ${v.lost}/${v.sent}`),
      [],
      'unaffected series stay healthy',
    );
    const otherTot = total(new Map(others));
    t.true(
      ratio(otherTot.lost, otherTot.sent) < 0.01,
      `unaffected series lost ${otherTot.lost}/${otherTot.sent}`,
    );
    if (c.during !== undefined) await c.during(held);

    // 3. Recovery: after the undo, each affected series answers 5 probes in a row.
    const u0 = performance.now();
    await undo();
    let last = await snap(sources);
    const streak = new Map<string, number>();
    const recoveredAt = new Map<string, number>();
    while (recoveredAt.size < affected.length && performance.now() - u0 < 20 * INTERVAL + 5000) {
      await sleep(INTERVAL / 2);
      const now = await snap(sources);
      const d = diff(now, last);
      last = now;
      for (const s of affected) {
        const k = key(s);
        if (recoveredAt.has(k)) continue;
        const v = d.get(k);
        if (v === undefined) continue;
        const run = v.lost > 0 ? 0 : (streak.get(k) ?? 0) + v.sent;
        streak.set(k, run);
        if (run >= 5) recoveredAt.set(k, performance.now() - u0);
      }
    }
    const stuck = affected.map(key).filter((k) => !recoveredAt.has(k));
    t.deepEqual(stuck, [], 'every affected series recovers after the undo');
    t.log(`recovered in ≤ ${Math.max(...recoveredAt.values()).toFixed(0)} ms after the undo`);
  }

  test.serial(
    'healthy lab: every pair, pod and host path, under 0.5% loss over ≥ 200 probes',
    async (t) => {
      t.timeout(200 * INTERVAL * 2 + 60_000);
      const lab = L();
      // Agents just started (module loading, JIT, first peer list): judge them from 5 s on.
      await sleep(5000);
      const s0 = await snapshot(lab);
      const dns0 = await dnsSnapshot(lab);
      let d: Snapshot = new Map();
      const deadline = Date.now() + 200 * INTERVAL * 1.6 + 10_000;
      for (;;) {
        await sleep(Math.max(1000, 20 * INTERVAL));
        d = diff(await snapshot(lab), s0);
        const fewest = Math.min(...[...d.values()].map((v) => v.sent));
        if (fewest >= 200 || Date.now() > deadline) break;
      }
      const all = series(d);
      const pairs = [...new Set(all.map(pairOf))];
      const n = lab.agents.length;
      t.is(pairs.length, n * (n - 1), 'every agent probes every other agent');
      for (const path of ['pod-to-pod', 'pod-to-host', 'host-to-pod', 'host-to-host'])
        t.true(
          pairs.some((p) => {
            const [src, dst] = p.split('>');
            return `${src!.split('/')[1]}-to-${dst!.split('/')[1]}` === path;
          }),
          path,
        );
      const few = [...d].filter(([, v]) => v.sent < 200).map(([k, v]) => `${k}: ${v.sent}`);
      t.deepEqual(few, [], 'every series has at least 200 probes');
      const lossy = pairs
        .map((p) => [p, total(d, (s) => pairOf(s) === p)] as const)
        .filter(([, v]) => ratio(v.lost, v.sent) >= 0.005)
        .map(([p, v]) => `${p}: ${v.lost}/${v.sent}`);
      if (lossy.length > 0) t.log(`agents' own scheduling health:\n${await selfHealth(lab)}`);
      t.deepEqual(lossy, [], 'no pair at or over 0.5% loss');
      const tot = total(d);
      const worst = [...d].sort((a, b) => b[1].lost - a[1].lost)[0];
      t.log(
        `${pairs.length} pairs, ${all.length} series, ${tot.sent} probes, ${tot.lost} lost; worst series ${worst?.[0]}: ${worst?.[1].lost}/${worst?.[1].sent}`,
      );
      // The agents' DNS checks (VIP and both dnsmasq replicas; lab-dns.test.ts breaks them)
      // run alongside and all answer.
      const dns = dnsTotal(dnsDiff(await dnsSnapshot(lab), dns0));
      t.true(dns.sent > 0, 'DNS checks ran');
      t.is(dns.results['noerror'], dns.sent, `DNS results ${JSON.stringify(dns.results)}`);
      t.log(`DNS: ${dns.sent} lookups, all noerror`);
    },
  );

  test.serial('RTT: podmesh next to iputils ping on the same path, same run', async (t) => {
    t.timeout(60_000);
    const lab = L();
    const src = lab.agent('node-1/pod');
    const dst = lab.agent('node-2/pod');
    // Both measured over the same seconds: the ping run is as long as the results window.
    const ping = await lab.ping(src.id, dst.address, {
      count: 200,
      intervalS: RTT_SECONDS / 200,
      waitS: 1,
    });
    const row = await results(lab, src);
    t.is(ping.received, ping.sent, ping.output.slice(-300));
    const pingMs = { p50: quantile(ping.rttsMs, 0.5), p99: quantile(ping.rttsMs, 0.99) };
    const line = [`path ${src.id} -> ${dst.id} (pod-to-pod over VXLAN):`];
    line.push(
      `ping p50 ${pingMs.p50.toFixed(3)} ms p99 ${pingMs.p99.toFixed(3)} ms (${ping.received} replies)`,
    );
    for (const protocol of ['icmp', 'udp']) {
      const c = cellOf(row, dst.id, protocol);
      t.truthy(c?.rttSeconds, `podmesh ${protocol} RTT`);
      const r = c!.rttSeconds!;
      t.true(r.p50 > 0 && r.p50 <= r.p99 && r.p99 < 0.1, `${protocol} RTT is plausible`);
      line.push(
        `podmesh ${protocol} p50 ${(r.p50 * 1000).toFixed(3)} ms p99 ${(r.p99 * 1000).toFixed(3)} ms (${c!.sent} probes)`,
      );
    }
    t.log(line.join('\n  '));
  });

  test.serial(
    'loss between two nodes: their pairs, and only theirs, cross within 5 intervals',
    async (t) => {
      t.timeout(60_000);
      await faultCase(t, {
        inject: () => L().loss('node-1', 'node-2', 50),
        affected: between('node-1', 'node-2'),
        group: pairOf,
        minLoss: 0.4, // 50% each way: 75% of round trips
      });
    },
  );

  async function estimate(
    t: ExecutionContext,
    from: string,
    to: string,
    percent: number,
    seconds: number,
  ): Promise<void> {
    const lab = L();
    const p = percent / 100;
    const undo = await lab.loss(from, to, percent, { oneWay: true });
    // Probes in flight at the injection may or may not have met it: start counting after them.
    await sleep(2 * INTERVAL);
    // Every probe between the two nodes crosses the lossy direction exactly once (request or
    // answer, host or VXLAN-encapsulated pod traffic), so each is lost with probability p.
    // A correct estimate falls outside the 95% interval 5% of the time: one miss earns a second,
    // independent measurement (a correct one fails both 0.25% of the time, a biased one nearly
    // always).
    let d: Snapshot = new Map();
    for (let attempt = 1; attempt <= 2; attempt++) {
      const s0 = await snapshot(lab);
      await sleep(seconds * 1000);
      d = diff(await snapshot(lab), s0);
      const tot = total(d, between(from, to));
      const [lo, hi] = binomialInterval(tot.sent, p);
      const inside = tot.lost >= lo && tot.lost <= hi;
      t.log(
        `${percent}% ${from} -> ${to}: podmesh ${tot.lost}/${tot.sent} = ${(100 * ratio(tot.lost, tot.sent)).toFixed(2)}%, 95% interval [${lo}, ${hi}] (${((100 * lo) / tot.sent).toFixed(2)}%–${((100 * hi) / tot.sent).toFixed(2)}%)${inside ? '' : ' MISS'}`,
      );
      t.true(tot.sent >= 1000, `enough probes (${tot.sent})`);
      if (inside) break;
      t.true(attempt < 2, `estimate outside the 95% binomial interval twice`);
    }

    // STAMP splits the losses by direction: forward on the side sending into the lossy
    // direction, reverse on the side whose answers travel it.
    const udp = (a: string, b: string) => (s: Series) =>
      s.protocol === 'udp' && nodeOf(s.src) === a && nodeOf(s.dst) === b;
    const fwd = total(d, udp(from, to));
    const rev = total(d, udp(to, from));
    t.log(
      `STAMP ${from} -> ${to}: forward ${fwd.forwardLost}, reverse ${fwd.reverseLost} of ${fwd.sent}; ${to} -> ${from}: forward ${rev.forwardLost}, reverse ${rev.reverseLost} of ${rev.sent}`,
    );
    t.true(fwd.forwardLost >= 0.5 * p * fwd.sent, `${from} -> ${to} shows forward loss`);
    t.true(fwd.reverseLost <= 0.01 * fwd.sent + 1, `${from} -> ${to} shows no reverse loss`);
    t.true(rev.reverseLost >= 0.5 * p * rev.sent, `${to} -> ${from} shows reverse loss`);
    t.true(rev.forwardLost <= 0.01 * rev.sent + 1, `${to} -> ${from} shows no forward loss`);

    const rest = total(d, (s) => !between(from, to)(s));
    t.true(ratio(rest.lost, rest.sent) < 0.01, `other pairs lost ${rest.lost}/${rest.sent}`);
    await undo();
  }

  test.serial(
    '20% one-way loss: estimated within the 95% binomial interval, seen as forward/reverse',
    async (t) => {
      t.timeout(120_000);
      await estimate(t, 'node-1', 'node-2', 20, Math.max(10, (2000 / 160) * (INTERVAL / 250)));
    },
  );

  test.serial(
    '5% one-way loss: estimated within the 95% binomial interval, seen as forward/reverse',
    async (t) => {
      t.timeout(120_000);
      await estimate(t, 'node-2', 'node-3', 5, Math.max(12, (3000 / 160) * (INTERVAL / 250)));
    },
  );

  test.serial(
    'partition of a node: all its cross-node pairs break, its node-local pair does not',
    async (t) => {
      t.timeout(60_000);
      await faultCase(t, {
        inject: () => L().partition('node-3'),
        affected: (s) => crossNode(s) && touches(s, 'node-3'),
        netns: ['node-3/host', 'node-3/pod'],
      });
    },
  );

  test.serial(
    'VXLAN port blocked on a node: pod traffic to/from it breaks, host traffic does not',
    async (t) => {
      t.timeout(60_000);
      // flannel masquerades pod-to-host traffic to the node IP (underlay both ways); traffic to a
      // pod on another node is VXLAN both ways. So the overlay carries exactly the cross-node
      // series whose target is a pod agent.
      await faultCase(t, {
        inject: () => L().blockVxlan('node-2'),
        affected: (s) => crossNode(s) && touches(s, 'node-2') && s.dst.endsWith('/pod'),
      });
    },
  );

  test.serial(
    'MTU black hole: small probes fine, MTU-sized probes lost across nodes',
    async (t) => {
      t.timeout(60_000);
      const lab = L();
      const [n1, n2] = [lab.node('node-1'), lab.node('node-2')];
      const pod2 = lab.agent('node-2/pod').address;
      // Healthy first: a full-size DF packet crosses the underlay.
      const before = await lab.ping('node-1', n2.ip, { size: 1422, dontFragment: true, count: 2 });
      t.is(before.received, 2, `1450-byte DF ping before the fault:\n${before.output}`);
      await faultCase(t, {
        inject: () => lab.mtuBlackHole(1400),
        affected: (s) => crossNode(s) && s.size === 'mtu',
        during: async () => {
          const cases = [
            {
              from: n1.name,
              to: n2.ip,
              size: 1300,
              passes: true,
              what: 'node to node, 1328 bytes',
            },
            {
              from: n1.name,
              to: n2.ip,
              size: 1422,
              passes: false,
              what: 'node to node, 1450 bytes',
            },
            {
              from: 'node-1/pod',
              to: pod2,
              size: 1300,
              passes: true,
              what: 'pod to pod, 1328 + 50',
            },
            {
              from: 'node-1/pod',
              to: pod2,
              size: 1400,
              passes: false,
              what: 'pod to pod, 1428 + 50',
            },
          ];
          for (const c of cases) {
            const r = await lab.ping(c.from, c.to, { size: c.size, dontFragment: true, count: 3 });
            t.is(r.received, c.passes ? 3 : 0, `ping -M do -s ${c.size} (${c.what}):\n${r.output}`);
          }
        },
      });
    },
  );

  // Small and mtu probes to one peer are separate STAMP sessions (SizedUdpProbe), so the
  // forward losses of an MTU black hole stay on the mtu series. The split is known only once
  // an answer arrives after the gap (the reflector's sequence number tells how many it never
  // saw), so the window runs from before the fault to a few intervals after the undo.
  test.serial('MTU black hole: STAMP forward loss stays on the mtu series', async (t) => {
    t.timeout(60_000);
    const lab = L();
    const s0 = await snapshot(lab);
    const undo = await lab.mtuBlackHole(1400);
    await sleep(12 * INTERVAL);
    await undo();
    await sleep(6 * INTERVAL);
    const d = diff(await snapshot(lab), s0);
    const udp = (size: string) => (s: Series) =>
      s.protocol === 'udp' && s.size === size && crossNode(s);
    const small = total(d, udp('small'));
    const mtu = total(d, udp('mtu'));
    t.log(
      `cross-node udp small: lost ${small.lost}/${small.sent}, forward ${small.forwardLost}; mtu: lost ${mtu.lost}/${mtu.sent}, forward ${mtu.forwardLost}`,
    );
    t.is(small.lost, 0, 'small probes are not lost');
    t.is(small.forwardLost, 0, 'no forward loss reported for small probes');
    t.true(mtu.forwardLost >= 0.9 * mtu.lost, 'the mtu probes carry their forward loss');
  });

  for (const mode of ['drop', 'reject'] as const) {
    const reason = mode === 'drop' ? 'timeout' : 'refused';
    test.serial(
      `TCP port blocked on a pod (${mode.toUpperCase()}): its tcp probes fail as ${reason}`,
      async (t) => {
        t.timeout(60_000);
        const lab = L();
        const target = lab.agent('node-2/pod');
        const affected = (s: Series): boolean => s.dst === target.id && s.protocol === 'tcp';
        await faultCase(t, {
          inject: () => lab.blockTcpPort(target.id, AGENT_PORTS.tcp, mode),
          affected,
          during: async (held) => {
            const f = total(held, affected).failures;
            t.true((f[reason] ?? 0) > 0, `failures by reason: ${JSON.stringify(f)}`);
            const other = reason === 'timeout' ? 'refused' : 'timeout';
            t.is(f[other] ?? 0, 0, `no ${other}: ${JSON.stringify(f)}`);
            for (const a of lab.agents.filter((x) => x !== target)) {
              const c = cellOf(await results(lab, a), target.id, 'tcp');
              t.is(c?.lastFailure, reason, `${a.id} -> ${target.id} tcp lastFailure`);
            }
          },
        });
      },
    );
  }
}
