// Lab: triage on a rotating matrix (issue 18, docs/scale.md "Coverage by rotation"). Eight nodes,
// peers.rotation on, and a probe budget small enough (peers.limit 5, peers.core 4, watchers 2:
// each agent's core set is its node's other agent and its watched nodes, one rotating lane over
// the other 11 agents) that some node pairs are measured by rotating visits only. Once the window
// holds minProbes visits of such a pair (triage counts a rotating link in visits), a one-way drop
// from one node's pod agent to the other's must be named by triage, naming that pair, within a
// few coverage periods (the failed visits that make it significant) plus a collection round,
// and the evidence must say it is a rotating pair and when it was last measured; a partition of a node must still be named node-isolated within 15 s (its
// watchers hold it in their core sets). The pair and the partitioned node are computed with the
// agents' own planPeers, never hard-coded, and the rows' `rotating` flags are checked against it.
// The controller runs in this process. Needs root, iproute2, nftables.

import test from 'ava';
import { DEFAULT_TRIAGE_OPTIONS, triage } from '../../src/analysis/triage.ts';
import type { Finding } from '../../src/analysis/types.ts';
import type { Matrix } from '../../src/api/matrix.ts';
import type { Peer } from '../../src/core/types.ts';
import type { Controller } from '../../src/controller/controller.ts';
import { planPeers, type PeerPlanOptions } from '../../src/mesh/peer-plan.ts';
import { labSuite } from './gate.ts';
import { labController } from './lab-controller.ts';
import { AGENT_PORTS, Lab, allLabLeftovers, nftApply, type LabAgent } from './lab.ts';

const NEEDS = 'the rotation lab needs root and iproute2, nftables';
const NODES = 8;
const INTERVAL_MS = 250;
/**
 * Triage counts a rotating link in visits and judges it once the window holds minProbes of them
 * (docs/triage.md, "Rotating cells"): with a 2.75 s period that takes 27.5 s; 40 s holds 14.
 */
const WINDOW_S = 40;
const PEERS = { rotation: true, limit: 5, core: 4, watchers: 2 } as const;
/** What a core peer and a rotating visit cost: udp and icmp small + mtu, tcp; one of each kind. */
const PLAN: PeerPlanOptions = { ...PEERS, jobsPerPeer: 5, jobsPerVisit: 3 };
/**
 * Coverage periods a fault on a full window of visits may take to be named: three failed visits
 * each way are significant among 14 (two usually are, with the reverse link pooled), and a visit
 * lands anywhere in its period.
 */
const VISITS = 4;
/** One pull round and triage after the counts are in (pulls every second). */
const ROUND_MS = 2_000;
const ISOLATED_MS = 15_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The peers as every agent's static discovery lists them (src/discovery/peer-source.ts). */
function peersOf(lab: Lab): Peer[] {
  return lab.agents.map((a) => ({
    id: a.id,
    node: a.node.name,
    network: a.network,
    zone: a.node.zone,
    address: a.address,
    stampPort: AGENT_PORTS.stamp,
    tcpPort: AGENT_PORTS.tcp,
    httpPort: AGENT_PORTS.http,
  }));
}

interface Plans {
  /** Each agent's core set (peer ids). */
  readonly core: ReadonlyMap<string, ReadonlySet<string>>;
  /** Slots in one coverage period (the same for every agent here). */
  readonly periodSlots: number;
}

function plans(lab: Lab): Plans {
  const all = peersOf(lab);
  const core = new Map<string, Set<string>>();
  const periods = new Set<number>();
  for (const self of all) {
    const plan = planPeers(self, all, PLAN);
    core.set(self.id, new Set(plan.core.map((p) => p.id)));
    periods.add(plan.rotation.periodSlots);
  }
  if (periods.size !== 1) throw new Error(`agents differ in their period: ${[...periods].join()}`);
  return { core, periodSlots: [...periods][0]! };
}

/** Whether any agent of node a holds any agent of node b in its core set. */
const inCore = (p: Plans, a: string, b: string): boolean =>
  [...p.core].some(
    ([id, set]) => id.startsWith(`${a}/`) && [...set].some((x) => x.startsWith(`${b}/`)),
  );

/**
 * Nodes whose peers would see a cut of `x` on their core links on the node network and on the
 * overlay (what isolation judges, with x's own rows unreadable): a host agent holding x/host,
 * and some agent holding x/pod.
 */
function coreWatchers(p: Plans, nodes: readonly string[], x: string): string[] {
  return nodes.filter(
    (y) =>
      y !== x &&
      p.core.get(`${y}/host`)?.has(`${x}/host`) === true &&
      (p.core.get(`${y}/host`)?.has(`${x}/pod`) === true ||
        p.core.get(`${y}/pod`)?.has(`${x}/pod`) === true),
  );
}

async function until<T>(what: string, fn: () => T | undefined, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(100);
  }
}

const describe = (fs: readonly Finding[]): string =>
  fs.length === 0 ? '(none)' : fs.map((f) => f.id).join('; ');

