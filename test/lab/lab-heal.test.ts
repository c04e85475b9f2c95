// Speed and healing with the default settings (60 s window, 1 s probe interval, the controller's
// default pull interval and timeout). A node cut off: named node-isolated, with no finding about
// any other node at any poll on the way, and once healed every finding is gone. An MTU black
// hole on one node: named mtu-blackhole (on the way only findings about node-3: while the window
// fills, "only MTU-sized probes lost" pair loss), never a coverage gap of its own, and once the
// link MTU is restored every finding is gone. Each bound asserted here is the one the lab meets
// today; issue 17's targets are stricter (named within 10 s with nothing but node-isolated on the
// way, cleared within 30 s): each run logs its times and what it saw on the way against them.
// Triage judges on fresh samples (src/analysis/fresh.ts): without that, the cut would be a
// coverage gap and 34% pair loss for half a minute, and the healed faults would linger for a
// window. Needs root, iproute2, nftables.

import test, { type ExecutionContext } from 'ava';
import { triage } from '../../src/analysis/triage.ts';
import type { Finding } from '../../src/analysis/types.ts';
import { SETTINGS_BY_KEY } from '../../src/config/settings.ts';
import { SystemClock } from '../../src/core/clock.ts';
import { Controller, StaticDirectory } from '../../src/controller/controller.ts';
import { labSuite } from './gate.ts';
import { execFileSync } from 'node:child_process';
import { Lab, UNDERLAY_MTU, allLabLeftovers, nftApply, nsExec, sysBin, type Undo } from './lab.ts';

const NEEDS = 'the healing lab needs root and iproute2, nftables';
/** Issue 17's target: a node cut off is named within this, with the default settings. */
const NAMED_TARGET_MS = 10_000;
/** Issue 17's target for a finding to outlive its cause, with the default settings. */
const CLEARED_TARGET_MS = 30_000;
/**
 * What is asserted: the lab names the cut 7.5 to 10.6 s after it (docs/triage.md, "How long a
 * finding outlives its cause"); a proof delayed past one more round on a loaded machine is
 * named 5 s later. Before the scheduler's owed runs and the controller's round cadence it took
 * 15.6 s, over this bound.
 */
const NAMED_MS = 15_000;
const CLEARED_MS = 60_000;
/** A finding about node-3 (the only node faulted here). */
const aboutNode3 = (f: Finding): boolean =>
  f.nodes.includes('node-3') || f.subject.includes('node-3');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const setting = (key: string): number => SETTINGS_BY_KEY.get(key)!.default as number;

