// `npm run bench`: measures podmesh's probing cost and timing quality in one run, every target
// compared with what this run measured (nothing is carried over from elsewhere):
//
//   1. probes per second and per CPU-second for udp (STAMP) and tcp, against responders in a
//      child process, next to a bare dgram echo / bare connect baseline
//   2. RTT median and p99 on a loopback path: podmesh udp (worker-thread engine), podmesh icmp
//      (main thread) and iputils ping, idle and with a busy main thread
//   3. CPU and RSS of an agent probing at 1,000 probes/s (fresh child process per scenario), with
//      static peers and with Kubernetes discovery against a fake API server in this process
//   4. dns: DnsProbe queries per second and per CPU-second (udp, tcp) against podmesh's
//      DnsServer in the responder process, next to bare dgram / bare tcp queries; and DnsProbe's
//      latency next to `dig +stats` (dig's own query time) on the same query in the same run
//   5. rtt-lab: bench/rtt-lab.ts's measurement on a veth path between two network namespaces of
//      its own (needs root, iproute2 and ping; skipped with the reason otherwise): podmesh's udp
//      and icmp RTT median and p99 next to ping's, idle, with a busy main thread and with a busy
//      reflector, the issue's targets for them, and the icmp comparison made like for like
//      (ping's own send path; podmesh's socket timed from a user-space T1)
//   6. soak (only with --only=soak, never by default: 30 minutes): bench/soak.ts, the bundled
//      agent at 1,000 probes/s for --soak-minutes while half of its peers fail for 30 s of every
//      minute (nftables in a network namespace of its own; needs root): RSS drift, open fds,
//      event-loop delay, and every due probe run accounted for
//   7. selection: bench/selection.ts, peer selection at 16 to 5,000 nodes (pure CPU, no network):
//      CPU per peer-list change next to the selection shipped before (kept in the bench only),
//      the share of node pairs the core sets hold, in-degree, the rotation's coverage period and
//      probes per second per agent, against the targets of issue 18
//   8. triage: triage on 20,000 generated scenarios (bench/triage.ts; random single faults at
//      1–100% on random topologies, and healthy clusters): the false-finding rate (a kind the
//      fault can't be) against ≤ 0.1%, and strong faults (half their probes lost, or round trips
//      4× their baseline) that go unnamed
//   9. series: bench/series.ts, the series one agent's /metrics holds at 5,000 nodes (the shipped
//      defaults: 32 core peers; and with peers.rotation: 14 core peers and the rotating visits),
//      by metric, the pair RTT histogram's share, against issue 18's ≤ 2,000 per agent; and the
//      hot path's cost of one pair RTT observation (slot vs prom-client Histogram child)
//  10. scale: bench/controller-scale.ts, the real controller (a process of its own, shipped
//      settings) pulling 600, 2,000 and 10,000 simulated agents' rows over HTTP on loopback
//      (another process): round time against the pull interval, CPU per round, triage's part,
//      peak RSS and /api/v1/matrix's size, against issue 18's controller targets
//
// Prints tables, then one line `BENCH_JSON {...}` with the same numbers. Sections 1-4 send only
// to 127.0.0.0/8; section 5 only inside its namespaces (198.18.250.0/24), section 6 only on the
// loopback of its own namespace, and both remove their namespaces; section 7 sends nothing. Every
// child is killed at the end, on error too. `--quick` shortens every phase (a smoke run; its
// numbers are noisier). `--baseline=<git-ref>` runs the selected sections for that commit and for
// this checkout, taking turns, and compares them (bench/baseline.ts). `--help` lists the options.
// docs/benchmarks.md explains the method.

import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import { parseAllDocuments } from 'yaml';
import type { Registry } from 'prom-client';
import type { StaticPeer } from '../src/config/settings.ts';
import { SystemClock } from '../src/core/clock.ts';
import type { ProbeTarget, ProbeResult } from '../src/core/types.ts';
import { peerFromStatic } from '../src/discovery/peer-source.ts';
import { LocalEngine, RemoteEngine, type EngineHandle } from '../src/mesh/engine-client.ts';
import type { LogSink } from '../src/mesh/family.ts';
import { planJobs } from '../src/mesh/families/peer.ts';
import { DnsProbe, type DnsQuery, type DnsTransport } from '../src/probes/dns.ts';
import { baseLength } from '../src/probes/stamp-codec.ts';
import { TcpProbe } from '../src/probes/tcp.ts';
import { UdpStampProbe } from '../src/probes/udp.ts';
import type { LoadResult, LoadSpec } from './agent-load.ts';
import { countsFromMetrics } from './metrics-counts.ts';
import { measureObserve, measureSeries, SERIES_TARGETS } from './series.ts';
import { runTriageScenarios } from './triage.ts';
import {
  PULL_INTERVAL_MS,
  SCALE_PEERS,
  SCALE_SIZES,
  SCALE_TARGETS,
  measureScale,
  type ScaleRow,
} from './controller-scale.ts';
import { PODMESH_ENTRIES, bundle } from '../src/bundle.ts';
import { agentRegistry } from './big-registry.ts';
import { abortBaseline, runBaseline } from './baseline.ts';
import {
  SELECTION_DEFAULTS,
  SELECTION_SIZES,
  SELECTION_TARGETS,
  measureHash,
  measureSelection,
  type SelectionRow,
} from './selection.ts';
import {
  BENCH_DNS_NAME,
  ROOT,
  assertLoopback,
  fmt,
  killChildren,
  meter,
  sleep,
  spawnNode,
  spawnTs,
  startPing,
  summarise,
  table,
  track,
  us,
  type JsonChild,
  type PingReply,
  type Summary,
} from './lib.ts';
import type { CpuMessage, Endpoint, ReadyMessage, ResponderSpec } from './responders.ts';
import {
  DEFAULT_OPTIONS as RTT_LAB_DEFAULTS,
  ICMP_TABLE_TITLE,
  checkTargets,
  formatIcmpTable,
  formatPhases,
  formatRttTable,
  icmpFindings,
  measureRttPath,
  rttLabUnavailable,
  systemBin,
  vethPath,
  type RttLabOptions,
  type RttLabReport,
} from './rtt-lab.ts';
import {
  SOAK_DEFAULTS,
  formatSoakTable,
  runSoak,
  soakChecks,
  soakLines,
  soakTitle,
  soakUnavailable,
} from './soak.ts';

const HELP = `usage: npm run bench -- [options]

  --only=<sections>       run just these, comma-separated: throughput, rtt, load, dns, rtt-lab,
                          selection, triage, series, scale, soak
                          (default: all but soak; rtt-lab and soak need root and are skipped with
                          the reason otherwise)
  --soak-minutes=<n>      how long the soak section runs (default 30, at least 3)
  --quick                 shorter phases: a smoke run, noisier numbers
  --baseline=<git-ref>    also run the sections for <ref> (checked out in a temporary git worktree)
                          and print a comparison, current / baseline, with a noise judgement:
                            npm run bench -- --only=load,rtt --baseline=main
  --baseline-runs=<n>     runs a side with --baseline, interleaved (default 3; --quick 2)

environment: BENCH_AGENT_RUNS, BENCH_LOAD, BENCH_KINDS, BENCH_PEERS_LIMIT, BENCH_LOAD_RUN_MS
(docs/benchmarks.md)`;
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
const argValue = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const QUICK = process.argv.includes('--quick');
/** `--baseline=main`: compare this checkout with that commit (bench/baseline.ts). */
const BASELINE = argValue('baseline');
/** Two runs at least: one run a side gives no noise to judge a difference against. */
const BASELINE_RUNS = Number(argValue('baseline-runs') ?? (QUICK ? 2 : 3));
if (!Number.isInteger(BASELINE_RUNS) || BASELINE_RUNS < 1)
  throw new Error(`--baseline-runs: a whole number of runs, at least 1`);
if (BASELINE === '') throw new Error('--baseline: name a git ref (e.g. --baseline=main)');
/** The sections whose traffic stays on loopback, against the responder process. */
const LOOPBACK_SECTIONS = ['throughput', 'rtt', 'load', 'dns'] as const;
const SECTIONS = [
  ...LOOPBACK_SECTIONS,
  'rtt-lab',
  'selection',
  'triage',
  'series',
  'scale',
  'soak',
] as const;
/** Run only when named in --only: the soak takes 30 minutes by default. */
const NOT_BY_DEFAULT: readonly string[] = ['soak'];
/** `--only=rtt,load` runs just those sections (for investigating one number). */
const ONLY: ReadonlySet<string> = new Set(
  argValue('only')?.split(',') ?? SECTIONS.filter((s) => !NOT_BY_DEFAULT.includes(s)),
);
for (const s of ONLY) {
  if (!(SECTIONS as readonly string[]).includes(s))
    throw new Error(`--only: unknown section ${s} (use ${SECTIONS.join(',')})`);
}
const scale = (ms: number): number => (QUICK ? Math.round(ms / 3) : ms);

// ---- knobs (printed with the results) -------------------------------------------------------
const THROUGHPUT = { warmupMs: scale(500), runMs: scale(3000), concurrency: 32, peers: 4 };
const RTT = {
  intervalMs: 10,
  settleMs: 250,
  windowMs: 1000,
  rounds: QUICK ? 2 : 5,
  jobsPerKind: 4,
};
const BUSY = { everyMs: 100, spinMs: 50, registryPeers: 300 };
const LOAD = {
  peerCount: 200,
  intervalMs: 1000,
  timeoutMs: 1000,
  mtuBytes: 1500,
  warmupMs: scale(3000),
  runMs: scale(15_000),
  scrapeEveryMs: 15_000,
};
/** Section 4; its throughput rows use THROUGHPUT's warm-up, run time and concurrency. */
const DNS = {
  timeoutMs: 1000,
  latencyEveryMs: 5,
  latencyQueries: QUICK ? 150 : 500,
  digRuns: QUICK ? 60 : 200,
  rounds: QUICK ? 3 : 5,
};
/**
 * Section 5 (bench/rtt-lab.ts's measurement, kernel timestamps only: the "userspace" phase, podmesh
 * before the addon, is `sudo npx tsx bench/rtt-lab.ts --phases=kernel,userspace`).
 */
const RTT_LAB: RttLabOptions = {
  ...RTT_LAB_DEFAULTS,
  phases: ['kernel'],
  ...(QUICK ? { rounds: 2, windowMs: 1500 } : {}),
  // As the pod agent runs: no CAP_NET_RAW, so icmp must come through a ping socket.
  dropNetRaw: systemBin('setpriv') !== undefined,
};
/** Section 6 (bench/soak.ts); `--quick` does not shorten it, `--soak-minutes` does. */
const SOAK_MINUTES = Number(argValue('soak-minutes') ?? SOAK_DEFAULTS.minutes);
if (!Number.isInteger(SOAK_MINUTES) || SOAK_MINUTES < 3)
  throw new Error('--soak-minutes: a whole number of minutes, at least 3');
