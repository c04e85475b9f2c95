// Lab: "fault next door" (issue 14). One node is unreachable, answering everything sent to it
// (its own address and its pods) with ICMP host-unreachable, while the other nodes are healthy.
// ICMP errors about the down node keep reaching every prober's sockets; the healthy pairs must
// show no loss at all, on every probe kind and size, over at least 500 probes each. Pod agents
// use unprivileged ICMP ping sockets (their namespaces allow them, as containerd 2.x sets up a
// Pod), host agents raw ICMP sockets, so both of the timestamping addon's ICMP paths are under
// the errors. Needs root, iproute2 and nftables.

import test from 'ava';
import { labSuite } from './gate.ts';
import { Lab, allLabLeftovers, nftApply, nsExec, type LabNode } from './lab.ts';
import { diff, key, parseKey, snapshot, type Counts } from './observe.ts';

const NEEDS = 'the fault-next-door lab needs root and iproute2, nftables';
/** Probe interval: 500 probes of every series in under a minute. */
const INTERVAL_MS = 100;
const MIN_PROBES = 500;
/** Long enough for MIN_PROBES at INTERVAL_MS, with room for the scheduler's jitter. */
const MEASURE_MS = 58_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The node answers everything from the other nodes with ICMP host-unreachable, as a router does
 * for a host that is gone: its host agent's address in `input`, its pods (behind the overlay,
 * decapsulated first) in `forward`. ICMP rate limits are off in its namespace, so the errors
 * flow at the probes' own rate. Returns the undo.
 */
async function unreachableWithIcmpErrors(lab: Lab, down: LabNode): Promise<() => Promise<void>> {
  const others = lab.nodes.filter((n) => n !== down).map((n) => n.ip);
  const table = 'pmlab_next_door';
  await nsExec(down.ns, 'sysctl', ['-q', '-w', 'net.ipv4.icmp_ratelimit=0']);
  await nsExec(down.ns, 'sysctl', ['-q', '-w', 'net.ipv4.icmp_msgs_per_sec=100000']).catch(
    () => undefined,
  );
  await nftApply(
    down.ns,
    `table inet ${table} {
  chain input {
    type filter hook input priority -10; policy accept;
    udp dport ${lab.vxlanPort} accept
    ip saddr { ${others.join(', ')} } reject with icmp type host-unreachable
  }
  chain forward {
    type filter hook forward priority -10; policy accept;
    ip daddr ${down.podSubnet} ip saddr != ${down.podSubnet} reject with icmp type host-unreachable
  }
}
`,
  );
  return () => nftApply(down.ns, `delete table inet ${table}\n`).then(() => undefined);
}

const failuresOf = (c: Counts): number => Object.values(c.failures).reduce((a, b) => a + b, 0);

labSuite('fault next door lab', ['ip', 'nft', 'bridge', 'sysctl'], NEEDS, () => {
  let lab: Lab | undefined;
  const L = (): Lab => lab!;

  test.before(async (t) => {
    t.timeout(180_000);
    lab = await Lab.up({
      nodes: 3,
      podsPerNode: 1,
      agents: false,
      dns: false,
      agentSettings: { probes: { intervalMs: INTERVAL_MS, timeoutMs: INTERVAL_MS } },
    });
    // Unprivileged ICMP in the pod namespaces: their agents use ping sockets.
    for (const n of lab.nodes)
      await nsExec(n.pods[0]!.ns, 'sysctl', ['-q', '-w', 'net.ipv4.ping_group_range=0 2147483647']);
    await lab.startAgents();
    t.log(`lab ${lab.prefix}: ${lab.agents.length} agents, probes every ${INTERVAL_MS} ms`);
  });

  test.after.always('nothing is left behind', async (t) => {
    if (lab === undefined) return;
    const prefix = lab.prefix;
    await lab.down();
    t.deepEqual(
      allLabLeftovers().filter((x) => x.includes(prefix)),
      [],
    );
  });

  test.serial(
    'one node unreachable with ICMP errors flowing: every healthy pair loses nothing, on every probe kind',
    async (t) => {
      t.timeout(240_000);
      const down = L().node('node-3');
      const undo = await unreachableWithIcmpErrors(L(), down);
      t.teardown(undo);
      const healthy = L().agents.filter((a) => a.node !== down);
      // Which ICMP socket each agent got: ping sockets on pods, raw ones on hosts.
      for (const a of healthy) {
        const row = JSON.parse(await L().get(a, '/api/v1/results')) as {
          probes?: { icmp?: { detail?: string } };
        };
        const detail = row.probes?.icmp?.detail ?? '?';
        t.log(`${a.id}: icmp ${detail}`);
        t.regex(detail, a.network === 'pod' ? /ping socket/ : /raw ICMP socket/);
      }
      // Let the probes in flight when the fault began finish before counting.
      await sleep(2000);
      const before = await snapshot(L(), healthy);
      await sleep(MEASURE_MS);
      const after = await snapshot(L(), healthy);
      const d = diff(after, before);

      const lossy: string[] = [];
      const short: string[] = [];
      const kinds = new Set<string>();
      let errorsSeen = 0;
      for (const [k, c] of d) {
        const s = parseKey(k);
        if (s.dst.startsWith(`${down.name}/`)) {
          // The down node's series fail, and ICMP errors name it.
          errorsSeen += c.failures['unreachable'] ?? 0;
          continue;
        }
        kinds.add(`${s.protocol}/${s.size}`);
        if (c.sent < MIN_PROBES) short.push(`${k}: ${c.sent} sent`);
        if (c.lost !== 0 || failuresOf(c) !== 0)
          lossy.push(`${k}: ${c.lost} lost of ${c.sent} ${JSON.stringify(c.failures)}`);
      }
      const sent = [...d]
        .filter(([k]) => !parseKey(k).dst.startsWith(`${down.name}/`))
        .map(([, c]) => c.sent);
      t.log(
        `healthy series: ${sent.length}, ${Math.min(...sent)} to ${Math.max(...sent)} probes each; unreachable results towards ${down.name}: ${errorsSeen}`,
      );
      if (lossy.length > 0) t.log(`lossy:\n${lossy.join('\n')}`);
      // Every healthy ordered pair of agents, every kind and size.
      const pairs = healthy.length * (healthy.length - 1);
      t.deepEqual([...kinds].sort(), [
        'icmp/mtu',
        'icmp/small',
        'tcp/small',
        'udp/mtu',
        'udp/small',
      ]);
      const healthySeries = [...d.keys()].filter(
        (k) => !parseKey(k).dst.startsWith(`${down.name}/`),
      );
      t.is(healthySeries.length, pairs * kinds.size, healthySeries.join('\n'));
      t.deepEqual(short, [], 'every healthy series has its 500 probes');
      t.deepEqual(lossy, [], 'no healthy series lost anything');
      // The errors did flow: the down node's icmp and tcp series end as unreachable.
      t.true(errorsSeen > 0, 'no unreachable results towards the down node');
      for (const a of healthy)
        t.true(
          (d.get(key({ src: a.id, dst: `${down.name}/pod`, protocol: 'icmp', size: 'small' }))
            ?.failures['unreachable'] ?? 0) > 0,
          `${a.id}: no ICMP host-unreachable about ${down.name}/pod`,
        );
    },
  );
});
