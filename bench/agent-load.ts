// One load scenario of the benchmark, in a fresh process so its CPU and RSS are its own (the
// bench's other phases would otherwise inflate the RSS high-water mark):
//
//   agent    the real Agent (udp + tcp engine on a worker thread, icmp on the main thread,
//            window store, Prometheus metrics, HTTP server), peers from the static list;
//            one /metrics render per 15 s inside the measured window, like a Prometheus scrape
//   engines  only the probe engines the Agent starts (RemoteEngine for udp/tcp, LocalEngine for
//            icmp) with the same jobs; results are just counted
//
//   node --import tsx bench/agent-load.ts '<json LoadSpec>'   -> {"type":"result",...}

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { Agent } from '../src/agent.ts';
import { loadConfig } from '../src/config/load.ts';
import type { StaticPeer } from '../src/config/settings.ts';
import { SystemClock } from '../src/core/clock.ts';
import type { ProbeKind, ProbeResult } from '../src/core/types.ts';
import { peerFromStatic } from '../src/discovery/peer-source.ts';
import { LocalEngine, RemoteEngine, type EngineHandle } from '../src/mesh/engine-client.ts';
import type { LogSink } from '../src/mesh/engine.ts';
import { planJobs } from '../src/mesh/plan.ts';
import { loadTimestamping } from '../src/native/timestamping.ts';
import { baseLength } from '../src/probes/stamp-codec.ts';
import { assertLoopback, exitWhenParentGoes, meter, send, sleep } from './lib.ts';

const rssAfterImport = process.memoryUsage().rss;

export interface LoadSpec {
  readonly scenario: 'agent' | 'engines';
  readonly peers: readonly StaticPeer[];
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
  readonly scenario: 'agent' | 'engines';
  readonly peers: number;
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
  /** High-water mark over the measured window (after warm-up). */
  readonly rssMaxMB: number;
  /** High-water mark since start, warm-up included. */
  readonly rssPeakMB: number;
  readonly heapUsedMaxMB: number;
  readonly mainLoopDelayP99Ms: number;
  readonly scrapes: number;
}

const MB = 1024 * 1024;
const IPV4_UDP_HEADERS = 28;

interface Counts {
  completed: number;
  failed: number;
  failures: Record<string, number>;
}

/** Sums every series of one metric in Prometheus text, keyed by the values of `byLabels`. */
function sumMetric(
  text: string,
  name: string,
  byLabels: readonly string[] = [],
): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    const key = byLabels.map((l) => new RegExp(`${l}="([^"]*)"`).exec(line)?.[1] ?? '').join(':');
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}

function countsFromMetrics(text: string): Counts {
  const failures = Object.fromEntries(
    sumMetric(text, 'podmesh_probe_failures_total', ['protocol', 'reason']),
  );
  return {
    completed: sumMetric(text, 'podmesh_probes_sent_total').get('') ?? 0,
    failed: sumMetric(text, 'podmesh_probes_lost_total').get('') ?? 0,
    failures,
  };
}

function diff(a: Counts, b: Counts): Counts {
  const failures: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.failures)) {
    const d = v - (a.failures[k] ?? 0);
    if (d > 0) failures[k] = d;
  }
  return { completed: b.completed - a.completed, failed: b.failed - a.failed, failures };
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as LoadSpec;
  assertLoopback(spec.bindAddress);
  for (const p of spec.peers) assertLoopback(p.address);
  const log = pino({ level: 'warn' }, pino.destination(2));
  const sink: LogSink = (level, msg, fields) => log[level](fields ?? {}, msg);
  const rssBeforeStart = process.memoryUsage().rss;
  let rssMax = rssBeforeStart;
  let rssPeak = rssBeforeStart;
  let heapMax = process.memoryUsage().heapUsed;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    rssMax = Math.max(rssMax, m.rss);
    rssPeak = Math.max(rssPeak, m.rss);
    heapMax = Math.max(heapMax, m.heapUsed);
  }, 100);
  const delay = monitorEventLoopDelay({ resolution: 10 });

  const mtu = {
    mtu: true,
    mtuBytes: spec.mtuBytes,
    udpSmallBytes: baseLength(undefined) + IPV4_UDP_HEADERS,
  };
  let stopAll: () => Promise<void>;
  let readCounts: () => Promise<Counts>;
  let scrape: () => Promise<void>;
  let kinds: ProbeKind[];

  if (spec.scenario === 'agent') {
    const config = loadConfig({
      overrides: {
        node: 'bench-self',
        network: 'pod',
        zone: 'zone-a',
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
        'peers.limit': spec.peers.length,
        'peers.static': spec.peers,
        // DNS load is measured on its own; never query the machine's resolver from a bench.
        'dns.enabled': false,
      },
    });
    const agent = await Agent.start({ config, log, version: 'bench' });
    const res = agent.results();
    kinds = (['udp', 'tcp', 'icmp'] as const).filter(
      (k) => (res.probes[k] as { enabled: boolean }).enabled,
    );
    stopAll = () => agent.stop();
    readCounts = async () => countsFromMetrics(await agent.renderMetrics());
    scrape = async () => {
      await agent.renderMetrics();
    };
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
      engines.push(await RemoteEngine.start({ ...base, kinds: offMain }, onResult, sink));
    if (want.has('icmp') && !icmpOnWorker)
      engines.push(
        await LocalEngine.start({ ...base, kinds: ['icmp'] }, new SystemClock(), onResult, sink),
      );
    kinds = engines.flatMap((e) => e.status.kinds);
    const jobs = planJobs(spec.peers.map(peerFromStatic), { kinds: new Set(kinds), ...mtu });
    for (const e of engines) e.reconcile(jobs);
    stopAll = async () => {
      await Promise.all(engines.map((e) => e.stop()));
    };
    readCounts = () => Promise.resolve({ ...counts, failures: { ...counts.failures } });
    scrape = () => Promise.resolve();
  }
  const jobs = planJobs(spec.peers.map(peerFromStatic), { kinds: new Set(kinds), ...mtu }).length;

  await sleep(spec.warmupMs);
  rssMax = process.memoryUsage().rss;
  heapMax = process.memoryUsage().heapUsed;
  delay.enable();
  const m = meter();
  const c0 = await readCounts();
  // The first scrape is the counter reading above; more follow while a whole period fits.
  let scrapes = 1;
  const runStart = performance.now();
  for (let next = spec.scrapeEveryMs; next < spec.runMs; next += spec.scrapeEveryMs) {
    await sleep(next - (performance.now() - runStart));
    await scrape();
    scrapes++;
  }
  await sleep(spec.runMs - (performance.now() - runStart));
  const { wallS, cpuS, systemS } = m.stop();
  delay.disable();
  const c1 = await readCounts();
  clearInterval(sampler);
  const last = process.memoryUsage();
  rssMax = Math.max(rssMax, last.rss);
  rssPeak = Math.max(rssPeak, last.rss);
  const d = diff(c0, c1);
  await stopAll();
  send({
    type: 'result',
    scenario: spec.scenario,
    peers: spec.peers.length,
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
    rssPeakMB: Math.max(rssPeak, rssMax) / MB,
    heapUsedMaxMB: heapMax / MB,
    mainLoopDelayP99Ms: delay.percentile(99) / 1e6,
    scrapes,
  } satisfies LoadResult);
}

exitWhenParentGoes();
main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`agent-load: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