const SOAK = { ...SOAK_DEFAULTS, minutes: SOAK_MINUTES };
const TARGETS = { busyRatio: 2, cpuPct: 10, rssMB: 100 };

const STAMP_PAYLOAD = baseLength(undefined);
const log: LogSink = (level, msg) => {
  if (level !== 'info') process.stderr.write(`[engine ${level}] ${msg}\n`);
};
const out = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

function peer(node: string, address: string, stampPort: number, tcpPort: number): StaticPeer {
  return {
    node,
    network: 'pod',
    zone: 'zone-b',
    address: assertLoopback(address),
    stampPort,
    tcpPort,
    httpPort: 1,
  };
}

function target(p: StaticPeer): ProbeTarget {
  return { peer: peerFromStatic(p), size: 'small', bytes: STAMP_PAYLOAD + 28 };
}

async function responderCpu(r: JsonChild): Promise<CpuMessage> {
  r.send('cpu');
  return r.next<CpuMessage>('cpu', 5000);
}

// ---- 1. throughput ---------------------------------------------------------------------------

interface Throughput {
  readonly name: string;
  readonly probes: number;
  readonly ok: number;
  readonly wallS: number;
  readonly cpuS: number;
  readonly perSec: number;
  readonly perCpuSec: number;
  readonly cpuUsPerProbe: number;
  /** The responder process's CPU per probe (reflector, listener or echo), for context. */
  readonly responderUsPerProbe: number;
}

/** Runs `one` from `concurrency` loops until the deadline; measures this process's CPU. */
async function drive(
  name: string,
  responders: JsonChild,
  one: () => Promise<boolean>,
): Promise<Throughput> {
  const loop = async (ms: number): Promise<{ probes: number; ok: number }> => {
    const end = performance.now() + ms;
    let probes = 0;
    let ok = 0;
    await Promise.all(
      Array.from({ length: THROUGHPUT.concurrency }, async () => {
        while (performance.now() < end) {
          if (await one()) ok++;
          probes++;
        }
      }),
    );
    return { probes, ok };
  };
  await loop(THROUGHPUT.warmupMs);
  const r0 = await responderCpu(responders);
  const m = meter();
  const { probes, ok } = await loop(THROUGHPUT.runMs);
  const { wallS, cpuS } = m.stop();
  const r1 = await responderCpu(responders);
  return result(name, probes, ok, wallS, cpuS, r1.cpuS - r0.cpuS);
}

function result(
  name: string,
  probes: number,
  ok: number,
  wallS: number,
  cpuS: number,
  responderCpuS: number,
): Throughput {
  return {
    name,
    probes,
    ok,
    wallS,
    cpuS,
    perSec: probes / wallS,
    perCpuSec: probes / cpuS,
    cpuUsPerProbe: (cpuS * 1e6) / probes,
    responderUsPerProbe: (responderCpuS * 1e6) / probes,
  };
}

/** The floor: one dgram socket, a fresh 44-byte buffer per send, replies from a bare echo. */
function bareUdp(responders: JsonChild, bindAddress: string, echo: Endpoint): Promise<Throughput> {
  return bareDgram(
    'bare dgram echo (baseline)',
    responders,
    bindAddress,
    echo.address,
    echo.echoPort!,
    (seq) => {
      const b = Buffer.alloc(STAMP_PAYLOAD);
      b.writeUInt32BE(seq >>> 0, 0);
      return b;
    },
  );
}

/**
 * One dgram socket keeping `concurrency` datagrams in flight: every reply, whatever it holds,
 * counts as a round trip and sends the next `payload(seq)`. No checks, no timers per datagram.
 */
async function bareDgram(
  name: string,
  responders: JsonChild,
  bindAddress: string,
  address: string,
  port: number,
  payload: (seq: number) => Buffer,
): Promise<Throughput> {
  assertLoopback(address);
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind({ address: bindAddress, port: 0 }, resolve));
  socket.on('error', () => undefined);
  const run = (ms: number): Promise<{ probes: number; ok: number }> =>
    new Promise((resolve) => {
      const end = performance.now() + ms;
      let inFlight = 0;
      let probes = 0;
      let seq = 0;
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        socket.removeAllListeners('message');
        clearTimeout(safety);
        resolve({ probes, ok: probes });
      };
      const sendOne = (): void => {
        inFlight++;
        socket.send(payload(seq++), port, address);
      };
      socket.on('message', () => {
        probes++;
        inFlight--;
        if (performance.now() < end) sendOne();
        else if (inFlight === 0) finish();
      });
      // A lost datagram would leave the loop waiting forever.
      const safety = setTimeout(finish, ms + 1000);
      for (let i = 0; i < THROUGHPUT.concurrency; i++) sendOne();
    });
  await run(THROUGHPUT.warmupMs);
  const r0 = await responderCpu(responders);
  const m = meter();
  const { probes, ok } = await run(THROUGHPUT.runMs);
  const { wallS, cpuS } = m.stop();
  const r1 = await responderCpu(responders);
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return result(name, probes, ok, wallS, cpuS, r1.cpuS - r0.cpuS);
}

/** The floor for tcp: connect, reset on connect, nothing else. */
function bareConnect(address: string, port: number, localAddress: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port, localAddress });
    s.on('error', () => {
      s.destroy();
      resolve(false);
    });
    s.once('connect', () => {
      s.resetAndDestroy();
      resolve(true);
    });
  });
}

async function throughput(
  responders: JsonChild,
  groups: Record<string, Endpoint[]>,
): Promise<Throughput[]> {
  const clock = new SystemClock();
  const results: Throughput[] = [];

  const udpPeers = groups.udp!.map((e, i) => peer(`tp-udp-${i}`, e.address, e.stampPorts[0]!, 1));
  const udpTargets = udpPeers.map(target);
  const udp = await UdpStampProbe.open({ clock, bindAddress: '127.0.50.100' });
  let i = 0;
  results.push(
    await drive(
      'podmesh udp (UdpStampProbe)',
      responders,
      async () => (await udp.run(udpTargets[i++ % udpTargets.length]!, 1000)).ok,
    ),
  );
  await udp.close();
  results.push(await bareUdp(responders, '127.0.52.100', groups.echo![0]!));

  const tcpTargets = groups.tcp!.map((e, j) =>
    target(peer(`tp-tcp-${j}`, e.address, 1, e.tcpPort!)),
  );
  const tcp = new TcpProbe({ clock, bindAddress: '127.0.51.100' });
  results.push(
    await drive(
      'podmesh tcp (TcpProbe)',
      responders,
      async () => (await tcp.run(tcpTargets[i++ % tcpTargets.length]!, 1000)).ok,
    ),
  );
  await tcp.close();
  const tcpEps = groups.tcp!;
  results.push(
    await drive('bare connect+reset (baseline)', responders, () => {
      const e = tcpEps[i++ % tcpEps.length]!;
      return bareConnect(e.address, e.tcpPort!, '127.0.51.101');
    }),
  );
  return results;
}

// ---- 2. RTT idle vs busy main thread ---------------------------------------------------------

type Mode = 'idle' | 'busy-prom' | 'busy-loop' | 'other-process';
const MODES: readonly Mode[] = ['idle', 'busy-prom', 'busy-loop', 'other-process'];
/** The modes that busy this process's main thread (the target applies to these). */
const BUSY_MODES: readonly Mode[] = ['busy-prom', 'busy-loop'];
const MODE_LABEL: Record<Mode, string> = {
  idle: 'idle',
  'busy-prom': `busy: prom render every ${BUSY.everyMs} ms`,
  'busy-loop': `busy: ${BUSY.spinMs} ms spin every ${BUSY.everyMs} ms`,
  'other-process': `control: same spin in another process`,
};

/**
 * The control row: the same 50 ms-in-100 ms spin, but in a separate process. It loads the CPUs
 * exactly as the busy-loop row does without touching this process's main thread, so what it
 * does to the udp p99 is CPU contention, not coupling between the main thread and the worker.
 */
const SPIN_SCRIPT = `let on = false; setInterval(() => { const t = performance.now(); while (on && performance.now() - t < ${BUSY.spinMs}); }, ${BUSY.everyMs}); process.stdin.setEncoding('utf8'); process.stdin.on('data', (d) => { on = d.trim().split('\\n').pop() === 'on'; }); process.stdin.on('end', () => process.exit(0));`;

interface RttRow {
  readonly mode: Mode;
  readonly udp: Summary & { lost: number };
  readonly icmp: (Summary & { lost: number }) | null;
  readonly ping: Summary | null;
}

interface RttReport {
  readonly rows: RttRow[];
  readonly icmpNote: string;
  readonly pingNote: string;
  readonly renderMs: Summary;
  readonly registrySeries: number;
}

/** Switches the main thread's (or the control process's) busy work on for one mode. */
function startBusy(
  mode: Mode,
  registry: Registry,
  renderMs: number[],
  spinner: JsonChild | undefined,
): () => void {
  if (mode === 'idle') return () => undefined;
  if (mode === 'other-process') {
    spinner?.send('on');
    return () => spinner?.send('off');
  }
  const timer = setInterval(() => {
    const t0 = performance.now();
    if (mode === 'busy-prom') {
      void registry.metrics().then(() => renderMs.push(performance.now() - t0));
    } else {
      while (performance.now() - t0 < BUSY.spinMs) {
        // spin: a synchronous 50 ms block of the main thread
      }
    }
  }, BUSY.everyMs);
  return () => clearInterval(timer);
}

function pingAvailable(): boolean {
  const r = spawnSync('ping', ['-V'], { encoding: 'utf8' });
  return r.error === undefined && r.status === 0;
}