labSuite('rotation lab', ['ip', 'nft', 'bridge'], NEEDS, () => {
  let lab: Lab | undefined;
  let controller: Controller | undefined;
  const L = (): Lab => lab!;
  const C = (): Controller => controller!;

  test.before(async (t) => {
    t.timeout(150_000);
    const started = Date.now();
    lab = await Lab.up({
      nodes: NODES,
      podsPerNode: 1,
      dns: false,
      agentSettings: {
        probes: { intervalMs: INTERVAL_MS, timeoutMs: 200 },
        window: { seconds: WINDOW_S },
        peers: PEERS,
      },
    });
    controller = labController(lab, { triage, pullConcurrency: 16 });
    controller.start();
    t.log(`lab ${lab.prefix}: ${lab.agents.length} agents up in ${Date.now() - started} ms`);
  });

  test.after.always('nothing is left behind', async (t) => {
    await controller?.stop();
    if (lab === undefined) return;
    const prefix = lab.prefix;
    await lab.down();
    t.deepEqual(
      allLabLeftovers().filter((x) => x.includes(prefix)),
      [],
    );
  });

  /** Every cell between two nodes (both ways): they must exist and all be rotating. */
  const between = (m: Matrix, a: string, b: string): Matrix['cells'] =>
    m.cells.filter(
      (c) =>
        (c.sourceNode === a && c.targetNode === b) || (c.sourceNode === b && c.targetNode === a),
    );

  test.serial(
    "a one-way drop between two nodes outside each other's core sets is named on that pair; a partition is still node-isolated within 15 s",
    async (t) => {
      t.timeout(150_000);
      const nodes = L().nodes.map((n) => n.name);
      const p = plans(L());
      const periodMs = p.periodSlots * INTERVAL_MS;
      const rotatingOnly = nodes.flatMap((a, i) =>
        nodes
          .slice(i + 1)
          .flatMap((b) => (!inCore(p, a, b) && !inCore(p, b, a) ? [[a, b] as const] : [])),
      );
      t.log(
        `coverage period ${p.periodSlots} slots = ${periodMs} ms; rotating-only pairs: ${rotatingOnly.map(([a, b]) => `${a}<->${b}`).join(' ')}`,
      );
      t.true(rotatingOnly.length > 0, 'the budget leaves some pairs to the rotation');
      const [a, b] = rotatingOnly[0]!;
      // A node to partition afterwards: not in the pair, seen on core links by at least two nodes.
      const x = nodes.find((n) => n !== a && n !== b && coreWatchers(p, nodes, n).length >= 2);
      if (x === undefined) throw new Error('no node with two core watchers');

      // Healthy first: every agent read, every link judged (a rotating link's pooled small
      // probes at minProbes), no findings; and the rows flag the pair's cells as rotating.
      const healthyAt = Date.now();
      const healthy = await until(
        'a complete matrix with no findings',
        () => {
          const m = C().matrix();
          const f = C().findings();
          if (m === undefined || f === undefined || f.findings.length > 0) return undefined;
          if (!m.agents.every((ag) => ag.state === 'ok')) return undefined;
          const pairCells = between(m, a, b).filter((c) => c.protocol === 'udp');
          return pairCells.length === 8 &&
            pairCells.every((c) => c.sent >= DEFAULT_TRIAGE_OPTIONS.minProbes)
            ? m
            : undefined;
        },
        90_000,
      );
      const pairCells = between(healthy, a, b);
      t.log(
        `healthy after ${Date.now() - healthyAt} ms; ${a}<->${b}: ${pairCells.length} cells, ${Math.min(...pairCells.map((c) => c.sent))}..${Math.max(...pairCells.map((c) => c.sent))} probes each`,
      );
      t.true(pairCells.every((c) => c.rotating === true && c.size === 'small'));
      t.true(pairCells.every((c) => typeof c.measuredAt === 'string'));
      t.true(healthy.cells.some((c) => c.rotating === false));

      // a's pod agent → b's pod agent dropped (its probes there, its answers to b's probes).
      const from: LabAgent = L().agent(`${a}/pod`);
      const to: LabAgent = L().agent(`${b}/pod`);
      const table = 'pmlab_rotation';
      await nftApply(
        from.ns,
        `table inet ${table} {
  chain output {
    type filter hook output priority 0; policy accept;
    ip daddr ${to.address} drop
  }
}
`,
      );
      const faultAt = Date.now();
      const id = `pair-loss:${a}<->${b}`;
      const budget = periodMs * VISITS + ROUND_MS;
      let found: Finding;
      try {
        found = await until(
          `${id}`,
          () =>
            C()
              .findings()
              ?.findings.find((f) => f.id === id),
          Math.max(budget, 30_000),
        );
      } finally {
        await nftApply(from.ns, `delete table inet ${table}\n`);
      }
      const tookMs = Date.now() - faultAt;
      t.log(
        `${a}/pod → ${b}/pod dropped: ${id} after ${tookMs} ms (budget ${budget} ms = ${VISITS} periods of ${periodMs} ms + ${ROUND_MS} ms); findings then: ${describe(C().findings()?.findings ?? [])}`,
      );
      t.log(`  ${found.summary}`);
      for (const e of found.evidence.slice(0, 3)) t.log(`  ${e.text}`);
      t.true(tookMs <= budget, `named after ${tookMs} ms, budget ${budget} ms`);
      t.deepEqual(found.nodes, [a, b].sort());
      t.true(found.evidence.some((e) => /a rotating pair .*last measured \d{4}-/.test(e.text)));

      // Healed: the findings clear once the window has moved past the drop.
      const healAt = Date.now();
      await until(
        'no findings after healing',
        () => (C().findings()?.findings.length === 0 ? true : undefined),
        WINDOW_S * 1000 + 15_000,
      );
      t.log(`healed: no findings after ${Date.now() - healAt} ms`);

      // A partition of a node: still node-isolated within 15 s, on its watchers' core links.
      const undo = await L().partition(x);
      const cutAt = Date.now();
      try {
        const iso = await until(
          `node-isolated:${x}`,
          () =>
            C()
              .findings()
              ?.findings.find((f) => f.id === `node-isolated:${x}`),
          ISOLATED_MS,
        );
        t.log(
          `partition of ${x} (core watchers ${coreWatchers(p, nodes, x).join(', ')}): node-isolated after ${Date.now() - cutAt} ms; findings: ${describe(C().findings()?.findings ?? [])}; ${iso.summary}`,
        );
      } finally {
        await undo();
      }
      t.pass();
    },
  );
});
