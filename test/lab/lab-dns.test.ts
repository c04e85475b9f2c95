// End-to-end DNS checks in the namespace lab: real agents query two real dnsmasq replicas, each
// in its own pod namespace, directly and through a DNS Service VIP that nftables DNATs across
// them (kube-proxy's nftables mode). Each DNS fault (a replica down, all down, the VIP's DNAT
// removed, port 53 blocked from one node, a name removed) must show on the checks it affects,
// and only those, within 5 DNS intervals, and clear after its undo. Needs root, iproute2,
// nftables, dnsmasq and conntrack; skipped without root (failing instead in CI, CI=true).
//
// Counts are differences of the cumulative podmesh_dns_requests_total counters, read before
// and after, as test/lab/lab.test.ts does for probes. This file has its own lab (its own
// address block): the probe tests' lab is left to its timing-sensitive loss checks, and the
// agents here run DNS checks only.

import { readdirSync, readFileSync } from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { labSuite, sharedLab } from './gate.ts';
import { DNS_HEADLESS, DNS_SERVICE, type Undo } from './lab.ts';
import {
  DNS_ANSWERED,
  dnsDiff,
  dnsKey,
  dnsSnapshot,
  dnsTotal,
  nodeOf,
  parseDnsKey,
  results,
  type DnsCheck,
  type DnsTotals,
  type DnsSnapshot,
} from './observe.ts';

/** DNS check interval; each (server, query, transport) is looked up once per interval. */
const INTERVAL = Number(process.env['LAB_DNS_INTERVAL_MS'] ?? 500);
const TIMEOUT = Math.round(0.8 * INTERVAL);
const DETECT_MS = 5 * INTERVAL;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const NEEDS = 'the DNS lab needs root and iproute2, nftables, dnsmasq (dnsmasq-base), conntrack';

labSuite('DNS lab', ['ip', 'nft', 'bridge', 'dnsmasq', 'conntrack'], NEEDS, registerDnsLabTests);