async function rtt(groups: Record<string, Endpoint[]>): Promise<RttReport> {
  const ep = groups.rtt![0]!;
  const peers = ep.stampPorts.map((port, k) => peer(`rtt-${k}`, ep.address, port, 1));
  const jobs = planJobs(peers.map(peerFromStatic), {
    kinds: new Set(['udp', 'icmp']),
    mtu: false,
    mtuBytes: 1500,
    udpSmallBytes: STAMP_PAYLOAD + 28,
  });
  const samples: { kind: string; sentAtMs: number; rtt: number | null }[] = [];
  const onResult = (r: ProbeResult): void => {
    samples.push({ kind: r.kind, sentAtMs: r.sentAtMs, rtt: r.ok ? r.rttSeconds : null });
  };
  const base = {
    bindAddress: '127.0.60.100',
    intervalMs: RTT.intervalMs,
    timeoutMs: 1000,
    jitter: 0.1,
    concurrency: 16,
  };
  const engines: EngineHandle[] = [];
  const { registry, series } = agentRegistry(BUSY.registryPeers);
  const renderMs: number[] = [];
  const windows: { mode: Mode; from: number; to: number }[] = [];
  const hasPing = pingAvailable();
  let pings: PingReply[] = [];
  const spinner = spawnNode(['-e', SPIN_SCRIPT], ROOT, 'spinner');
  let icmpNote: string;
  try {
    engines.push(await RemoteEngine.start({ ...base, kinds: ['udp'] }, { peer: onResult }, log));
    const icmpEngine = await LocalEngine.start(
      { ...base, kinds: ['icmp'] },
      new SystemClock(),
      { peer: onResult },
      log,
    );
    engines.push(icmpEngine);
    // On the main thread on purpose: it shows what a busy main thread does to a probe on it.
    if (icmpEngine.status.icmp?.enabled !== true)
      icmpNote = `skipped: ${icmpEngine.status.icmp?.detail ?? 'icmp unavailable'}`;
    else icmpNote = `main-thread engine (LocalEngine; ${icmpEngine.status.icmp.detail})`;
    for (const e of engines) e.reconcile('peer', jobs);
    await sleep(RTT.settleMs);
    const sectionMs = RTT.rounds * MODES.length * (RTT.settleMs + RTT.windowMs);
    // At the probes' own pace for the whole section.
    const count = Math.ceil(sectionMs / RTT.intervalMs) + 50;
    const ping = hasPing
      ? startPing(['ping'], assertLoopback(ep.address), {
          intervalMs: RTT.intervalMs,
          count,
          deadlineS: (count * RTT.intervalMs) / 1000 + 10,
        })
      : undefined;
    // Modes take turns in short windows, in a rotating order, so a hiccup of this shared
    // machine lands in one short window of one mode instead of a whole mode.
    for (let round = 0; round < RTT.rounds; round++) {
      for (let k = 0; k < MODES.length; k++) {
        const mode = MODES[(k + round) % MODES.length]!;
        const stopBusy = startBusy(mode, registry, renderMs, spinner);
        try {
          await sleep(RTT.settleMs);
          const from = Date.now();
          await sleep(RTT.windowMs);
          windows.push({ mode, from, to: Date.now() });
        } finally {
          stopBusy();
        }
      }
    }
    await sleep(300); // answers still in flight from the last window
    if (ping !== undefined) {
      pings = await Promise.race([ping.done, sleep(20_000).then(() => [])]);
    }
  } finally {
    await Promise.all(engines.map((e) => e.stop()));
    await spinner.stop();
  }
  const rows = MODES.map((mode): RttRow => {
    const mine = windows.filter((w) => w.mode === mode);
    const inside = (atMs: number): boolean => mine.some((w) => atMs >= w.from && atMs < w.to);
    const pick = (kind: string): Summary & { lost: number } => {
      const inWindow = samples.filter((s) => s.kind === kind && inside(s.sentAtMs));
      const ok = inWindow.flatMap((s) => (s.rtt === null ? [] : [s.rtt]));
      return { ...summarise(ok), lost: inWindow.length - ok.length };
    };
    const icmp = pick('icmp');
    return {
      mode,
      udp: pick('udp'),
      icmp: icmp.n + icmp.lost > 0 ? icmp : null,
      ping: hasPing ? summarise(pings.filter((p) => inside(p.atMs)).map((p) => p.rtt)) : null,
    };
  });
  return {
    rows,
    icmpNote,
    pingNote: hasPing
      ? `iputils ping -i ${RTT.intervalMs / 1000}`
      : 'skipped: ping is not installed (apt-get install -y iputils-ping)',
    renderMs: summarise(renderMs),
    registrySeries: series,
  };
}

// ---- 3. load ---------------------------------------------------------------------------------

/**
 * Bundles the load driver with the agent the way `npm run build` bundles podmesh (src/bundle.ts:
 * same esbuild options, same externals, the addon beside the bundle) into a temporary
 * directory, so the load scenarios run what the image runs. From source, tsx's loader would cost
 * ~30 MB of RSS in the main thread and again in the engine's worker thread.
 */