labSuite('healing lab', ['ip', 'nft', 'bridge'], NEEDS, () => {
  let lab: Lab | undefined;
  let controller: Controller | undefined;
  const L = (): Lab => lab!;
  const C = (): Controller => controller!;

  test.before(async (t) => {
    t.timeout(180_000);
    // Default agent settings: the lab's own 10 s window put back to the default, nothing about
    // probes overridden.
    lab = await Lab.up({
      nodes: 3,
      podsPerNode: 1,
      dns: false,
      agentSettings: { window: { seconds: setting('window.seconds') } },
    });
    controller = new Controller({
      clock: new SystemClock(),
      directory: new StaticDirectory(
        lab.agents.map((a) => ({ node: a.node.name, network: a.network, url: a.url })),
      ),
      pullIntervalMs: setting('controller.pullIntervalMs'),
      pullConcurrency: setting('controller.pullConcurrency'),
      pullTimeoutMs: setting('controller.pullTimeoutMs'),
      version: 'lab',
      triage,
      log: () => undefined,
    });
    controller.start();
    t.log(
      `lab ${lab.prefix}: ${lab.agents.length} agents; controller pulls every ${setting('controller.pullIntervalMs')} ms, timeout ${setting('controller.pullTimeoutMs')} ms`,
    );
  });

  test.afterEach.always(async () => {
    await lab?.heal();
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

  const describe = (fs: readonly Finding[]): string =>
    fs.length === 0 ? '(none)' : fs.map((f) => f.id).join(', ');

  /** The open findings, once a round over a full matrix has run. */
  function openFindings(): readonly Finding[] | undefined {
    const m = C().matrix();
    const report = C().findings();
    if (m === undefined || report === undefined) return undefined;
    if (m.agents.length !== L().agents.length) return undefined;
    return report.findings;
  }

  /**
   * Polls the open findings every 250 ms until `done` says so; every poll's findings must be
   * ones `allowed` accepts. Returns how long it took.
   */
  async function watch(
    t: ExecutionContext,
    what: string,
    done: (fs: readonly Finding[]) => boolean,
    allowed: (f: Finding) => boolean,
    ms: number,
    o: { hold?: boolean } = {},
  ): Promise<number> {
    const started = Date.now();
    const seen = new Map<string, number>();
    for (;;) {
      const fs = openFindings();
      if (fs !== undefined) {
        for (const f of fs) if (!seen.has(f.id)) seen.set(f.id, Date.now() - started);
        const bad = fs.filter((f) => !allowed(f));
        if (bad.length > 0)
          throw new Error(
            `${what}: unexpected finding after ${Date.now() - started} ms: ${describe(bad)}\n${bad.map((f) => `${f.summary}\n${f.evidence.map((e) => `  ${e.text}`).join('\n')}`).join('\n')}`,
          );
        if (done(fs)) {
          const took = Date.now() - started;
          t.log(
            `${what}: after ${took} ms: ${describe(fs)}; seen on the way: ${[...seen].map(([id, at]) => `${id} at ${at} ms`).join(', ') || '(none)'}`,
          );
          return took;
        }
      }
      if (Date.now() - started > ms) {
        // Holding: the time is up and every poll was allowed.
        if (o.hold === true) return ms;
        throw new Error(`${what}: not within ${ms} ms; findings now: ${describe(fs ?? [])}`);
      }
      await sleep(250);
    }
  }

  /** Healthy: every agent read, every cell judged (minProbes in), no finding for a while. */
  async function healthy(t: ExecutionContext, what: string): Promise<void> {
    const started = Date.now();
    for (;;) {
      const m = C().matrix();
      const fs = openFindings();
      if (
        m !== undefined &&
        fs !== undefined &&
        fs.length === 0 &&
        m.agents.every((a) => a.state === 'ok') &&
        m.cells.length > 0 &&
        // Cross-node cells judged (same-node pairs are probed less often).
        m.cells.every((c) => c.sourceNode === c.targetNode || c.sent >= 10)
      )
        break;
      if (Date.now() - started > 120_000) {
        const few = (m?.cells ?? []).filter((c) => c.sourceNode !== c.targetNode && c.sent < 10);
        throw new Error(
          `${what}: not healthy within 120 s; findings: ${describe(fs ?? [])}; agents: ${(m?.agents ?? []).map((a) => `${a.node}/${a.network} ${a.state} ${a.detail ?? ''}`).join(', ')}; ${few.length} of ${m?.cells.length ?? 0} cells under 10 probes, e.g. ${JSON.stringify(few[0])}`,
        );
      }
      await sleep(500);
    }
    t.log(`${what}: healthy after ${Date.now() - started} ms`);
  }

  test.serial(
    'a node cut off: node-isolated with nothing about other nodes on the way; healed, gone',
    async (t) => {
      t.timeout(240_000);
      await healthy(t, 'before the cut');
      const undo = await L().partition('node-3');
      const isolated = (f: Finding): boolean => f.id === 'node-isolated:node-3';
      const onTheWay = new Set<string>();
      const named = await watch(
        t,
        'node-3 cut off',
        (fs) => {
          for (const f of fs) if (!isolated(f)) onTheWay.add(f.id);
          return fs.some(isolated);
        },
        aboutNode3,
        NAMED_MS,
      );
      t.log(
        `target (issue 17): named within ${NAMED_TARGET_MS} ms with nothing else on the way: ${named <= NAMED_TARGET_MS && onTheWay.size === 0 ? 'met' : `not met (${named} ms; on the way: ${[...onTheWay].join(', ') || 'nothing'})`}`,
      );
      const f = openFindings()!.find(isolated)!;
      t.log(`evidence:\n${f.evidence.map((e) => `  ${e.text}`).join('\n')}`);
      t.log(`explains: ${(f.explains ?? []).join('; ')}`);
      t.true(named <= NAMED_MS, `named after ${named} ms`);
      // Its evidence rests on the newest results (the window still holds the clean minute).
      t.true(
        f.evidence.some((e) => /lost, the newest in a row/.test(e.text)),
        f.evidence.map((e) => e.text).join('\n'),
      );
      // Held a while, so the window is full of the cut, then healed.
      await watch(t, 'held', () => false, aboutNode3, 15_000, { hold: true });
      await undo();
      const cleared = await watch(
        t,
        'node-3 healed',
        (fs) => fs.length === 0,
        aboutNode3,
        CLEARED_MS,
      );
      t.log(
        `target (issue 17): cleared within ${CLEARED_TARGET_MS} ms: ${cleared <= CLEARED_TARGET_MS ? 'met' : 'not met'} (${cleared} ms)`,
      );
      t.true(cleared <= CLEARED_MS, `cleared after ${cleared} ms`);
    },
  );

  test.serial(
    'an MTU black hole on node-3: named, no coverage gap of its own; healed, gone',
    async (t) => {
      t.timeout(240_000);
      const n3 = L().node('node-3');
      // The controller's own pulls to node-3's pod agent must cross the black hole, as a
      // controller Pod's would: the lab's route to the pod subnet clamps the MSS, so without
      // it the route carries full-size segments. Restored on undo.
      await healthy(t, 'before the black hole');
      const undo = await mtuBlackHoleOn(L(), n3.index, n3.podSubnet, n3.ip);
      const mtu = (f: Finding): boolean => f.kind === 'mtu-blackhole' && f.nodes.includes('node-3');
      // While the window fills, the MTU-sized loss is under the contrast an MTU finding needs
      // and reads as pair loss on node-3 ("only MTU-sized probes are lost"): allowed, nothing else.
      const mtuOrRamp = (f: Finding): boolean =>
        mtu(f) || (f.kind === 'pair-loss' && aboutNode3(f));
      const named = await watch(
        t,
        'mtu black hole on node-3',
        (fs) => fs.some(mtu),
        mtuOrRamp,
        60_000,
      );
      t.log(`named after ${named} ms`);
      t.true(named <= 60_000, `named after ${named} ms`);
      // While it lasts: if the controller can't read the pod agent (its pull crossing the black
      // hole), that shows under the MTU finding; a coverage gap of its own fails the watch.
      let readFailed = false;
      let underIt = false;
      await watch(
        t,
        'black hole held',
        (fs) => {
          const a = C()
            .matrix()
            ?.agents.find((x) => x.node === 'node-3' && x.network === 'pod');
          const f = fs.find(mtu);
          if (a !== undefined && a.state !== 'ok' && f !== undefined) {
            readFailed = true;
            underIt ||= (f.explains ?? []).some((e) => e.startsWith('coverage-gap:node-3/pod'));
          }
          return false;
        },
        mtuOrRamp,
        20_000,
        { hold: true },
      );
      if (readFailed) t.true(underIt, "node-3/pod's failed reads are shown under the MTU finding");
      else t.log("the controller's reads of node-3/pod never crossed the black hole in this run");
      await undo();
      const cleared = await watch(t, 'mtu healed', (fs) => fs.length === 0, mtuOrRamp, CLEARED_MS);
      t.log(
        `target (issue 17): cleared within ${CLEARED_TARGET_MS} ms: ${cleared <= CLEARED_TARGET_MS ? 'met' : 'not met'} (${cleared} ms)`,
      );
      t.true(cleared <= CLEARED_MS, `cleared after ${cleared} ms`);
    },
  );
});

/**
 * An MTU black hole on one node: its port on the underlay switch gets a smaller MTU than the
 * node believes (frames over it vanish both ways), IP fragments and "fragmentation needed" are
 * dropped, and the test process's route to the node's pod subnet loses its MSS clamp so the
 * controller's pulls of the pod agent carry full-size segments. Undo restores all three.
 */
async function mtuBlackHoleOn(
  lab: Lab,
  index: number,
  podSubnet: string,
  nodeIp: string,
): Promise<Undo> {
  const table = `pmheal_mtu${index}`;
  await nsExec(lab.underlayNs, 'ip', ['link', 'set', `n${index}`, 'mtu', '1400']);
  await nftApply(
    lab.underlayNs,
    `table bridge ${table} {
  chain lab_forward {
    type filter hook forward priority 0; policy accept;
    ip frag-off & 0x3fff != 0 drop
    icmp type destination-unreachable icmp code frag-needed drop
  }
}
`,
  );
  const route = (advmss: string[]): string[] => [
    'route',
    'replace',
    podSubnet,
    'via',
    nodeIp,
    'dev',
    lab.rootLink,
    ...advmss,
  ];
  await rootIp(route([]));
  return async () => {
    // The lab's own clamp (lab.ts ROOT_ADVMSS).
    await rootIp(route(['advmss', '1200']));
    await nftApply(lab.underlayNs, `delete table bridge ${table}\n`);
    await nsExec(lab.underlayNs, 'ip', ['link', 'set', `n${index}`, 'mtu', String(UNDERLAY_MTU)]);
  };
}

/** `ip` in the test process's own namespace (its routes to the lab's addresses only). */
function rootIp(args: readonly string[]): Promise<void> {
  execFileSync(sysBin('ip')!, [...args]);
  return Promise.resolve();
}