function registerDnsLabTests(): void {
  const L = sharedLab(
    {
      nodes: 3,
      podsPerNode: 1,
      agentSettings: {
        // DNS checks only: the probe matrix is lab.test.ts' business.
        probes: { udp: false, tcp: false, icmp: false, mtu: false },
        dns: { intervalMs: INTERVAL, timeoutMs: TIMEOUT },
        window: { seconds: 10 },
      },
    },
    (lab) =>
      `${lab.agents.length} agents, DNS replicas ${lab.dnsReplicas.map((r) => `${r.name}@${r.node.name} ${r.ip}`).join(', ')} behind VIP ${lab.dnsVip}; DNS interval ${INTERVAL} ms, timeout ${TIMEOUT} ms`,
    (t, lab) => {
      // Every dnsmasq of this lab (and any child it forked for TCP) names the lab's hosts file.
      const mine = readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(lab.dir);
          } catch {
            return false;
          }
        });
      t.deepEqual(mine, [], 'dnsmasq processes left running');
    },
  );

  let vipUdpByAgent: ({ id: string } & DnsTotals)[] | undefined;
  const checks = (s: DnsSnapshot): DnsCheck[] => [...s.keys()].map(parseDnsKey);
  const bad = (c: Record<string, number> | undefined): number =>
    Object.entries(c ?? {})
      .filter(([r]) => !DNS_ANSWERED.includes(r))
      .reduce((n, [, v]) => n + v, 0);
  const count = (c: Record<string, number> | undefined, result: string): number => c?.[result] ?? 0;
  const sum = (c: Record<string, number> | undefined): number =>
    Object.values(c ?? {}).reduce((n, v) => n + v, 0);
  const fmt = (c: Record<string, number> | undefined): string => JSON.stringify(c ?? {});

  interface DnsFault {
    readonly inject: () => Promise<Undo>;
    /** Checks the fault must turn: failed lookups, or `nxdomain` answers. */
    readonly affected: (c: DnsCheck) => boolean;
    readonly expect: 'fail' | 'nxdomain';
    /** Checks judged on their own (a VIP in front of one dead replica of two): left out. */
    readonly mixed?: (c: DnsCheck) => boolean;
    readonly during?: (held: DnsSnapshot) => Promise<void> | void;
  }

  /**
   * Injects a fault and checks: each affected check shows 2 lookups of the expected kind
   * within 5 DNS intervals; while held, affected checks show nothing else and every other
   * check (except `mixed` ones) keeps answering `noerror`; after the undo every affected check
   * answers `noerror` 3 times in a row.
   */
  async function dnsFault(t: ExecutionContext, c: DnsFault): Promise<void> {
    const lab = L();
    const hit = (v: Record<string, number> | undefined): number =>
      c.expect === 'nxdomain' ? count(v, 'nxdomain') : bad(v);
    const base = await dnsSnapshot(lab);
    const affected = checks(base).filter(c.affected);
    t.true(affected.length > 0, 'the fault affects some checks');
    const sources = lab.agents.filter((a) => affected.some((x) => x.src === a.id));

    // 1. Detection, each source polled on its own.
    const t0 = performance.now();
    const undo = await c.inject();
    const seenAt = new Map<string, number>();
    await Promise.all(
      sources.map(async (a) => {
        const mine = affected.filter((x) => x.src === a.id).map(dnsKey);
        while (mine.some((k) => !seenAt.has(k)) && performance.now() - t0 < DETECT_MS * 4) {
          const d = dnsDiff(await dnsSnapshot(lab, [a]), base);
          const at = performance.now() - t0;
          for (const k of mine) if (!seenAt.has(k) && hit(d.get(k)) >= 2) seenAt.set(k, at);
          await sleep(20);
        }
      }),
    );
    const missed = affected.map(dnsKey).filter((k) => !seenAt.has(k));
    t.deepEqual(missed, [], 'every affected check showed the fault');
    const slowest = Math.max(...seenAt.values());
    t.log(
      `detected on ${affected.length} checks in ≤ ${slowest.toFixed(0)} ms (budget ${DETECT_MS} ms = 5 DNS intervals)`,
    );
    t.true(slowest <= DETECT_MS, `slowest detection ${slowest.toFixed(0)} ms > ${DETECT_MS} ms`);

    // 2. Hold.
    const h0 = await dnsSnapshot(lab);
    await sleep(8 * INTERVAL);
    const held = dnsDiff(await dnsSnapshot(lab), h0);
    const wrong = affected
      .map(dnsKey)
      .filter((k) => sum(held.get(k)) === 0 || hit(held.get(k)) !== sum(held.get(k)))
      .map((k) => `${k}: ${fmt(held.get(k))}`);
    t.deepEqual(wrong, [], `affected checks show only ${c.expect} while the fault holds`);
    const others = [...held].filter(([k]) => {
      const x = parseDnsKey(k);
      return !c.affected(x) && c.mixed?.(x) !== true;
    });
    t.true(others.length > 0, 'some checks are not affected');
    const unwell = others
      .filter(([, v]) => sum(v) === 0 || count(v, 'noerror') !== sum(v))
      .map(([k, v]) => `${k}: ${fmt(v)}`);
    t.deepEqual(unwell, [], 'unaffected checks keep answering noerror');
    await c.during?.(held);

    // 3. Recovery.
    const u0 = performance.now();
    await undo();
    let last = await dnsSnapshot(lab, sources);
    const streak = new Map<string, number>();
    const recovered = new Map<string, number>();
    while (recovered.size < affected.length && performance.now() - u0 < 20 * INTERVAL + 5000) {
      await sleep(INTERVAL / 2);
      const now = await dnsSnapshot(lab, sources);
      const d = dnsDiff(now, last);
      last = now;
      for (const x of affected) {
        const k = dnsKey(x);
        if (recovered.has(k)) continue;
        const v = d.get(k);
        const run = count(v, 'noerror') !== sum(v) ? 0 : (streak.get(k) ?? 0) + sum(v);
        streak.set(k, run);
        if (run >= 3) recovered.set(k, performance.now() - u0);
      }
    }
    const stuck = affected.map(dnsKey).filter((k) => !recovered.has(k));
    t.deepEqual(stuck, [], 'every affected check answers again after the undo');
    t.log(`recovered in ≤ ${Math.max(...recovered.values()).toFixed(0)} ms after the undo`);
  }

  test.serial('healthy lab: every DNS check, VIP and each replica, answers noerror', async (t) => {
    t.timeout(60_000);
    const lab = L();
    await sleep(2 * INTERVAL);
    const s0 = await dnsSnapshot(lab);
    await sleep(10 * INTERVAL);
    const d = dnsDiff(await dnsSnapshot(lab), s0);
    const all = checks(d);
    // Per agent: (VIP + 2 replicas) x (service udp, service tcp, short, pod, external).
    t.is(all.length, lab.agents.length * 3 * 5, all.map(dnsKey).join('\n'));
    const servers = new Set(all.map((c) => `${c.serverKind}:${c.server}`));
    t.deepEqual([...servers].sort(), ['replica:node-1', 'replica:node-2', 'service:service']);
    const few = [...d].filter(([, v]) => sum(v) < 6).map(([k, v]) => `${k}: ${fmt(v)}`);
    t.deepEqual(few, [], 'every check ran about once per interval');
    const notOk = [...d]
      .filter(([, v]) => count(v, 'noerror') !== sum(v))
      .map(([k, v]) => `${k}: ${fmt(v)}`);
    t.deepEqual(notOk, [], 'every lookup answered noerror');

    // The short name walks the pod's search list: default.svc first (NXDOMAIN), then svc.
    for (const a of lab.agents) {
      const row = await results(lab, a);
      t.is((row.probes['dns'] as { nameserver?: string } | undefined)?.nameserver, lab.dnsVip);
      const short = row.dns.find((x) => x.serverKind === 'service' && x.query === 'short');
      t.deepEqual(short?.candidates.slice(0, 2), [
        'kubernetes.default.default.svc.cluster.local.',
        'kubernetes.default.svc.cluster.local.',
      ]);
      t.is(short?.answeredBy, `${DNS_SERVICE}.`);
      t.is(short?.lastTried, 2);
    }
    const tot = dnsTotal(d);
    t.log(`${all.length} checks, ${tot.sent} lookups, ${tot.answered} answered`);
  });

  test.serial(
    'one replica down: its checks fail, the other replica is fine, the VIP mostly answers',
    async (t) => {
      t.timeout(90_000);
      const lab = L();
      await dnsFault(t, {
        inject: () => lab.dnsReplicasDown(['coredns-2']),
        affected: (c) => c.serverKind === 'replica' && c.server === 'node-2',
        expect: 'fail',
        mixed: (c) => c.serverKind === 'service',
        during: (held) => {
          const dead = dnsTotal(held, (c) => c.server === 'node-2');
          t.is(dead.answered, 0, 'the dead replica answers nothing');
          const vip = dnsTotal(held, (c) => c.serverKind === 'service');
          t.true(vip.answered > 0 && vip.answered < vip.sent, 'the VIP answers some lookups');
          // Over TCP every lookup is a new connection, so a new random DNAT pick: about half
          // land on the live replica (n ≈ 48: outside [0.25, 0.75] has p < 0.1%).
          const tcp = dnsTotal(held, (c) => c.serverKind === 'service' && c.transport === 'tcp');
          const tcpRatio = tcp.answered / tcp.sent;
          t.true(
            tcpRatio > 0.25 && tcpRatio < 0.75,
            `VIP over TCP answered ${tcp.answered}/${tcp.sent}`,
          );
          // Over UDP an agent sends every lookup from one socket: one conntrack flow to the
          // VIP, DNAT'ed once, so each agent sticks to one replica (see docs/lab.md).
          vipUdpByAgent = lab.agents.map((a) => {
            const v = dnsTotal(
              held,
              (c) => c.serverKind === 'service' && c.transport === 'udp' && c.src === a.id,
            );
            return { id: a.id, ...v };
          });
          t.log(
            `VIP answered ${vip.answered}/${vip.sent} ${JSON.stringify(vip.results)}; over TCP ${tcp.answered}/${tcp.sent}; over UDP per agent: ${vipUdpByAgent.map((v) => `${v.id} ${v.answered}/${v.sent}`).join(', ')}; dead replica ${dead.answered}/${dead.sent}`,
          );
        },
      });
    },
  );

  // A Pod's resolver (glibc, musl) sends each lookup from a fresh socket, i.e. a new source
  // port and conntrack flow, so its lookups to the VIP spread over the replicas; podmesh does
  // the same for VIP lookups (DnsQuery.freshSocket), so no agent is pinned to one replica.
  test.serial("an agent's UDP lookups to the VIP spread over the replicas like a Pod's", (t) => {
    t.truthy(vipUdpByAgent, 'the replica-down test ran');
    const stuck = (vipUdpByAgent ?? [])
      .filter((v) => v.answered === 0 || v.answered === v.sent)
      .map((v) => `${v.id} ${v.answered}/${v.sent}`);
    t.deepEqual(stuck, [], 'agents whose UDP VIP lookups all went to one replica');
  });

  test.serial('all replicas down: every check fails', async (t) => {
    t.timeout(90_000);
    const lab = L();
    // Unaffected checks must exist for dnsFault's bookkeeping: there are none, so judge here.
    const s0 = await dnsSnapshot(lab);
    const t0 = performance.now();
    const undo = await lab.dnsReplicasDown();
    let seen = Number.NaN;
    while (performance.now() - t0 < 4 * DETECT_MS) {
      const d = dnsDiff(await dnsSnapshot(lab), s0);
      if ([...d.values()].every((v) => bad(v) >= 2)) {
        seen = performance.now() - t0;
        break;
      }
      await sleep(20);
    }
    t.log(`every check failing twice after ${seen.toFixed(0)} ms (budget ${DETECT_MS} ms)`);
    t.true(seen <= DETECT_MS, `detection ${seen.toFixed(0)} ms`);
    const h0 = await dnsSnapshot(lab);
    await sleep(8 * INTERVAL);
    const held = dnsDiff(await dnsSnapshot(lab), h0);
    const tot = dnsTotal(held);
    t.true(tot.sent > 0);
    t.is(tot.answered, 0, JSON.stringify(tot.results));
    t.log(`while down: ${JSON.stringify(tot.results)}`);
    await undo();
    await sleep(3 * INTERVAL);
    const r0 = await dnsSnapshot(lab);
    await sleep(6 * INTERVAL);
    const after = dnsTotal(dnsDiff(await dnsSnapshot(lab), r0));
    t.true(after.sent > 0);
    t.is(after.results['noerror'], after.sent, JSON.stringify(after.results));
  });

  test.serial('VIP DNAT removed: replica checks fine, VIP checks fail', async (t) => {
    t.timeout(90_000);
    const lab = L();
    await dnsFault(t, {
      inject: () => lab.dnsServiceBroken(),
      affected: (c) => c.serverKind === 'service',
      expect: 'fail',
    });
  });

  test.serial("DNS port blocked from node-3: only node-3's checks fail", async (t) => {
    t.timeout(90_000);
    const lab = L();
    await dnsFault(t, {
      inject: () => lab.blockDns('node-3'),
      affected: (c) => nodeOf(c.src) === 'node-3',
      expect: 'fail',
    });
  });

  test.serial('name removed: nxdomain, an answer, not a server failure', async (t) => {
    t.timeout(90_000);
    const lab = L();
    const name = `node-2-pod-1.${DNS_HEADLESS}`;
    await dnsFault(t, {
      inject: () => lab.removeDnsName(name),
      // node-2's agents look up node-2-pod-1's headless name.
      affected: (c) => nodeOf(c.src) === 'node-2' && c.query === 'pod',
      expect: 'nxdomain',
      during: async () => {
        for (const a of lab.agents.filter((x) => x.node.name === 'node-2')) {
          const row = await results(lab, a);
          for (const x of row.dns.filter((y) => y.query === 'pod')) {
            t.is(x.lastOutcome, 'nxdomain', `${a.id} ${x.server}`);
            t.is(x.name, name);
            t.true((x.outcomes['nxdomain'] ?? 0) > 0);
            t.is(x.failed, 0, `${a.id} ${x.server}: nxdomain is not a failure`);
          }
        }
      },
    });
  });
}