async function buildDist(): Promise<{ dir: string; note: string } | { error: string }> {
  const dir = mkdtempSync(join(os.tmpdir(), 'podmesh-bench-'));
  const t0 = performance.now();
  try {
    const r = await bundle(
      ROOT,
      {
        'agent-load': join(ROOT, 'bench/agent-load.ts'),
        'engine-worker': join(ROOT, PODMESH_ENTRIES['engine-worker']),
      },
      join(dir, 'bundle'),
    );
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    return {
      dir,
      note: `bundled with esbuild as \`npm run build\` does in ${fmt((performance.now() - t0) / 1000, 1)} s (${r.files} files, ${fmt(r.bytes / 1024, 0)} KiB; timestamping addon ${r.addon ? 'beside it' : 'NOT built: user-space timestamps'})`,
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    return { error: `esbuild failed: ${(e as Error).message.split('\n').slice(0, 3).join(' | ')}` };
  }
}

/** BENCH_AGENT_RUNS: how many times the Agent scenario runs (the targets read the medians). */
const AGENT_RUNS = Math.max(1, Number(process.env['BENCH_AGENT_RUNS'] ?? (QUICK ? 1 : 3)));

/** Each measured column's median over `runs`; the rest from the run with the median CPU. */
function medianRun(runs: readonly LoadResult[]): LoadResult {
  const med = (f: (r: LoadResult) => number): number => {
    const v = runs.map(f).sort((a, b) => a - b);
    const m = Math.floor(v.length / 2);
    return v.length % 2 === 1 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
  };
  const byCpu = [...runs].sort((a, b) => a.cpuPctOfOneCore - b.cpuPctOfOneCore);
  return {
    ...byCpu[Math.floor(byCpu.length / 2)]!,
    cpuPctOfOneCore: med((r) => r.cpuPctOfOneCore),
    cpuUsPerProbe: med((r) => r.cpuUsPerProbe),
    systemShare: med((r) => r.systemShare),
    completedPerSec: med((r) => r.completedPerSec),
    rssMaxMB: med((r) => r.rssMaxMB),
    rssPeakMB: med((r) => r.rssPeakMB),
    heapUsedMaxMB: med((r) => r.heapUsedMaxMB),
    mainLoopDelayP99Ms: med((r) => r.mainLoopDelayP99Ms),
  };
}

const LOAD_LABEL: Record<LoadSpec['scenario'], string> = {
  engines: 'engines only (placed as the Agent places them)',
  agent: 'Agent (engines+store+metrics+HTTP)',
  'agent-k8s': 'Agent, Kubernetes discovery (fake API server)',
};

type Runner = { readonly kind: 'dist'; readonly dir: string } | { readonly kind: 'source' };

/** What the agent-k8s scenario's agent finds in its API server. */
const K8S = {
  namespace: 'podmesh',
  selfNode: 'bench-self',
  /** Address of the API server (in this process, not the measured one). */
  apiHost: '127.0.81.1',
  /** kubelet's default nodeStatusReportFrequency: each Node's status is rewritten this often. */
  nodeStatusEveryMs: 5 * 60_000,
  /** Images a Node's status lists (a real one lists every image cached on it). */
  imagesPerNode: 40,
};

interface FakeCluster {
  readonly kubeconfig: string;
  readonly pods: number;
  readonly nodes: number;
  /** Node status updates sent so far (watch events the agent received). */
  heartbeats(): number;
  /** Requests the API server answered, by verb (list, watch). */
  requests(): Record<string, number>;
  stop(): Promise<void>;
}

/**
 * The API server of the agent-k8s scenario, in this process (dynamically imported: the client
 * library it pulls in stays out of the other sections): one agent Pod per responder, built from
 * deploy/base/agent-pod.yaml's template as the DaemonSet controller and kubelet would fill it in,
 * with the responder's address as podIP and the ports it really listens on as the named
 * container ports (`stamp`, `tcp`, `http`: what discovery reads); one Node per Pod with its
 * zone and a realistic status; the measured agent's own Pod and Node; and, while it runs, each
 * Node's status rewritten once per kubelet report period, spread evenly.
 */
async function startFakeCluster(
  peers: readonly StaticPeer[],
  selfAddress: string,
): Promise<FakeCluster> {
  const { FakeApiServer, nodeObject } = await import('../test/support/fake-apiserver.ts');
  const api = await FakeApiServer.start({ host: assertLoopback(K8S.apiHost) });
  const ds = parseAllDocuments(readFileSync(join(ROOT, 'deploy/base/agent-pod.yaml'), 'utf8'))
    .map((d) => d.toJS() as Record<string, unknown>)
    .find((d) => d['kind'] === 'DaemonSet') as {
    metadata: { name: string };
    spec: {
      template: {
        metadata: { labels: Record<string, string> };
        spec: { containers: { ports?: { name: string; containerPort: number }[] }[] };
      };
    };
  };
  const dsUid = '5b2f0b9e-6c1e-4a55-9d43-000000000001';
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const pod = (p: StaticPeer, k: number): Parameters<typeof api.upsert>[0] => {
    const spec = structuredClone(ds.spec.template.spec);
    spec.containers[0]!.ports = spec.containers[0]!.ports?.map((port) => ({
      ...port,
      containerPort:
        { http: p.httpPort, stamp: p.stampPort, tcp: p.tcpPort }[port.name] ?? port.containerPort,
    }));
    const name = `${ds.metadata.name}-${k.toString(36).padStart(5, '0')}`;
    return {
      kind: 'Pod',
      metadata: {
        name,
        generateName: `${ds.metadata.name}-`,
        namespace: K8S.namespace,
        labels: {
          ...ds.spec.template.metadata.labels,
          'controller-revision-hash': '6d4b7c9f8d',
          'pod-template-generation': '1',
        },
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'DaemonSet',
            name: ds.metadata.name,
            uid: dsUid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: { ...spec, nodeName: p.node },
      status: {
        phase: 'Running',
        hostIP: p.address,
        podIP: p.address,
        podIPs: [{ ip: p.address }],
        startTime: now,
        qosClass: 'Burstable',
        conditions: [
          'PodReadyToStartContainers',
          'Initialized',
          'Ready',
          'ContainersReady',
          'PodScheduled',
        ].map((type) => ({ type, status: 'True', lastTransitionTime: now })),
        containerStatuses: [
          {
            name: 'agent',
            ready: true,
            started: true,
            restartCount: 0,
            image: 'ghcr.io/podmesh/podmesh:bench',
            imageID: `ghcr.io/podmesh/podmesh@sha256:${'0'.repeat(64)}`,
            containerID: `containerd://${k.toString(16).padStart(64, '0')}`,
            state: { running: { startedAt: now } },
          },
        ],
      },
    };
  };
  const node = (name: string, zone: string, address: string): Parameters<typeof api.upsert>[0] => {
    const o = nodeObject({ name, zone, region: 'bench-region' });
    const heartbeat = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    o['status'] = {
      conditions: [
        ...['MemoryPressure', 'DiskPressure', 'PIDPressure'].map((type) => ({
          type,
          status: 'False',
          lastHeartbeatTime: heartbeat,
          lastTransitionTime: now,
          reason: `KubeletHasNo${type}`,
        })),
        {
          type: 'Ready',
          status: 'True',
          lastHeartbeatTime: heartbeat,
          lastTransitionTime: now,
          reason: 'KubeletReady',
          message: 'kubelet is posting ready status',
        },
      ],
      addresses: [
        { type: 'InternalIP', address },
        { type: 'Hostname', address: name },
      ],
      capacity: { cpu: '4', memory: '16384Mi', pods: '110', 'ephemeral-storage': '100Gi' },
      allocatable: { cpu: '3920m', memory: '15100Mi', pods: '110', 'ephemeral-storage': '92Gi' },
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: name,
        systemUUID: name,
        bootID: name,
        kernelVersion: '6.1.0-bench',
        osImage: 'Debian GNU/Linux 12 (bookworm)',
        containerRuntimeVersion: 'containerd://2.0.0',
        kubeletVersion: 'v1.31.0',
        kubeProxyVersion: 'v1.31.0',
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
      // Dropped by discovery's trim once parsed, but on the wire and parsed at every event.
      images: Array.from({ length: K8S.imagesPerNode }, (_, i) => ({
        names: [
          `registry.example/team-${i}/service@sha256:${i.toString(16).padStart(64, 'a')}`,
          `registry.example/team-${i}/service:v1.${i}.0`,
        ],
        sizeBytes: 50_000_000 + i * 1_000_003,
      })),
    };
    return o;
  };
  const nodeNames = new Map<string, string>();
  peers.forEach((p, k) => {
    api.upsert(pod(p, k + 1));
    nodeNames.set(p.node, p.zone);
    api.upsert(node(p.node, p.zone, p.address));
  });
  // The measured agent's own Pod (it learns its zone from its Node, as in a cluster).
  api.upsert(
    pod(
      {
        node: K8S.selfNode,
        network: 'pod',
        zone: 'zone-a',
        address: selfAddress,
        httpPort: 9860,
        stampPort: 9862,
        tcpPort: 9863,
      },
      0,
    ),
  );
  nodeNames.set(K8S.selfNode, 'zone-a');
  api.upsert(node(K8S.selfNode, 'zone-a', selfAddress));

  const names = [...nodeNames];
  let beats = 0;
  const timer = setInterval(
    () => {
      const [name, zone] = names[beats++ % names.length]!;
      api.upsert(node(name, zone, peers.find((p) => p.node === name)?.address ?? selfAddress));
    },
    Math.max(10, K8S.nodeStatusEveryMs / names.length),
  );
  const dir = mkdtempSync(join(os.tmpdir(), 'podmesh-bench-k8s-'));
  const kubeconfig = join(dir, 'kubeconfig.yaml');
  writeFileSync(kubeconfig, api.kubeConfigYaml(K8S.namespace));
  return {
    kubeconfig,
    pods: peers.length + 1,
    nodes: names.length,
    heartbeats: () => beats,
    requests: () => ({ list: api.listCount(), watch: api.watchCount() }),
    async stop() {
      clearInterval(timer);
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function load(
  scenario: LoadSpec['scenario'],
  peers: StaticPeer[],
  bindAddress: string,
  runner: Runner,
  extra: Partial<LoadSpec> = {},
): Promise<LoadResult & { runner: Runner['kind'] }> {
  const { peerCount: _n, ...knobs } = LOAD;
  // BENCH_KINDS=udp,tcp limits the engines scenario to some probe kinds (where does CPU go?).
  const kinds = process.env['BENCH_KINDS']?.split(',') as LoadSpec['engineKinds'] | undefined;
  // BENCH_LOAD_RUN_MS=90000: a longer window, for RSS once the 60 s window store is full.
  const runMs = Number(process.env['BENCH_LOAD_RUN_MS'] ?? knobs.runMs);
  const spec: LoadSpec = {
    scenario,
    peers,
    bindAddress,
    ...knobs,
    runMs,
    ...(kinds !== undefined ? { engineKinds: kinds } : {}),
    ...extra,
  };
  const arg = JSON.stringify(spec);
  // The Node flags a deployed agent runs with (deploy/Dockerfile ENTRYPOINT + the DaemonSet NODE_OPTIONS).
  const child =
    runner.kind === 'dist'
      ? spawnNode(
          [...SHIPPED_NODE_FLAGS, join(runner.dir, 'bundle/agent-load.js'), arg],
          runner.dir,
          'bundle/agent-load.js',
        )
      : spawnNode(
          [...SHIPPED_NODE_FLAGS, '--import', 'tsx', 'bench/agent-load.ts', arg],
          ROOT,
          'bench/agent-load.ts',
        );
  // The agent asks for each scrape; this process makes it over HTTP, as Prometheus would, and
  // answers with the counts, so parsing the text is not counted as the agent's CPU or memory.
  let measuring = true;
  const scraper = (async () => {
    while (measuring) {
      let ask: { id: number; url: string };
      try {
        ask = await child.next('scrape', LOAD.warmupMs + runMs + 60_000);
      } catch {
        return; // the child is gone or finished: nothing more to scrape
      }
      try {
        assertLoopback(new URL(ask.url).hostname);
        const res = await fetch(ask.url, { headers: { accept: 'text/plain;version=0.0.4' } });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const counts = countsFromMetrics(await res.text());
        child.send(JSON.stringify({ type: 'scraped', id: ask.id, counts }));
      } catch (e) {
        child.send(JSON.stringify({ type: 'scraped', id: ask.id, error: (e as Error).message }));
      }
    }
  })();
  try {
    return {
      ...(await child.next<LoadResult>('result', LOAD.warmupMs + runMs + 60_000)),
      runner: runner.kind,
    };
  } finally {
    measuring = false;
    await child.stop();
    await scraper;
  }
}

/**
 * The Node flags a deployed agent runs with, read from where they ship: the image's ENTRYPOINT
 * (deploy/Dockerfile) and the agent DaemonSet's NODE_OPTIONS (deploy/base/agent-pod.yaml).
 */
const SHIPPED_NODE_FLAGS: readonly string[] = shippedAgentNodeFlags();

function shippedAgentNodeFlags(): string[] {
  const dockerfile = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
  const entry = /^ENTRYPOINT (\[.*\])\s*$/m.exec(dockerfile)?.[1];
  if (entry === undefined) throw new Error('deploy/Dockerfile has no ENTRYPOINT ["node", ...]');
  const flags = (JSON.parse(entry) as string[]).filter((a) => a.startsWith('--'));
  const ds = parseAllDocuments(readFileSync(join(ROOT, 'deploy/base/agent-pod.yaml'), 'utf8'))
    .map((d) => d.toJS() as { kind?: string; spec?: { template?: { spec?: unknown } } })
    .find((d) => d.kind === 'DaemonSet');
  const containers =
    (ds?.spec?.template?.spec as { containers?: { env?: { name: string; value?: string }[] }[] })
      ?.containers ?? [];
  const nodeOptions = containers[0]?.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
  return [...flags, ...nodeOptions.split(/\s+/).filter((f) => f !== '')];
}

// ---- 4. dns ----------------------------------------------------------------------------------

/** A DNS answer frame over TCP: connect, one length-prefixed query, read the answer, reset. */
function bareTcpQuery(
  address: string,
  port: number,
  localAddress: string,
  frame: Buffer,
): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port, localAddress });
    let buf: Buffer = Buffer.alloc(0);
    s.on('error', () => {
      s.destroy();
      resolve(false);
    });
    s.on('close', () => resolve(false));
    s.once('connect', () => s.write(frame));
    s.on('data', (chunk: Buffer) => {
      // Only the length prefix is read: the frame is complete, nothing is checked.
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (buf.length >= 2 && buf.length >= buf.readUInt16BE(0) + 2) {
        s.resetAndDestroy();
        resolve(true);
      }
    });
  });
}

interface DigRun {
  /** dig's own ";; Query time", µs (with -u) or whole ms × 1000 (without). */
  readonly queryUs: number | null;
  /** The whole dig process, spawn to exit: not a query latency. */
  readonly wallMs: number;
  readonly status: string | null;
}

interface DigInfo {
  readonly available: boolean;
  readonly version: string;
  /** dig understands -u (query time in µs); without it dig prints whole milliseconds. */
  readonly usec: boolean;
}

function digInfo(): DigInfo {
  const v = spawnSync('dig', ['-v'], { encoding: 'utf8' });
  if (v.error !== undefined || v.status !== 0)
    return { available: false, version: '', usec: false };
  const h = spawnSync('dig', ['-h'], { encoding: 'utf8' });
  return {
    available: true,
    version: `${v.stdout}${v.stderr}`.trim(),
    usec: /^\s+-u\s/m.test(`${h.stdout}${h.stderr}`),
  };
}

/** The dig arguments for the same query DnsProbe sends: RD set, no EDNS, one try. */
function digArgs(
  address: string,
  port: number,
  name: string,
  tcp: boolean,
  usec: boolean,
): string[] {
  return [
    `@${assertLoopback(address)}`,
    '-p',
    String(port),
    '+tries=1',
    '+time=1',
    '+stats',
    '+noedns',
    ...(tcp ? ['+tcp'] : []),
    ...(usec ? ['-u'] : []),
    `${name}.`,
    'A',
  ];
}

