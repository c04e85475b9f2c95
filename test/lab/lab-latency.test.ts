// Latency kinds against a real latency fault: the namespace lab's agents measure, a controller
// in this process keeps each link's RTT history (a 2-minute baseline window here, so the lab
// builds it in under a minute) and runs the real triage. Then one node's uplink gets congested
// the way a real link does: its egress is rate-limited with tbf (netem is missing on this
// kernel) and a background UDP flow from that node, sent in bursts, keeps a queue standing in
// front of it, so every packet leaving the node waits. The flow stays under the rate, and the
// queue's limit is far above its backlog, so nothing is dropped: the node is slow, not lossy.
// Triage must name latency-node on that node, with no loss or reachability finding at any
// moment, and clear once the queue is gone. Traffic goes only to addresses the lab made.
// Needs root, iproute2 (tc with the tbf or htb qdisc), nftables.

import { spawn, type ChildProcess } from 'node:child_process';
import test, { type ExecutionContext } from 'ava';
import { triage } from '../../src/analysis/triage.ts';
import type { Finding } from '../../src/analysis/types.ts';
import type { Controller } from '../../src/controller/controller.ts';
import { LatencyHistory } from '../../src/controller/latency-history.ts';
import { labSuite } from './gate.ts';
import { labController } from './lab-controller.ts';
import { Lab, allLabLeftovers, nftApply, nsExec, sysBin } from './lab.ts';

const NEEDS = 'the latency lab needs root and iproute2 (tc), nftables';
const BASELINE_MINUTES = 2;
const MIN_SAMPLES = 20;
const DETECT_MS = 30_000;
const HOLD_MS = 15_000;
const CLEAR_MS = 40_000;
/** The flow's destination port, dropped on arrival (so no ICMP unreachables come back). */
const SINK_PORT = 9;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The background flow: `bytes` per burst of 1200-byte datagrams every `periodMs`. */
const BLASTER = `
const s = require('node:dgram').createSocket('udp4');
const [bytes, periodMs, dst, port] = process.argv.slice(1).map((x, i) => (i === 2 ? x : Number(x)));
const buf = Buffer.alloc(1200);
const n = Math.max(1, Math.round(bytes / buf.length));
setInterval(() => { for (let i = 0; i < n; i++) s.send(buf, port, dst, () => {}); }, periodMs);
`;

/** Kinds that say the network loses or drops packets: never right for a slow, lossless link. */
const LOSS_KINDS = new Set<string>([
  'node-isolated',
  'overlay-broken',
  'host-network',
  'mtu-blackhole',
  'asymmetric-path',
  'zone-pair',
  'pair-loss',
  'port-blocked',
  'port-refused',
]);

