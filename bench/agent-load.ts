// One load scenario of the benchmark, in a fresh process so its CPU and RSS are its own (the
// bench's other phases would otherwise inflate the RSS high-water mark):
//
//   agent      the real Agent (every probe kind on the engine's worker thread, icmp on the main
//              thread only if the timestamping addon can't load; window store, Prometheus
//              metrics, HTTP server), peers from the static list;
//              one /metrics render per 15 s inside the measured window, like a Prometheus scrape
//   agent-k8s  the same Agent with `discovery: kubernetes`, as deployed: the peers are agent Pods
//              and their Nodes, listed and watched by @kubernetes/client-node from an API
//              server the parent runs (spec.kubeconfig); this process never serves it, so its
//              CPU and RSS are the agent's alone
//   engines    only the probe engines the Agent starts, placed as it places them, with the same
//              jobs; results are just counted
//
// Main-loop delay: the agent scenarios report the Agent's own monitor (resolution 50 ms, read
// from podmesh_event_loop_delay_seconds in the /metrics render) rather than adding a second,
// finer one whose wake-ups would count as agent CPU; `engines` has no Agent, so it runs one at
// the same 50 ms resolution. Both report delay beyond the 50 ms tick (src/core/loop-delay.ts).
//
//   node --import tsx bench/agent-load.ts '<json LoadSpec>'   -> {"type":"result",...}