function digOnce(args: readonly string[]): Promise<DigRun> {
  const t0 = performance.now();
  const child = track(spawn('dig', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let text = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (c: string) => (text += c));
  child.stderr?.on('data', () => undefined);
  return new Promise((resolve) => {
    const finish = (): void => {
      const wallMs = performance.now() - t0;
      const m = /^;; Query time: (\d+) (usec|msec)/m.exec(text);
      const status = /status: ([A-Z]+)/.exec(text)?.[1] ?? null;
      const queryUs = m === null ? null : Number(m[1]) * (m[2] === 'msec' ? 1000 : 1);
      resolve({ queryUs, wallMs, status });
    };
    child.on('error', finish);
    child.on('close', finish);
  });
}

interface PacedResult {
  readonly seconds: number[];
  readonly outcomes: Record<string, number>;
}

/** `n` queries started every `everyMs` (not waiting for answers), then all answers awaited. */
async function paced(
  probe: DnsProbe,
  q: DnsQuery,
  n: number,
  everyMs: number,
  into: PacedResult,
): Promise<void> {
  const t0 = performance.now();
  const runs: Promise<void>[] = [];
  for (let k = 0; k < n; k++) {
    const wait = t0 + k * everyMs - performance.now();
    if (wait > 0) await sleep(wait);
    runs.push(
      probe.run(q, DNS.timeoutMs).then((r) => {
        into.outcomes[r.outcome] = (into.outcomes[r.outcome] ?? 0) + 1;
        if (r.outcome === 'noerror') into.seconds.push(r.seconds);
      }),
    );
  }
  await Promise.all(runs);
}

interface LatencyRow {
  readonly transport: DnsTransport;
  readonly podmesh: Summary & { outcomes: Record<string, number> };
  /** dig's own query time, seconds; null when dig is missing. */
  readonly dig: (Summary & { failed: number; statuses: Record<string, number> }) | null;
  /** What dig +stats prints without -u: whole ms (truncated), as seconds. */
  readonly digWholeMs: Summary | null;
  readonly digWallMs: Summary | null;
}

interface DnsReport {
  readonly server: string;
  readonly name: string;
  readonly throughput: Throughput[];
  readonly latency: LatencyRow[];
  readonly dig: DigInfo;
  readonly digNote: string;
}

async function dns(responders: JsonChild, groups: Record<string, Endpoint[]>): Promise<DnsReport> {
  const ep = groups.dns![0]!;
  const address = assertLoopback(ep.address);
  const port = ep.dnsPort!;
  const clock = new SystemClock();
  const udpQ: DnsQuery = {
    server: address,
    port,
    name: BENCH_DNS_NAME,
    type: 'A',
    transport: 'udp',
  };
  const tcpQ: DnsQuery = { ...udpQ, transport: 'tcp' };
  const wire = dnsPacket.encode({
    type: 'query',
    id: 0,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: 'A', name: BENCH_DNS_NAME, class: 'IN' }],
  });
  const frame = Buffer.alloc(2 + wire.length);
  frame.writeUInt16BE(wire.length, 0);
  wire.copy(frame, 2);

  // Throughput: same knobs as section 1.
  const tp: Throughput[] = [];
  const probe = await DnsProbe.open({ clock, bindAddress: '127.0.53.100' });
  try {
    tp.push(
      await drive(
        'podmesh dns udp (DnsProbe)',
        responders,
        async () => (await probe.run(udpQ, DNS.timeoutMs)).outcome === 'noerror',
      ),
    );
    tp.push(
      await bareDgram(
        'bare dgram query (baseline)',
        responders,
        '127.0.53.101',
        address,
        port,
        (seq) => {
          const b = Buffer.from(wire);
          b.writeUInt16BE(seq & 0xffff, 0);
          return b;
        },
      ),
    );
    tp.push(
      await drive(
        'podmesh dns tcp (DnsProbe)',
        responders,
        async () => (await probe.run(tcpQ, DNS.timeoutMs)).outcome === 'noerror',
      ),
    );
    tp.push(
      await drive('bare tcp query (baseline)', responders, () =>
        bareTcpQuery(address, port, '127.0.53.102', frame),
      ),
    );
  } finally {
    await probe.close();
  }

  // Latency: podmesh at a steady pace and dig one after another, taking turns in rounds so
  // both see the same machine; never at the same time, so neither loads the other's CPU.
  const info = digInfo();
  const lat = await DnsProbe.open({ clock, bindAddress: '127.0.53.110' });
  const mine: Record<DnsTransport, PacedResult> = {
    udp: { seconds: [], outcomes: {} },
    tcp: { seconds: [], outcomes: {} },
  };
  const digs: Record<DnsTransport, DigRun[]> = { udp: [], tcp: [] };
  try {
    for (let round = 0; round < DNS.rounds; round++) {
      for (const transport of ['udp', 'tcp'] as const) {
        await paced(
          lat,
          transport === 'udp' ? udpQ : tcpQ,
          Math.round(DNS.latencyQueries / DNS.rounds),
          DNS.latencyEveryMs,
          mine[transport],
        );
        if (!info.available) continue;
        const args = digArgs(address, port, BENCH_DNS_NAME, transport === 'tcp', info.usec);
        for (let k = 0; k < Math.round(DNS.digRuns / DNS.rounds); k++)
          digs[transport].push(await digOnce(args));
      }
    }
  } finally {
    await lat.close();
  }
  const latency = (['udp', 'tcp'] as const).map((transport): LatencyRow => {
    const d = digs[transport];
    const ok = d.flatMap((r) => (r.queryUs !== null && r.status === 'NOERROR' ? [r.queryUs] : []));
    const statuses: Record<string, number> = {};
    for (const r of d)
      statuses[r.status ?? 'no answer'] = (statuses[r.status ?? 'no answer'] ?? 0) + 1;
    return {
      transport,
      podmesh: { ...summarise(mine[transport].seconds), outcomes: mine[transport].outcomes },
      dig: info.available
        ? { ...summarise(ok.map((x) => x / 1e6)), failed: d.length - ok.length, statuses }
        : null,
      digWholeMs:
        info.available && info.usec ? summarise(ok.map((x) => Math.floor(x / 1000) / 1000)) : null,
      digWallMs: info.available ? summarise(d.map((r) => r.wallMs)) : null,
    };
  });
  return {
    server: `${address}:${port}`,
    name: BENCH_DNS_NAME,
    throughput: tp,
    latency,
    dig: info,
    digNote: !info.available
      ? 'skipped: dig is not installed (apt-get install -y bind9-dnsutils)'
      : info.usec
        ? `${info.version}, run with -u: its own ";; Query time" in µs (plain +stats prints whole ms, truncated)`
        : `${info.version}: its own ";; Query time" in whole ms (truncated); this dig has no -u`,
  };
}

// ---- 5. rtt-lab --------------------------------------------------------------------------------

/**
 * bench/rtt-lab.ts's measurement on a veth path between two namespaces of its own: podmesh's udp
 * and icmp next to ping, idle, busy main thread and busy reflector, plus the send-path prober
 * that shows where podmesh's icmp and ping part ways. Adds the issue's targets to `targets`.
 */
async function rttLabSection(targets: Target[]): Promise<unknown> {
  const title = `5. RTT fidelity on a lab path: two network namespaces joined by a veth pair (198.18.250.0/24), podmesh (kernel timestamps, probe engine on a worker thread${RTT_LAB.dropNetRaw ? ', no CAP_NET_RAW' : ''}) next to iputils ping at the same time; one udp and one icmp probe every ${RTT_LAB.intervalMs} ms, ping -i ${RTT_LAB.intervalMs / 1000}; conditions interleaved: ${RTT_LAB.rounds} rounds × ${RTT_LAB.windowMs / 1000} s windows each; µs`;
  const why = rttLabUnavailable();
  if (why !== undefined) {
    out(`\n${title}\nskipped: ${why}`);
    return { skipped: why };
  }
  const path = vethPath();
  labDown = path.down;
  let report: RttLabReport;
  try {
    report = await measureRttPath(path, RTT_LAB);
  } finally {
    path.down();
    labDown = undefined;
  }
  out(formatRttTable(report, title));
  for (const line of formatPhases(report)) out(line);
  const icmp = formatIcmpTable(report, `5b. ${ICMP_TABLE_TITLE}`);
  if (icmp !== undefined) out(icmp);
  for (const line of icmpFindings(report)) out(`  ${line}`);
  for (const p of report.phases) if (p.icmpDetailNote !== undefined) out(p.icmpDetailNote);
  const checks = checkTargets(report);
  targets.push(
    ...checks.map((c): Target => ({
      name: c.name,
      measured: c.measuredUs,
      limit: c.limitUs,
      limitText: c.limit,
      unit: 'µs',
      pass: c.pass,
      ...(c.note !== undefined ? { note: c.note } : {}),
    })),
  );
  const { down: _down, ...pathData } = path;
  return { ...report, path: pathData, targets: checks };
}

// ---- 6. soak -----------------------------------------------------------------------------------

/**
 * bench/soak.ts: the agent as shipped (the bundle when it builds), for SOAK.minutes under a fault
 * flapping every minute, in a network namespace of its own. Adds its targets to `targets`.
 */
async function soakSection(targets: Target[]): Promise<unknown> {
  const why = soakUnavailable();
  if (why !== undefined) {
    out(`\n${soakTitle({ ...SOAK, nodeFlags: SHIPPED_NODE_FLAGS })}\nskipped: ${why}`);
    return { skipped: why };
  }
  let buildNote = '';
  if (distDir === undefined) {
    const built = await buildDist();
    if ('dir' in built) distDir = built.dir;
    buildNote =
      'dir' in built
        ? `build: ${built.note}`
        : `could not compile (${built.error}); the soak runs the agent from source`;
  }
  out(
    `\nsoak: ${SOAK.minutes} min after ${SOAK.warmupMs / 1000} s warm-up, started ${new Date().toISOString()} (progress on stderr once a minute)`,
  );
  const report = await runSoak(
    { ...SOAK, nodeFlags: SHIPPED_NODE_FLAGS, ...(distDir !== undefined ? { distDir } : {}) },
    (down) => (labDown = down),
  );
  out(formatSoakTable(report));
  if (buildNote !== '') out(buildNote);
  for (const line of soakLines(report)) out(line);
  const checks = soakChecks(report);
  targets.push(
    ...checks.map((c): Target => ({
      name: c.name,
      measured: c.measured,
      limit: c.limit,
      ...(c.limitText !== undefined ? { limitText: c.limitText } : {}),
      unit: c.unit,
      pass: c.pass,
      ...(c.informational === true ? { informational: true } : {}),
    })),
  );
  return { ...report, targets: checks };
}

// ---- 7. selection ---------------------------------------------------------------------------