labSuite('latency lab', ['ip', 'nft', 'tc'], NEEDS, () => {
  let lab: Lab | undefined;
  let controller: Controller | undefined;
  let history: LatencyHistory | undefined;
  let blaster: ChildProcess | undefined;
  const L = (): Lab => lab!;
  const C = (): Controller => controller!;

  test.before(async (t) => {
    t.timeout(180_000);
    lab = await Lab.up({
      nodes: 3,
      podsPerNode: 1,
      dns: false,
      agents: false,
      agentSettings: {
        probes: { intervalMs: 500, timeoutMs: 400 },
        window: { seconds: 10 },
      },
    });
    await lab.startAgents();
    history = new LatencyHistory({ minutes: BASELINE_MINUTES, maxLinks: 1000 });
    controller = labController(lab, {
      triage: (s) => triage(s, { latencyMinSamples: MIN_SAMPLES }),
      latencyHistory: history,
    });
    controller.start();
    t.log(`lab ${lab.prefix}: ${lab.agents.length} agents`);
  });

  test.after.always('nothing is left behind', async (t) => {
    blaster?.kill('SIGKILL');
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
    fs.length === 0 ? '(none)' : fs.map((f) => f.id).join('; ');

  /** Polls the open findings until `done` says so, recording every id seen on the way. */
  async function watch(
    what: string,
    ms: number,
    done: (fs: readonly Finding[]) => boolean,
    seen: Set<string>,
  ): Promise<readonly Finding[]> {
    const end = Date.now() + ms;
    for (;;) {
      const fs = C().findings()?.findings ?? [];
      for (const f of fs) seen.add(f.id);
      if (done(fs)) return fs;
      if (Date.now() > end)
        throw new Error(
          `${what}: not within ${ms} ms; now: ${describe(fs)}; seen: ${[...seen].join(', ')}`,
        );
      await sleep(250);
    }
  }

  /** Bytes per second leaving the node's uplink, over `ms`. */
  async function egressRate(ns: string, ms: number): Promise<number> {
    const tx = async (): Promise<number> =>
      Number((await nsExec(ns, 'cat', ['/sys/class/net/eth0/statistics/tx_bytes'])).trim());
    const a = await tx();
    await sleep(ms);
    return ((await tx()) - a) / (ms / 1000);
  }

  /**
   * Congests `node`'s uplink: its egress limited to `rate` bytes/s with a queue of half a
   * second, and a flow of bursts every 100 ms to `sink`'s address (dropped there) that, with
   * the probes, fills about 75% of the rate. Returns the undo.
   */
  async function congest(
    t: ExecutionContext,
    nodeName: string,
    sinkName: string,
  ): Promise<() => Promise<void>> {
    const node = L().node(nodeName);
    const sink = L().node(sinkName);
    const probes = await egressRate(node.ns, 5000);
    const rate = Math.max(1_000_000, 4 * probes);
    const flow = Math.max(0.5 * rate, 0.75 * rate - probes);
    const limit = Math.round(rate / 2);
    const tc = (args: string): Promise<string> => nsExec(node.ns, 'tc', args.split(' '));
    let qdisc = 'tbf';
    try {
      await tc(`qdisc add dev eth0 root tbf rate ${rate * 8}bit burst 10kb limit ${limit}`);
    } catch {
      qdisc = 'htb';
      await tc('qdisc add dev eth0 root handle 1: htb default 10');
      await tc(`class add dev eth0 parent 1: classid 1:10 htb rate ${rate * 8}bit burst 10kb`);
      await tc(`qdisc add dev eth0 parent 1:10 handle 10: bfifo limit ${limit}`);
    }
    await nftApply(
      sink.ns,
      `table inet pmlat_sink {
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr ${node.ip} udp dport ${SINK_PORT} drop
  }
}
`,
    );
    blaster = spawn(
      sysBin('ip')!,
      [
        'netns',
        'exec',
        node.ns,
        process.execPath,
        '-e',
        BLASTER,
        String(Math.round(flow / 10)),
        '100',
        sink.ip,
        String(SINK_PORT),
      ],
      { stdio: 'ignore' },
    );
    t.log(
      `${nodeName} uplink: ${qdisc} at ${Math.round(rate / 1000)} kB/s, queue ${Math.round(limit / 1000)} kB; probes ${Math.round(probes / 1000)} kB/s, flow ${Math.round(flow / 1000)} kB/s to ${sinkName} in bursts every 100 ms`,
    );
    return async () => {
      blaster?.kill('SIGKILL');
      blaster = undefined;
      // What the queue did: packets sent, dropped (none expected: the limit is far above the
      // backlog), and the backlog it holds now.
      const stats = await nsExec(node.ns, 'tc', ['-s', 'qdisc', 'show', 'dev', 'eth0']);
      t.log(`${nodeName} uplink queue: ${stats.replace(/\s+/g, ' ').trim()}`);
      const dropped = [...stats.matchAll(/dropped (\d+)/g)].map((m) => Number(m[1]));
      t.true(dropped.length > 0 && dropped.every((d) => d === 0), 'the queue dropped nothing');
      await tc('qdisc del dev eth0 root');
      await nftApply(sink.ns, 'delete table inet pmlat_sink\n');
    };
  }

  test.serial('a congested uplink on node-3: latency-node node-3, no loss finding', async (t) => {
    t.timeout(300_000);
    // The baseline first: every cross-node link with MIN_SAMPLES buckets of history.
    const started = Date.now();
    const crossLinks = 3 * 2 * 4;
    await watch(
      'baselines for every cross-node link',
      150_000,
      () => {
        const b = history!.baselines(Date.now());
        const ready = [...b.links].filter(
          ([k, v]) =>
            v.p50.samples >= MIN_SAMPLES &&
            k.split('>')[0]!.split('/')[0] !== k.split('>')[1]!.split('/')[0],
        );
        return ready.length >= crossLinks;
      },
      new Set(),
    );
    const base = history!.baselines(Date.now());
    const p50s = [...base.links.values()].map((v) => v.p50.median * 1000).sort((a, b) => a - b);
    t.log(
      `baselines after ${Date.now() - started} ms: ${base.links.size} links, p50 medians ${p50s[0]!.toFixed(3)}..${p50s.at(-1)!.toFixed(3)} ms`,
    );
    const healthySeen = new Set<string>();
    await watch('healthy before', 30_000, (fs) => fs.length === 0, healthySeen);

    const undo = await congest(t, 'node-3', 'node-1');
    const seen = new Set<string>();
    const injected = Date.now();
    let found: readonly Finding[];
    try {
      found = await watch(
        'latency-node:node-3',
        DETECT_MS,
        (fs) => fs.some((f) => f.id === 'latency-node:node-3'),
        seen,
      );
      t.log(`named after ${Date.now() - injected} ms: ${describe(found)}`);
      const f = found.find((x) => x.id === 'latency-node:node-3')!;
      t.log(f.summary);
      for (const e of f.evidence) t.log(`  ${e.text}`);
      t.deepEqual(f.nodes, ['node-1', 'node-2', 'node-3']);
      t.true(f.evidence.some((e) => /rtt p(50|99) .* now vs .* baseline \(MAD/.test(e.text)));
      // Held: it stays named, nothing else turns up meanwhile, and once the window is full of
      // queued probes the typical round trip (p50) has moved too, not just the tail.
      await sleep(HOLD_MS);
      const held = C().findings()?.findings ?? [];
      for (const x of held) seen.add(x.id);
      const h = held.find((x) => x.id === 'latency-node:node-3');
      t.truthy(h, `held: ${describe(held)}`);
      t.log(`held ${HOLD_MS} ms: ${describe(held)}`);
      for (const e of h?.evidence ?? []) t.log(`  ${e.text}`);
      t.true(
        h?.evidence.some((e) => /\bp50 [\d.]+ ms now vs [\d.]+ ms baseline \(MAD/.test(e.text)),
      );
    } finally {
      await undo();
    }
    const wrong = [...seen].filter(
      (id) =>
        LOSS_KINDS.has(id.split(':')[0]!) || (id.startsWith('latency-') && !id.includes('node-3')),
    );
    t.deepEqual(wrong, [], `seen while congested: ${[...seen].join(', ')}`);
    const cleared = Date.now();
    await watch('healed', CLEAR_MS, (fs) => fs.length === 0, seen);
    t.log(`cleared ${Date.now() - cleared} ms after the queue went`);
  });
});
