// The API server checks against real faults in the namespace lab: a TLS listener in this
// process on the lab's root-side address stands in for the API server (a throw-away certificate
// made at test time; it answers /readyz with 401 like an API server refusing anonymous
// requests), reached by every lab agent directly (the endpoint) and through a `kubernetes` VIP
// that nftables DNATs to it on every node, as kube-proxy's nftables mode would. A controller in
// this process runs the real triage. Faults: the API server blocked from node-2 (a firewall
// rule on the node: VIP and endpoint fail, the path to the control plane), and node-2's VIP
// translation removed (only the VIP fails: Service translation). Each must be named within 15 s
// with nothing else reported, and clear after healing. Needs root, iproute2 and nftables.

import test, { type ExecutionContext } from 'ava';
import { DEFAULT_TRIAGE_OPTIONS, triage } from '../../src/analysis/triage.ts';
import type { Finding } from '../../src/analysis/types.ts';
import type { Controller } from '../../src/controller/controller.ts';
import { TlsApiServer } from '../support/tls-apiserver.ts';
import { expectFindings as waitForFindings } from './findings-wait.ts';
import { labSuite } from './gate.ts';
import { labController } from './lab-controller.ts';
import { Lab, allLabLeftovers, nftApply, nsExec, type LabNode } from './lab.ts';

const NEEDS = 'the API server lab needs root and iproute2, nftables';
const DETECT_MS = 15_000;
const CLEAR_MS = 40_000;
const INTERVAL = 500;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** This file's nftables tables in the node namespaces. */
const VIP_TABLE = 'pmlab_apivip';
const BLOCK_TABLE = 'pmlab_apiblock';