/** Section 7: bench/selection.ts's table and targets (pure CPU; no responders, no network). */
function selectionSection(targets: Target[]): unknown {
  const hash = measureHash();
  out(
    `7. hashing one (node, peer) score: SHA-256 (as shipped before) ${fmt(hash.sha256Us, 2)} µs, FNV-1a + fmix32 ${fmt(hash.fnvUs, 2)} µs; chi-square of 100,000 scores over 64 buckets ${fmt(hash.chiSquare64, 1)} (uniform: 63 ± 11)`,
  );
  const rows = SELECTION_SIZES.map((n) => measureSelection(n, QUICK));
  const pct = (x: number): string => `${fmt(x * 100, 1)}%`;
  const { plan, intervalMs } = SELECTION_DEFAULTS;
  out(
    table(
      `7. Peer selection per agent, 2 agents a node, 3 zones; peers.rotation on, defaults peers.limit ${plan.limit}, peers.core ${plan.core}, peers.watchers ${plan.watchers}, probes.intervalMs ${intervalMs} (${plan.jobsPerPeer} jobs a core peer, ${plan.jobsPerVisit} a rotating visit); "before": the selection shipped before, same run`,
      [
        'nodes',
        'CPU ms/change',
        'before',
        'ratio',
        'core pairs',
        'before',
        'pairs in 1 period',
        'in-degree nodes (agents)',
        'before',
        'core',
        'lanes',
        'coverage period s',
        'probes/s',
        'before',
      ],
      rows.map((r) => [
        String(r.nodes),
        fmt(r.changeMs, 2),
        fmt(r.oldChangeMs, 2),
        `${fmt(r.oldChangeMs / Math.max(r.changeMs, 1e-3), 0)}×`,
        pct(r.corePairsShare) + (r.sampledSources < r.nodes ? ` (${r.sampledSources} src)` : ''),
        pct(r.oldCorePairsShare),
        pct(r.periodPairsShare),
        `${r.inDegreeNodesMin} (${r.inDegreeAgentsMin})${r.inDegreeSampled !== null ? ` of ${r.inDegreeSampled} sampled, from watchers` : ''}`,
        r.oldInDegreeNodesMin === null ? 'n/a' : String(r.oldInDegreeNodesMin),
        String(r.coreSize),
        String(r.lanes),
        fmt(r.coveragePeriodS, 0),
        fmt(r.probesPerSecond, 0),
        fmt(r.oldProbesPerSecond, 0),
      ]),
    ),
  );
  const at = (n: number): SelectionRow => rows.find((r) => r.nodes === n)!;
  const T = SELECTION_TARGETS;
  targets.push(
    check(
      'selection: CPU per peer-list change at 5,000 nodes',
      at(5000).changeMs,
      T.changeMsAt5000,
      'ms',
    ),
    check(
      'selection: coverage period at 5,000 nodes',
      at(5000).coveragePeriodS,
      T.coverageSAt5000,
      's',
    ),
    check(
      'selection: coverage period at 500 nodes',
      at(500).coveragePeriodS,
      T.coverageSAt500,
      's',
    ),
    {
      ...check(
        'selection: probes/s per agent, most of any size, vs before at the default limit',
        Math.max(...rows.map((r) => r.probesPerSecond)),
        Math.max(...rows.map((r) => r.oldProbesPerSecond)),
        'probes/s',
      ),
    },
    {
      name: 'selection: in-degree (other nodes holding a node in a core set), fewest at any size',
      measured: Math.min(...rows.map((r) => r.inDegreeNodesMin)),
      limit: T.inDegreeNodes,
      limitText: `≥ ${T.inDegreeNodes}`,
      unit: 'nodes',
      pass: Math.min(...rows.map((r) => r.inDegreeNodesMin)) >= T.inDegreeNodes,
    },
  );
  return { hash, rows, defaults: SELECTION_DEFAULTS, targets: T };
}

// ---- 8. triage on generated scenarios --------------------------------------------------------

/** Scenarios of the triage section; target false-finding rate (docs/triage.md). */
const TRIAGE = { scenarios: QUICK ? 2000 : 20_000, falseRateLimit: 0.001 };

function triageSection(targets: Target[]): unknown {
  const r = runTriageScenarios(TRIAGE.scenarios);
  out(
    table(
      `triage on ${r.scenarios} generated scenarios (${fmt(r.seconds, 1)} s)`,
      ['fault', 'scenarios', 'false findings'],
      Object.entries(r.byFault).map(([k, v]) => [k, `${v.scenarios}`, `${v.falseFindings}`]),
    ),
  );
  for (const e of r.examples) out(`false finding: ${e}`);
  out(
    `strong faults (half their probes lost or more, or round trips 4× their baseline) unnamed: ${r.missed} of ${r.strong}`,
  );
  for (const e of r.missedExamples) out(`missed: ${e}`);
  targets.push(
    check('triage false-finding rate', r.falseRate * 100, TRIAGE.falseRateLimit * 100, '%'),
    check('triage strong faults missed', r.missed, 0, 'scenarios'),
  );
  return r;
}

// ---- 9. series per agent ----------------------------------------------------------------------

/** Section 9: bench/series.ts (pure CPU: the agent's recorder fed in process, rendered once). */
async function seriesSection(targets: Target[]): Promise<unknown> {
  const T = SERIES_TARGETS;
  const rows = [await measureSeries(T.nodes, 32), await measureSeries(T.nodes, 14)];
  const pairHist = 'podmesh_pair_round_trip_seconds';
  const families = [...new Set(rows.flatMap((r) => Object.keys(r.byFamily)))];
  out(
    table(
      `9. /metrics series of one pod agent at ${T.nodes} nodes (2 agents a node, 3 zones), a minute of probing with a few failures, default DNS checks (Service + 2 replicas); core 32: the defaults (peers.limit 32, rotation off), core 14: peers.rotation`,
      ['metric', ...rows.map((r) => `core ${r.core}`)],
      [
        ...families.map((f) => [f, ...rows.map((r) => String(r.byFamily[f] ?? 0))]),
        ['total', ...rows.map((r) => String(r.total))],
        [
          'pair RTT histogram share',
          ...rows.map((r) => `${fmt(((r.byFamily[pairHist] ?? 0) / r.total) * 100, 1)}%`),
        ],
      ],
    ),
  );
  const obs = measureObserve(QUICK ? 200_000 : 2_000_000);
  out(
    `9. one pair RTT observation on the hot path: ${fmt(obs.slotNs, 1)} ns (slot histogram, shipped) vs ${fmt(obs.promClientNs, 0)} ns (prom-client Histogram child); at 1,000 results/s ${fmt(obs.slotNs / 1e3, 3)} ms of CPU a second`,
  );
  const [defaults, rotation] = rows as [(typeof rows)[0], (typeof rows)[0]];
  targets.push(
    check(
      `series: per agent at ${T.nodes} nodes with peers.rotation (core ${rotation.core})`,
      rotation.total,
      T.perAgent,
      'series',
    ),
    {
      ...check(
        `series: per agent at ${T.nodes} nodes, defaults (core ${defaults.core}, rotation off)`,
        defaults.total,
        T.perAgent,
        'series',
      ),
      note: `32 core peers hold 2.3× the per-pair series of 14; the pair RTT histogram is ${defaults.byFamily[pairHist] ?? 0} of them, the deprecated quantile gauge ${defaults.byFamily['podmesh_pair_rtt_seconds'] ?? 0}`,
    },
  );
  return { rows, observe: obs, targets: T };
}

// ---- 10. the controller at scale -------------------------------------------------------------

/** Section 10: bench/controller-scale.ts (two processes a size: the agents and the controller). */
async function scaleSection(targets: Target[]): Promise<unknown> {
  const T = SCALE_TARGETS;
  // BENCH_SCALE_SIZES=600,2000: fewer sizes while working on it.
  const sizes =
    process.env['BENCH_SCALE_SIZES']?.split(',').map(Number) ?? (QUICK ? [600, 2000] : SCALE_SIZES);
  const rows: ScaleRow[] = [];
  for (const n of sizes) {
    out(`10. ${n} agents (${n / 2} nodes)`);
    rows.push(await measureScale(n, QUICK ? 3 : 4, QUICK ? 30_000 : 60_000, out));
  }
  const first = rows[0];
  out(
    table(
      `10. The controller (runController, shipped settings: pull every ${PULL_INTERVAL_MS} ms, 32 at once, node flags of deploy/Dockerfile) pulling simulated agents over HTTP on loopback, 2 agents a node, 3 zones; a row: ${SCALE_PEERS} core peers × ${first !== undefined ? first.row.resultsPerRow / first.row.peersPerRow : 5} results, ${first?.row.dnsPerRow ?? 12} DNS checks, ${first?.row.portsPerRow ?? 3} ports; medians of the rounds after the first; the matrix fetched once a round`,
      [
        'agents',
        'nodes',
        'row KB',
        'rounds',
        'round ms',
        'vs interval',
        'CPU ms/round',
        'triage CPU ms',
        'ok agents',
        'cells',
        'peak RSS MB',
        'matrix MB',
        'matrix fetch ms',
      ],
      rows.map((r) => [
        String(r.agents),
        String(r.nodes),
        fmt(r.rowBytes.mean / 1000, 1),
        String(r.rounds.length),
        fmt(r.roundMs, 0),
        Number.isFinite(r.roundMs) ? `${fmt((r.roundMs / PULL_INTERVAL_MS) * 100, 0)}%` : 'n/a',
        fmt(r.cpuMs, 0),
        fmt(r.triageCpuMs, 0),
        `${r.okAgents}/${r.agents}`,
        String(r.cells),
        fmt(r.hwmMB, 0),
        fmt(r.matrixBytes / 1e6, 1),
        fmt(r.matrixFetchMs, 0),
      ]),
    ),
  );
  for (const r of rows)
    if (r.stalled !== undefined)
      out(`10. at ${r.agents} agents: ${r.stalled}; peak RSS by then ${fmt(r.hwmMB, 0)} MB`);
  const biggest = rows[rows.length - 1]!;
  const at10k = rows.find((r) => r.agents === 10_000);
  targets.push(
    ...rows.map((r) => ({
      ...check(
        `scale: round at ${r.agents} agents within the pull interval`,
        r.roundMs,
        T.roundMs,
        'ms',
      ),
      ...(r.stalled !== undefined ? { note: "no round ended within the bench's time" } : {}),
    })),
    at10k !== undefined
      ? {
          ...check(
            'scale: matrix + triage at 5,000 nodes (CPU of a round: pull, parse, assemble, triage)',
            at10k.cpuMs,
            T.cpuMsAt10000,
            'ms',
          ),
        }
      : {
          name: 'scale: matrix + triage at 5,000 nodes',
          measured: Number.NaN,
          limit: T.cpuMsAt10000,
          unit: 'ms',
          pass: false,
          note: 'not run at 10,000 agents',
        },
    ...rows.map((r) =>
      check(`scale: controller peak RSS at ${r.agents} agents`, r.hwmMB, T.rssMB, 'MB'),
    ),
  );
  return { rows, biggest: biggest.agents, targets: T };
}