import { readFileSync, writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { loopDelayMonitor, loopDelaySeconds } from '../src/core/loop-delay.ts';
import { Agent } from '../src/agent/agent.ts';
import { loadConfig } from '../src/config/load.ts';
import type { StaticPeer } from '../src/config/settings.ts';
import { SystemClock } from '../src/core/clock.ts';
import type { ProbeKind, ProbeResult } from '../src/core/types.ts';
import { peerFromStatic } from '../src/discovery/peer-source.ts';
import { LocalEngine, RemoteEngine, type EngineHandle } from '../src/mesh/engine-client.ts';
import type { LogSink } from '../src/mesh/family.ts';
import { planJobs } from '../src/mesh/families/peer.ts';
import { loadTimestamping } from '../src/native/timestamping.ts';
import { baseLength } from '../src/probes/stamp-codec.ts';
import { assertLoopback, exitWhenParentGoes, meter, send, sleep } from './lib.ts';
import { diff, type Counts } from './metrics-counts.ts';

const rssAfterImport = process.memoryUsage().rss;

export type LoadScenario = 'agent' | 'agent-k8s' | 'engines';

export interface LoadSpec {
  readonly scenario: LoadScenario;
  /** The responders to probe: the static list, or (agent-k8s) what the API server's Pods say. */
  readonly peers: readonly StaticPeer[];
  /** agent-k8s only: kubeconfig file of the API server the parent runs. */
  readonly kubeconfig?: string;
  /** agent-k8s only: namespace of the agent Pods there. */
  readonly namespace?: string;
  /** agent-k8s only: this agent's node name (its own Pod and Node are in the API server). */
  readonly selfNode?: string;
  /** agent-k8s only: peers.limit (default: all of them); BENCH_PEERS_LIMIT in the parent. */
  readonly peersLimit?: number;
  readonly bindAddress: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly mtuBytes: number;
  readonly warmupMs: number;
  readonly runMs: number;
  readonly scrapeEveryMs: number;
  /** engines scenario only: run just these kinds (for finding where the CPU goes). */
  readonly engineKinds?: readonly ProbeKind[];
}

export interface LoadResult {
  readonly type: 'result';
  readonly scenario: LoadScenario;
  readonly peers: number;
  /** Peers the Agent selected and probes (engines: all of spec.peers). */
  readonly peersProbed: number;
  /** agent-k8s: time from Agent.start until the first peer list arrived (list of Pods + Nodes). */
  readonly discoveryMs: number | null;
  readonly jobs: number;
  readonly kinds: string[];
  readonly scheduledPerSec: number;
  readonly completed: number;
  readonly failed: number;
  /** Failed probes by `kind:reason`. */
  readonly failures: Record<string, number>;
  readonly completedPerSec: number;
  readonly wallS: number;
  readonly cpuS: number;
  readonly cpuPctOfOneCore: number;
  /** Share of the CPU spent in the kernel (syscalls, the network stack on the send path). */
  readonly systemShare: number;
  readonly cpuUsPerProbe: number;
  readonly rssAfterImportMB: number;
  readonly rssBeforeStartMB: number;
  /** High-water mark over the measured window (after warm-up): the kernel's VmHWM. */
  readonly rssMaxMB: number;
  /** High-water mark since start, warm-up included. */
  readonly rssPeakMB: number;
  /** Main thread's heap in use, the most of its readings after warm-up, at each render, at the end. */
  readonly heapUsedMaxMB: number;
  readonly mainLoopDelayP99Ms: number;
  /** Where mainLoopDelayP99Ms comes from. */
  readonly mainLoopDelaySource: 'agent-metrics' | 'bench-monitor-50ms';
  readonly scrapes: number;
}

const MB = 1024 * 1024;

/** The kernel's RSS high-water mark of this process (VmHWM), bytes. */
function peakRss(): number {
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  if (kb === undefined) throw new Error('no VmHWM in /proc/self/status');
  return Number(kb) * 1024;
}

/** Starts a new high-water mark from the current RSS (proc(5): clear_refs, "5"). */
function resetPeakRss(): void {
  writeFileSync('/proc/self/clear_refs', '5');
}
const IPV4_UDP_HEADERS = 28;

/** Scrapes the parent is making for us, by id: {"type":"scrape"} out, {"type":"scraped"} back. */
const scrapes = new Map<number, { resolve: (c: Counts) => void; reject: (e: Error) => void }>();
let scrapeId = 0;

function scrapedByParent(url: string): Promise<Counts> {
  const id = ++scrapeId;
  return new Promise((resolve, reject) => {
    scrapes.set(id, { resolve, reject });
    send({ type: 'scrape', id, url });
  });
}

function onParentLine(line: string): void {
  const m = JSON.parse(line) as { type?: string; id?: number; counts?: Counts; error?: string };
  if (m.type !== 'scraped' || m.id === undefined) return;
  const waiter = scrapes.get(m.id);
  scrapes.delete(m.id);
  if (m.counts !== undefined) waiter?.resolve(m.counts);
  else waiter?.reject(new Error(`the parent could not scrape /metrics: ${m.error ?? '?'}`));
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as LoadSpec;
  assertLoopback(spec.bindAddress);
  for (const p of spec.peers) assertLoopback(p.address);
  const log = pino({ level: 'warn' }, pino.destination(2));
  const sink: LogSink = (level, msg, fields) => log[level](fields ?? {}, msg);
  const rssBeforeStart = process.memoryUsage().rss;
  // RSS peaks come from the kernel's high-water mark, not from a sampling timer: a timer would
  // wake the measured process (its wake-ups counted as agent CPU) and miss short peaks.
  let heapMax = process.memoryUsage().heapUsed;
  const noteHeap = (): void => {
    heapMax = Math.max(heapMax, process.memoryUsage().heapUsed);
  };
  const isAgent = spec.scenario === 'agent' || spec.scenario === 'agent-k8s';
  // Only without an Agent: the Agent's own monitor (50 ms) is read from its metrics instead.
  const delay = isAgent ? undefined : loopDelayMonitor();

  const mtu = {
    mtu: true,
    mtuBytes: spec.mtuBytes,
    udpSmallBytes: baseLength(undefined) + IPV4_UDP_HEADERS,
  };
  let stopAll: () => Promise<void>;
  let readCounts: () => Promise<Counts>;
  let scrape: () => Promise<Counts | undefined>;
  let kinds: ProbeKind[];
  let peersProbed = spec.peers.length;
  let discoveryMs: number | null = null;

  if (isAgent) {
    const k8s = spec.scenario === 'agent-k8s';
    if (k8s) {
      if (spec.kubeconfig === undefined) throw new Error('agent-k8s needs spec.kubeconfig');
      // As outside a cluster: the client reads KUBECONFIG. Never the service account of a
      // cluster this bench might itself run in.
      delete process.env['KUBERNETES_SERVICE_HOST'];
      process.env['KUBECONFIG'] = spec.kubeconfig;
    }
    const config = loadConfig({
      overrides: {
        node: k8s ? (spec.selfNode ?? 'bench-self') : 'bench-self',
        network: 'pod',
        // Kubernetes discovery learns the zone from this node's labels, as in a cluster.
        zone: k8s ? '' : 'zone-a',
        address: spec.bindAddress,
        advertiseAddress: spec.bindAddress,
        httpAddress: spec.bindAddress,
        httpPort: 0,
        stampPort: 0,
        tcpPort: 0,
        logLevel: 'warn',
        'probes.intervalMs': spec.intervalMs,
        'probes.timeoutMs': spec.timeoutMs,
        'probes.mtuBytes': spec.mtuBytes,
        'peers.limit': spec.peersLimit ?? spec.peers.length,
        ...(k8s
          ? { 'discovery.mode': 'kubernetes', 'kubernetes.namespace': spec.namespace ?? 'podmesh' }
          : { 'peers.static': spec.peers }),
        // DNS load is measured on its own; never query the machine's resolver from a bench.
        'dns.enabled': false,
      },
    });
    const t0 = performance.now();
    const agent = await Agent.start({ config, log, version: 'bench' });
    if (k8s) {
      // The warm-up starts once the informers have listed Pods and Nodes.
      while (!agent.isReady()) {
        if (performance.now() - t0 > 30_000)
          throw new Error(`no peer list from the API server in 30 s (${agent.notReadyReason()})`);
        await sleep(20);
      }
      discoveryMs = performance.now() - t0;
    }
    const res = agent.results();
    peersProbed = res.peers.length;
    const want = Math.min(spec.peersLimit ?? spec.peers.length, spec.peers.length);
    if (peersProbed !== want)
      throw new Error(`the Agent selected ${peersProbed} peers, expected ${want}`);
    for (const p of res.peers) assertLoopback(p.address);
    kinds = (['udp', 'tcp', 'icmp'] as const).filter(
      (k) => (res.probes[k] as { enabled: boolean }).enabled,
    );
    stopAll = () => agent.stop();
    // Scraped over HTTP by the parent, as Prometheus would: the render and the response are the
    // agent's work, parsing the text is not (and it held on to the 1 MB text between scrapes).
    const url = `http://${spec.bindAddress}:${agent.httpPort}/metrics`;
    readCounts = () => scrapedByParent(url);
    scrape = () => scrapedByParent(url);
  } else {
    const counts: Counts = { completed: 0, failed: 0, failures: {} };
    const onResult = (r: ProbeResult): void => {
      counts.completed++;
      if (!r.ok) {
        counts.failed++;
        const key = `${r.kind}:${r.reason}`;
        counts.failures[key] = (counts.failures[key] ?? 0) + 1;
      }
    };
    const base = {
      bindAddress: spec.bindAddress,
      intervalMs: spec.intervalMs,
      timeoutMs: spec.timeoutMs,
      jitter: 0.1,
      concurrency: 256,
    };
    const want = new Set<ProbeKind>(spec.engineKinds ?? ['udp', 'tcp', 'icmp']);
    // As the Agent places them: icmp joins the worker when the timestamping addon loads.
    const icmpOnWorker = loadTimestamping().ok;
    const offMain = (['udp', 'tcp', 'icmp'] as const).filter(
      (k) => want.has(k) && (k !== 'icmp' || icmpOnWorker),
    );
    const engines: EngineHandle[] = [];
    if (offMain.length > 0)
      engines.push(await RemoteEngine.start({ ...base, kinds: offMain }, { peer: onResult }, sink));
    if (want.has('icmp') && !icmpOnWorker)
      engines.push(
        await LocalEngine.start(
          { ...base, kinds: ['icmp'] },
          new SystemClock(),
          { peer: onResult },
          sink,
        ),
      );
    kinds = engines.flatMap((e) => e.status.kinds);
    const jobs = planJobs(spec.peers.map(peerFromStatic), { kinds: new Set(kinds), ...mtu });
    for (const e of engines) e.reconcile('peer', jobs);
    stopAll = async () => {
      await Promise.all(engines.map((e) => e.stop()));
    };
    readCounts = () => Promise.resolve({ ...counts, failures: { ...counts.failures } });
    scrape = () => Promise.resolve(undefined);
  }
  // Job count for the peers actually probed (the first peersProbed of the list: all of them
  // unless peers.limit is below the list; which ones doesn't change the count).
  const jobs = planJobs(spec.peers.slice(0, peersProbed).map(peerFromStatic), {
    kinds: new Set(kinds),
    ...mtu,
  }).length;

  await sleep(spec.warmupMs);
  const rssPeakWarmup = peakRss();
  resetPeakRss();
  heapMax = process.memoryUsage().heapUsed;
  delay?.enable();
  const m = meter();
  // This render also resets the Agent's main-loop monitor: what later renders report is the
  // measured window's.
  const c0 = await readCounts();
  // The first scrape is the counter reading above; more follow while a whole period fits.
  let scrapes = 1;
  let mainP99S = 0;
  const runStart = performance.now();
  for (let next = spec.scrapeEveryMs; next < spec.runMs; next += spec.scrapeEveryMs) {
    await sleep(next - (performance.now() - runStart));
    mainP99S = Math.max(mainP99S, (await scrape())?.mainP99S ?? 0);
    noteHeap();
    scrapes++;
  }
  await sleep(spec.runMs - (performance.now() - runStart));
  const { wallS, cpuS, systemS } = m.stop();
  delay?.disable();
  noteHeap();
  const c1 = await readCounts();
  // Each render reports the p99 since the one before; the window's is the worst of them.
  mainP99S = Math.max(mainP99S, c1.mainP99S ?? 0);
  const rssMax = peakRss();
  const d = diff(c0, c1);
  await stopAll();
  send({
    type: 'result',
    scenario: spec.scenario,
    peers: spec.peers.length,
    peersProbed,
    discoveryMs,
    jobs,
    kinds,
    scheduledPerSec: jobs / (spec.intervalMs / 1000),
    completed: d.completed,
    failed: d.failed,
    failures: d.failures,
    completedPerSec: d.completed / wallS,
    wallS,
    cpuS,
    cpuPctOfOneCore: (100 * cpuS) / wallS,
    systemShare: cpuS > 0 ? systemS / cpuS : Number.NaN,
    cpuUsPerProbe: d.completed > 0 ? (cpuS * 1e6) / d.completed : Number.NaN,
    rssAfterImportMB: rssAfterImport / MB,
    rssBeforeStartMB: rssBeforeStart / MB,
    rssMaxMB: rssMax / MB,
    rssPeakMB: Math.max(rssPeakWarmup, rssMax) / MB,
    heapUsedMaxMB: heapMax / MB,
    mainLoopDelayP99Ms: (delay !== undefined ? loopDelaySeconds(delay, 99) : mainP99S) * 1000,
    mainLoopDelaySource: delay !== undefined ? 'bench-monitor-50ms' : 'agent-metrics',
    scrapes,
  } satisfies LoadResult);
}

exitWhenParentGoes(onParentLine);
main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`agent-load: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