labSuite('API server lab', ['ip', 'nft', 'bridge'], NEEDS, () => {
  let lab: Lab | undefined;
  let api: TlsApiServer | undefined;
  let controller: Controller | undefined;
  let vip = '';
  const L = (): Lab => lab!;
  const C = (): Controller => controller!;

  /** The `kubernetes` VIP on a node: DNAT to the stand-in, for the node and its pods. */
  const applyVip = (n: LabNode): Promise<string> =>
    nftApply(
      n.ns,
      `table ip ${VIP_TABLE} {
  chain services {
    ip daddr ${vip} tcp dport 443 dnat to ${L().rootIp}:${api!.port}
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump services
  }
  chain output {
    type nat hook output priority -100; policy accept;
    jump services
  }
}
`,
    );

  test.before(async (t) => {
    t.timeout(120_000);
    lab = await Lab.up({
      nodes: 3,
      podsPerNode: 1,
      agents: false,
      dns: false,
      agentSettings: { probes: { intervalMs: 250, timeoutMs: 200 }, window: { seconds: 10 } },
    });
    api = await TlsApiServer.start(lab.rootIp);
    // The VIP in the lab's service block (the one the DNS lab's VIP lives in), routed out of
    // every node like a real node's default route would, then DNAT'ed.
    const u = 16 * lab.block;
    vip = `198.18.${u + 1}.30`;
    for (const n of lab.nodes) {
      await nsExec(n.ns, 'ip', [
        'route',
        'add',
        `198.18.${u + 1}.0/24`,
        'dev',
        'eth0',
        'src',
        n.ip,
      ]);
      await applyVip(n);
    }
    await lab.startAgents(
      {},
      {
        apiserver: {
          intervalMs: INTERVAL,
          timeoutMs: 400,
          service: `${vip}:443`,
          endpoints: [{ address: lab.rootIp, port: api.port }],
        },
      },
    );
    controller = labController(lab, {
      triage,
    });
    controller.start();
    t.log(
      `lab ${lab.prefix}: ${lab.agents.length} agents; API server stand-in ${lab.rootIp}:${api.port}, VIP ${vip}:443`,
    );
  });

  test.after.always('nothing is left behind', async (t) => {
    await controller?.stop();
    await api?.close();
    if (lab === undefined) return;
    const prefix = lab.prefix;
    await lab.down();
    t.deepEqual(
      allLabLeftovers().filter((x) => x.includes(prefix)),
      [],
    );
  });

  /** Waits until the open findings are exactly those `want` matches, one each (findings-wait.ts). */
  const expectFindings = (
    t: ExecutionContext,
    what: string,
    want: readonly ((f: Finding) => boolean)[],
    ms: number,
  ): Promise<{ findings: readonly Finding[]; ms: number }> =>
    waitForFindings(
      t,
      {
        matrix: () => C().matrix(),
        findings: () => C().findings(),
        // Only a round over a full matrix counts (every API server cell judged).
        complete: (m) =>
          m.agents.length === L().agents.length &&
          m.apiserver.length === 2 * L().agents.length &&
          m.apiserver.every((c) => c.sent >= DEFAULT_TRIAGE_OPTIONS.minPortChecks),
      },
      what,
      want,
      ms,
    );

  /**
   * Every API server cell's window holds (nearly) a full window of checks, none failed: a
   * steady healthy state, with nothing of an earlier fault left in it.
   */
  async function fullWindows(): Promise<void> {
    const full = (10_000 / INTERVAL) * 0.9;
    const end = Date.now() + 30_000;
    while (!(C().matrix()?.apiserver ?? []).every((c) => c.sent >= full && c.failed === 0)) {
      if (Date.now() > end) throw new Error('API server windows not full and clean within 30 s');
      await sleep(250);
    }
  }

  async function faultCase(
    t: ExecutionContext,
    name: string,
    inject: () => Promise<() => Promise<void>>,
    want: (f: Finding) => boolean,
  ): Promise<Finding> {
    t.timeout(DETECT_MS + 2 * CLEAR_MS + 60_000);
    await expectFindings(t, `${name}: healthy before`, [], CLEAR_MS);
    // Detected from a full window of good checks, not a young one that tips over sooner.
    await fullWindows();
    const undo = await inject();
    let found: readonly Finding[];
    try {
      found = (await expectFindings(t, name, [want], DETECT_MS)).findings;
    } finally {
      await undo();
    }
    const f = found[0]!;
    t.true(f.evidence.length > 0);
    t.true(f.nextSteps.length > 0);
    await expectFindings(t, `${name}: healed`, [], CLEAR_MS);
    return f;
  }

  test.serial(
    'healthy: every agent reaches the API server through the VIP and directly',
    async (t) => {
      t.timeout(60_000);
      await expectFindings(t, 'healthy', [], 40_000);
      const m = C().matrix()!;
      t.is(m.apiserver.length, 2 * L().agents.length);
      for (const c of m.apiserver) {
        t.is(c.okRatio, 1, `${c.sourceNode}/${c.sourceNetwork} ${c.target}`);
        t.is(c.readyz, 401);
      }
      t.true(api!.requests.every((r) => r.headers.authorization === undefined));
    },
  );

  test.serial(
    'the API server blocked from node-2: apiserver-unreachable node-2, VIP and endpoints',
    async (t) => {
      const n2 = L().node('node-2');
      const f = await faultCase(
        t,
        'API server blocked from node-2',
        async () => {
          // A firewall on node-2 drops TCP to the API server: its own (output) and its pods'
          // (forward) connects, after the VIP's DNAT (filter runs at priority 0).
          const rule = `ip daddr ${L().rootIp} tcp dport ${api!.port} drop`;
          await nftApply(
            n2.ns,
            `table inet ${BLOCK_TABLE} {
  chain output {
    type filter hook output priority 0; policy accept;
    ${rule}
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    ${rule}
  }
}
`,
          );
          return () => nftApply(n2.ns, `delete table inet ${BLOCK_TABLE}\n`).then(() => undefined);
        },
        // Both ways named: one of them may cross the bar a check before the other.
        (x) =>
          x.id === 'apiserver-unreachable:node-2' && x.targets?.join(',') === 'endpoints,service',
      );
      t.deepEqual(f.nodes, ['node-2']);
      t.deepEqual(f.targets, ['endpoints', 'service']);
      t.is(f.severity, 'critical');
    },
  );

  test.serial(
    "node-2's VIP translation removed: apiserver-unreachable node-2, the VIP only",
    async (t) => {
      const n2 = L().node('node-2');
      const f = await faultCase(
        t,
        'VIP translation gone on node-2',
        async () => {
          await nftApply(n2.ns, `delete table ip ${VIP_TABLE}\n`);
          return () => applyVip(n2).then(() => undefined);
        },
        (x) => x.id === 'apiserver-unreachable:node-2' && x.targets?.join(',') === 'service',
      );
      t.deepEqual(f.targets, ['service']);
      t.regex(f.summary, /Service translation/);
    },
  );
});