// ---- main ------------------------------------------------------------------------------------

interface Target {
  readonly name: string;
  readonly measured: number;
  readonly limit: number;
  /** How the limit reads when it is not "measured <= limit" (e.g. "±20": either side). */
  readonly limitText?: string;
  readonly unit: string;
  readonly pass: boolean;
  /** Said next to a MISS when the numbers explain it. */
  readonly note?: string;
  /** Printed for reference, not a target of its own ("info" in the result column). */
  readonly informational?: boolean;
}

function check(name: string, measured: number, limit: number, unit: string): Target {
  return { name, measured, limit, unit, pass: Number.isFinite(measured) && measured <= limit };
}

let distDir: string | undefined;
/** Removes section 5's network namespaces; set while they exist (signals call it too). */
let labDown: (() => void) | undefined;

async function main(): Promise<void> {
  const started = performance.now();
  const cpus = os.cpus();
  out(
    `podmesh bench — node ${process.version}, ${cpus.length} cores (${cpus[0]?.model.trim() ?? '?'}), ${os.platform()} ${os.release()}${QUICK ? ', QUICK run' : ''}`,
  );
  out(
    `started ${new Date().toISOString()}; all traffic on 127.0.0.0/8 (rtt-lab: inside two network namespaces of its own; soak: on the loopback of a namespace of its own); responders in a separate process`,
  );

  const range = (prefix: string, n: number): string[] =>
    Array.from({ length: n }, (_, k) => `${prefix}.${k + 1}`);
  const responderSpec: ResponderSpec = {
    maxRepliesPerSecond: 1_000_000,
    groups: [
      { name: 'udp', addresses: range('127.0.50', THROUGHPUT.peers), stampPerAddress: 1 },
      { name: 'tcp', addresses: range('127.0.51', THROUGHPUT.peers), tcp: true },
      { name: 'echo', addresses: ['127.0.52.1'], echo: true },
      { name: 'dns', addresses: ['127.0.53.1'], dns: true },
      { name: 'rtt', addresses: ['127.0.60.1'], stampPerAddress: RTT.jobsPerKind },
      {
        name: 'load',
        addresses: Array.from(
          { length: LOAD.peerCount },
          (_, k) => `127.0.${70 + Math.floor(k / 250)}.${(k % 250) + 1}`,
        ),
        stampPerAddress: 1,
        tcp: true,
      },
    ],
  };
  // The loopback sections' far side; section 5 brings its own in its namespaces.
  const responders = LOOPBACK_SECTIONS.some((x) => ONLY.has(x))
    ? spawnTs('bench/responders.ts', [JSON.stringify(responderSpec)])
    : undefined;
  try {
    const { groups } = responders
      ? await responders.next<ReadyMessage>('ready', 30_000)
      : { groups: {} as ReadyMessage['groups'] };

    // 1
    let tp: Throughput[] | null = null;
    let overhead: { udpVsBareDgram: number; tcpVsBareConnect: number } | null = null;
    if (ONLY.has('throughput')) {
      tp = await throughput(responders!, groups);
      const tpRows = tp;
      const byName = (prefix: string): Throughput => tpRows.find((t) => t.name.startsWith(prefix))!;
      const udpOverhead = byName('podmesh udp').cpuUsPerProbe / byName('bare dgram').cpuUsPerProbe;
      const tcpOverhead =
        byName('podmesh tcp').cpuUsPerProbe / byName('bare connect').cpuUsPerProbe;
      out(
        table(
          `1. Throughput, main thread, ${THROUGHPUT.concurrency} in flight, ${THROUGHPUT.runMs / 1000} s each (after ${THROUGHPUT.warmupMs} ms warm-up); CPU = this process only`,
          [
            'prober',
            'probes',
            'ok',
            'probes/s',
            'probes/CPU-s',
            'CPU µs/probe',
            'responder µs/probe',
          ],
          tp.map((t) => [
            t.name,
            String(t.probes),
            String(t.ok),
            fmt(t.perSec, 0),
            fmt(t.perCpuSec, 0),
            fmt(t.cpuUsPerProbe, 1),
            fmt(t.responderUsPerProbe, 1),
          ]),
        ),
      );
      out(
        `podmesh udp probe costs ${fmt(udpOverhead, 2)}× a bare dgram round trip; podmesh tcp probe costs ${fmt(tcpOverhead, 2)}× a bare connect+reset (prober CPU per probe)`,
      );
      overhead = { udpVsBareDgram: udpOverhead, tcpVsBareConnect: tcpOverhead };
    }

    // 2
    const targets: Target[] = [];
    let rttJson: unknown = null;
    if (ONLY.has('rtt')) {
      const rt = await rtt(groups);
      const rowOf = (m: Mode): RttRow => rt.rows.find((r) => r.mode === m)!;
      const cell = (s: Summary | null): [string, string] =>
        s === null ? ['n/a', 'n/a'] : [us(s.p50), us(s.p99)];
      out(
        table(
          `2. RTT on 127.0.60.1, µs (probe every ${RTT.intervalMs} ms per job, ${RTT.jobsPerKind} jobs per kind; modes interleaved: ${RTT.rounds} rounds × ${RTT.windowMs / 1000} s windows each); udp: worker-thread engine; icmp: ${rt.icmpNote}; ping: ${rt.pingNote}`,
          [
            'main thread',
            'udp n',
            'udp p50',
            'udp p99',
            'udp lost',
            'icmp(main) p50',
            'icmp(main) p99',
            'ping n',
            'ping p50',
            'ping p99',
          ],
          rt.rows.map((r) => [
            MODE_LABEL[r.mode],
            String(r.udp.n),
            ...cell(r.udp),
            String(r.udp.lost),
            ...cell(r.icmp),
            r.ping === null ? 'n/a' : String(r.ping.n),
            ...cell(r.ping),
          ]),
        ),
      );
      out(
        `busy prom: registry of ${rt.registrySeries} series, render took p50 ${fmt(rt.renderMs.p50, 1)} ms / max ${fmt(rt.renderMs.max, 1)} ms (${rt.renderMs.n} renders)`,
      );
      const idle = rowOf('idle');
      const ratios = MODES.filter((m) => m !== 'idle').map((m) => {
        const r = rowOf(m);
        return {
          mode: m,
          udp: r.udp.p99 / idle.udp.p99,
          icmp: r.icmp !== null && idle.icmp !== null ? r.icmp.p99 / idle.icmp.p99 : Number.NaN,
          ping: r.ping !== null && idle.ping !== null ? r.ping.p99 / idle.ping.p99 : Number.NaN,
        };
      });
      for (const r of ratios) {
        out(
          `  ${MODE_LABEL[r.mode]}: busy p99 / idle p99 = udp(worker) ${fmt(r.udp, 2)}×, icmp(main thread) ${fmt(r.icmp, 2)}×, ping ${fmt(r.ping, 2)}×`,
        );
      }

      rttJson = { ...rt, ratios };
      targets.push(
        ...ratios
          .filter((r) => BUSY_MODES.includes(r.mode))
          .map((r) =>
            check(
              `udp p99 with a busy main thread (${MODE_LABEL[r.mode]}) no worse than ${TARGETS.busyRatio}× idle`,
              r.udp,
              TARGETS.busyRatio,
              '×',
            ),
          ),
      );
    }

    // 3
    let loads: (LoadResult & { runner: Runner['kind']; runs?: number })[] | null = null;
    if (ONLY.has('load')) {
      const loadPeers = groups.load!.map((e, k) => ({
        ...peer(
          `bench-peer-${String(k + 1).padStart(3, '0')}`,
          e.address,
          e.stampPorts[0]!,
          e.tcpPort!,
        ),
        zone: k % 2 === 0 ? 'zone-a' : 'zone-b',
      }));
      const built = await buildDist();
      if ('dir' in built) distDir = built.dir;
      const buildNote =
        'dir' in built
          ? `build: ${built.note}`
          : `could not compile (${built.error}); load runs from source only`;
      const primary: Runner =
        'dir' in built ? { kind: 'dist', dir: built.dir } : { kind: 'source' };
      loads = [];
      // BENCH_LOAD=agent-k8s runs just that scenario (while working on it); the Targets rows
      // of the others are then left out.
      const only = process.env['BENCH_LOAD']?.split(',');
      const want = (s: LoadSpec['scenario']): boolean => only === undefined || only.includes(s);
      if (want('engines')) loads.push(await load('engines', loadPeers, '127.0.80.2', primary));
      let agentRunsNote = '';
      if (want('agent')) {
        // The Agent's CPU moves by ±1 point between 15 s runs on this VM (other tenants, timer
        // phase): the targets read the median of several runs, and every run is printed.
        const runs: LoadResult[] = [];
        for (let i = 0; i < AGENT_RUNS; i++)
          runs.push(await load('agent', loadPeers, '127.0.80.1', primary));
        loads.push({ ...medianRun(runs), runner: primary.kind, runs: runs.length });
        if (runs.length > 1)
          agentRunsNote = `agent (${primary.kind === 'dist' ? 'bundle' : 'tsx src'}), ${runs.length} runs: CPU ${runs.map((r) => fmt(r.cpuPctOfOneCore, 2)).join(', ')} %; RSS max ${runs.map((r) => fmt(r.rssMaxMB, 1)).join(', ')} MB; the table and the targets show each column's median`;
        if (primary.kind === 'dist')
          loads.push(await load('agent', loadPeers, '127.0.80.3', { kind: 'source' }));
      }
      let k8sNote = '';
      if (want('agent-k8s')) {
        const selfAddress = '127.0.80.4';
        const cluster = await startFakeCluster(loadPeers, selfAddress);
        // BENCH_PEERS_LIMIT=32: the agent probes only that many of the Pods (peers.limit's
        // default is 32); the load then is no longer 1,000 probes/s.
        const limit = Number(process.env['BENCH_PEERS_LIMIT'] ?? loadPeers.length);
        try {
          const r = await load('agent-k8s', loadPeers, selfAddress, primary, {
            kubeconfig: cluster.kubeconfig,
            namespace: K8S.namespace,
            selfNode: K8S.selfNode,
            peersLimit: limit,
          });
          loads.push(r);
          const req = cluster.requests();
          k8sNote = `agent-k8s: ${r.peersProbed} of ${cluster.pods - 1} peer Pods probed (peers.limit ${limit}), first peer list ${fmt(r.discoveryMs, 0)} ms after start; fake API server ${K8S.apiHost} in the bench process (${cluster.pods} Pods, ${cluster.nodes} Nodes; ${req['list']} lists, ${req['watch']} watches; ${cluster.heartbeats()} Node status updates, one per Node per ${K8S.nodeStatusEveryMs / 60_000} min)`;
        } finally {
          await cluster.stop();
        }
      }
      out(
        table(
          `3. Load: ${LOAD.peerCount} peers × (udp small+mtu, icmp small+mtu, tcp) every ${LOAD.intervalMs} ms, mtu ${LOAD.mtuBytes} B; ${LOAD.runMs / 1000} s after ${LOAD.warmupMs / 1000} s warm-up; fresh process each; CPU = whole process (all threads)`,
          [
            'scenario',
            'runs',
            'jobs',
            'scheduled/s',
            'done/s',
            'failed',
            'CPU % of 1 core',
            'CPU µs/probe',
            'RSS max MB',
            'RSS idle MB',
            'heap max MB',
          ],
          loads.map((l) => [
            LOAD_LABEL[l.scenario],
            `${l.runner === 'dist' ? 'bundle' : 'tsx src'}${(l.runs ?? 1) > 1 ? ` ×${l.runs}` : ''}`,
            String(l.jobs),
            fmt(l.scheduledPerSec, 0),
            fmt(l.completedPerSec, 0),
            `${l.failed}${l.failed > 0 ? ` ${JSON.stringify(l.failures)}` : ''}`,
            `${fmt(l.cpuPctOfOneCore, 2)} (${fmt(100 * l.systemShare, 0)}% sys)`,
            fmt(l.cpuUsPerProbe, 1),
            fmt(l.rssMaxMB, 1),
            fmt(l.rssBeforeStartMB, 1),
            fmt(l.heapUsedMaxMB, 1),
          ]),
        ),
      );
      out(
        `${buildNote}; kinds running: ${loads.map((l) => `${l.scenario}=${l.kinds.join('+')}`).join(', ')}; "RSS idle" = after the imports, before any engine started (agent-k8s: before the client library's lazy import)`,
      );
      if (agentRunsNote !== '') out(agentRunsNote);
      if (k8sNote !== '') out(k8sNote);
      out(
        `main-loop delay p99: ${loads.map((l) => `${l.scenario}${l.runner === 'source' ? ' (tsx)' : ''} ${fmt(l.mainLoopDelayP99Ms, 1)} ms`).join(', ')} (agents: their own 50 ms monitor from /metrics; engines: the bench's, 50 ms; both beyond the monitor's 50 ms tick, so 0 means no delay)`,
      );

      // targets
      const agent = loads.find((l) => l.scenario === 'agent' && l.runner === primary.kind);
      const engines = loads.find((l) => l.scenario === 'engines');
      const k8s = loads.find((l) => l.scenario === 'agent-k8s');
      if (agent !== undefined)
        targets.push(
          check(
            `Agent (${agent.runner === 'dist' ? 'bundle' : 'tsx source'}) at ${fmt(agent.completedPerSec, 0)} probes/s: CPU under ${TARGETS.cpuPct}% of one core`,
            agent.cpuPctOfOneCore,
            TARGETS.cpuPct,
            '%',
          ),
          check(
            `Agent (${agent.runner === 'dist' ? 'bundle' : 'tsx source'}) at ${fmt(agent.completedPerSec, 0)} probes/s: RSS under ${TARGETS.rssMB} MB`,
            agent.rssMaxMB,
            TARGETS.rssMB,
            'MB',
          ),
        );
      if (engines !== undefined)
        targets.push(
          check(
            `engines only at ${fmt(engines.completedPerSec, 0)} probes/s: CPU under ${TARGETS.cpuPct}% of one core`,
            engines.cpuPctOfOneCore,
            TARGETS.cpuPct,
            '%',
          ),
          check(
            `engines only at ${fmt(engines.completedPerSec, 0)} probes/s: RSS under ${TARGETS.rssMB} MB`,
            engines.rssMaxMB,
            TARGETS.rssMB,
            'MB',
          ),
        );
      // Not a target of its own: what a deployed agent (Kubernetes discovery) holds, next to
      // the same budget.
      if (k8s !== undefined)
        targets.push({
          ...check(
            `Agent, Kubernetes discovery (${k8s.runner === 'dist' ? 'bundle' : 'tsx source'}) at ${fmt(k8s.completedPerSec, 0)} probes/s: RSS under ${TARGETS.rssMB} MB`,
            k8s.rssMaxMB,
            TARGETS.rssMB,
            'MB',
          ),
          informational: true,
        });
    }
    // 4
    let dnsJson: unknown = null;
    if (ONLY.has('dns')) {
      const d = await dns(responders!, groups);
      out(
        table(
          `4a. DNS throughput against DnsServer ${d.server} (${BENCH_DNS_NAME} A), main thread, ${THROUGHPUT.concurrency} in flight, ${THROUGHPUT.runMs / 1000} s each (after ${THROUGHPUT.warmupMs} ms warm-up); CPU = this process only`,
          [
            'prober',
            'queries',
            'noerror',
            'queries/s',
            'queries/CPU-s',
            'CPU µs/query',
            'server µs/query',
          ],
          d.throughput.map((t) => [
            t.name,
            String(t.probes),
            String(t.ok),
            fmt(t.perSec, 0),
            fmt(t.perCpuSec, 0),
            fmt(t.cpuUsPerProbe, 1),
            fmt(t.responderUsPerProbe, 1),
          ]),
        ),
      );
      const per = (prefix: string): number =>
        d.throughput.find((t) => t.name.startsWith(prefix))!.cpuUsPerProbe;
      const dnsOverhead = {
        udpVsBareDgram: per('podmesh dns udp') / per('bare dgram query'),
        tcpVsBareTcp: per('podmesh dns tcp') / per('bare tcp query'),
      };
      out(
        `podmesh dns udp query costs ${fmt(dnsOverhead.udpVsBareDgram, 2)}× a bare dgram query; tcp ${fmt(dnsOverhead.tcpVsBareTcp, 2)}× a bare tcp query (prober CPU per query; baselines send the same bytes and check nothing)`,
      );
      const cellUs = (s: Summary | null): [string, string] =>
        s === null ? ['n/a', 'n/a'] : [us(s.p50), us(s.p99)];
      out(
        table(
          `4b. DNS latency, µs, same query to the same server; podmesh: DnsProbe, one query every ${DNS.latencyEveryMs} ms; dig: ${d.digNote}; ${DNS.rounds} rounds taking turns, never at once`,
          [
            'transport',
            'podmesh n',
            'podmesh p50',
            'podmesh p99',
            'podmesh other outcomes',
            'dig n',
            'dig p50',
            'dig p99',
            'dig failed',
            'dig wall p50 ms',
          ],
          d.latency.map((r) => {
            const { noerror: _ok, ...other } = r.podmesh.outcomes;
            return [
              r.transport,
              String(r.podmesh.n),
              ...cellUs(r.podmesh),
              Object.keys(other).length === 0 ? '0' : JSON.stringify(other),
              r.dig === null ? 'n/a' : String(r.dig.n),
              ...cellUs(r.dig),
              r.dig === null ? 'n/a' : String(r.dig.failed),
              r.digWallMs === null ? 'n/a' : fmt(r.digWallMs.p50, 1),
            ];
          }),
        ),
      );
      if (d.dig.available) {
        out(
          `dig's numbers are its own ";; Query time" (send to receive inside dig), not the dig process's wall time (spawn, config, exit), which is shown only to say why it isn't used; over tcp dig starts its clock once connected, podmesh's tcp time includes the handshake`,
        );
        const whole = d.latency.filter((r) => r.digWholeMs !== null);
        if (whole.length > 0)
          out(
            `as plain \`dig +stats\` would print it (whole ms, truncated): ${whole.map((r) => `${r.transport} p50 ${fmt(r.digWholeMs!.p50 * 1000, 0)} ms / p99 ${fmt(r.digWholeMs!.p99 * 1000, 0)} ms`).join('; ')}`,
          );
      }
      dnsJson = { ...d, overhead: dnsOverhead };
    }

    // 5
    let rttLabJson: unknown = null;
    if (ONLY.has('rtt-lab')) rttLabJson = await rttLabSection(targets);

    // 7 (before the soak, which is long)
    let selectionJson: unknown = null;
    if (ONLY.has('selection')) selectionJson = selectionSection(targets);
    // 8
    let triageJson: unknown = null;
    if (ONLY.has('triage')) triageJson = triageSection(targets);
    // 9
    let seriesJson: unknown = null;
    if (ONLY.has('series')) seriesJson = await seriesSection(targets);
    // 10
    let scaleJson: unknown = null;
    if (ONLY.has('scale')) scaleJson = await scaleSection(targets);

    // 6
    let soakJson: unknown = null;
    if (ONLY.has('soak')) soakJson = await soakSection(targets);

    out(
      table(
        'Targets (measured in this run)',
        ['target', 'measured', 'limit', 'result'],
        targets.map((t) => [
          t.name,
          `${fmt(t.measured, 2)} ${t.unit}`,
          `${t.limitText ?? t.limit} ${t.unit}`,
          `${t.informational === true ? 'info: ' : ''}${t.pass ? 'PASS' : t.note !== undefined ? `MISS (${t.note})` : 'MISS'}`,
        ]),
      ),
    );
    const elapsedS = (performance.now() - started) / 1000;
    out(`bench took ${fmt(elapsedS, 1)} s`);
    const json = {
      node: process.version,
      cores: cpus.length,
      quick: QUICK,
      elapsedS,
      knobs: { THROUGHPUT, RTT, BUSY, LOAD, DNS, RTT_LAB, ...(ONLY.has('soak') ? { SOAK } : {}) },
      sections: [...ONLY],
      throughput: tp,
      overhead,
      rtt: rttJson,
      load: loads,
      dns: dnsJson,
      rttLab: rttLabJson,
      selection: selectionJson,
      soak: soakJson,
      triage: triageJson,
      series: seriesJson,
      scale: scaleJson,
      targets,
    };
    out(`BENCH_JSON ${JSON.stringify(json)}`);
  } finally {
    await responders?.stop();
    killChildren();
    if (distDir !== undefined) rmSync(distDir, { recursive: true, force: true });
    labDown?.();
  }
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    // With --baseline the running child bench gets to clean up first, then the worktree goes.
    void abortBaseline().finally(() => {
      killChildren();
      labDown?.();
      if (distDir !== undefined) rmSync(distDir, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

(BASELINE !== undefined
  ? runBaseline({
      ref: BASELINE,
      runs: BASELINE_RUNS,
      sections: [...ONLY],
      quick: QUICK,
      root: ROOT,
      out,
    })
  : main()
).then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    killChildren();
    process.exit(1);
  },
);
