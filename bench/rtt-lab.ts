// RTT fidelity on a lab path between two network namespaces: podmesh's udp (STAMP) and icmp
// RTT median and p99 next to iputils ping's, measured at the same time on the same path, in
// three conditions taking turns in short windows:
//
//   idle            nothing else going on
//   busy-main       the prober's main thread renders a >= 5 MB /metrics every second
//   busy-reflector  the reflector's own thread runs a random-phase CPU load (rtt-reflector.ts)
//
// and in two phases: "kernel" (the timestamping addon: kernel T1..T4, udp and icmp on the
// worker-thread engine, icmp on an unprivileged ping socket) and "userspace" (PODMESH_TIMESTAMPS=
// userspace: podmesh as it ran before the addon, for comparison). In the kernel phase a third
// prober (rtt-send-path.ts) pings alongside on the same kind of socket and keeps both send times
// of each echo, the user-space one ping uses and the kernel's one podmesh uses, which shows why
// podmesh's icmp median sits below ping's. `npm run bench -- --only=rtt-lab` runs the kernel phase
// as part of the bench (bench/run.ts); docs/timestamps.md explains the method and has output.
//
//   sudo npx tsx bench/rtt-lab.ts [--quick] [--phases=kernel,userspace] [--no-net-raw]
//                                 [--kinds=udp,icmp]
//
// Needs root, iproute2 and iputils-ping. Creates two namespaces joined by a veth pair, with
// addresses in 198.18.0.0/15 that exist only inside them, and removes them at the end (on error
// and on SIGINT/SIGTERM too). test/lab/lab-rtt.test.ts runs measureRttPath() on the lab's own
// pod-to-pod path. Prints tables and one line `RTT_LAB_JSON {...}`.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ROOT,
  fmt,
  jsonChild,
  killChildren,
  sleep,
  startPing,
  summarise,
  table,
  us,
  type JsonChild,
  type PingReply,
  type Summary,
} from './lib.ts';
import type { ProberSpec, Sample } from './rtt-prober.ts';
import type { FarEndSample } from './rtt-far-end.ts';
import type { SendPathReady, SendPathSample, SendPathSpec } from './rtt-send-path.ts';

export type Phase = 'kernel' | 'userspace';
export type Condition = 'idle' | 'busy-main' | 'busy-reflector';
export const CONDITIONS: readonly Condition[] = ['idle', 'busy-main', 'busy-reflector'];

export interface PathSpec {
  readonly proberNs: string;
  readonly proberAddress: string;
  readonly reflectorNs: string;
  readonly reflectorAddress: string;
}

export interface RttLabOptions {
  readonly phases: readonly Phase[];
  readonly conditions: readonly Condition[];
  readonly rounds: number;
  readonly windowMs: number;
  readonly settleMs: number;
  /** Probe interval of each job (one udp, one icmp), of the send-path prober and ping's -i. */
  readonly intervalMs: number;
  /** Run the probers without CAP_NET_RAW (setpriv), as a "restricted" Pod would. */
  readonly dropNetRaw?: boolean;
  /** podmesh's probe kinds (default both); `--kinds=icmp` runs icmp without the udp probes. */
  readonly probeKinds?: readonly ('udp' | 'icmp')[];
}

export const DEFAULT_OPTIONS: RttLabOptions = {
  phases: ['kernel', 'userspace'],
  conditions: CONDITIONS,
  rounds: 5,
  windowMs: 3000,
  settleMs: 300,
  intervalMs: 10,
};

export type KindSummary = Summary & { readonly lost: number };

/**
 * podmesh's kind of icmp socket timed two ways, in one condition's windows (kernel phase only):
 * the send-path prober's (rtt-send-path.ts) echoes, from the kernel's transmit stamp and from
 * the clock read in JavaScript just before send().
 */
export interface IcmpDetail {
  /** T4 - T1user: podmesh's socket timed as ping times. */
  readonly userRtt: Summary;
  /** T4 - T1kernel: podmesh's socket timed as podmesh times. */
  readonly kernelRtt: Summary;
  /** T1kernel - T1user: the send path a user-space T1 puts into the RTT. */
  readonly sendPath: Summary;
  /** Smallest T1kernel - T1user, seconds: never below 0 if the stamps are right. */
  readonly sendPathMin: number;
}

/**
 * ping's own send path, from the far end (rtt-far-end.ts) in a window of its own after the
 * conditions: the far end's raw socket wakes a process for every echo request, which adds to
 * every RTT on the path, so it never runs while the conditions are measured.
 */
export interface PingSendPath {
  /** ping's T1 (the time in its packets) to the far end's kernel receive: send path + hop. */
  readonly toFarEnd: Summary;
  /** The send-path prober's kernel transmit stamp to the far end's receive: the hop alone. */
  readonly hop: Summary;
  /** toFarEnd p50 - hop p50, seconds: the send path inside ping's RTT. */
  readonly sendPath: number;
  /** Smallest of each, seconds: one clock at both ends, so a packet never arrives before T1. */
  readonly toFarEndMin: number;
  readonly hopMin: number;
}

export interface RttLabRow {
  readonly phase: Phase;
  readonly condition: Condition;
  readonly udp: KindSummary;
  readonly icmp: KindSummary;
  readonly ping: KindSummary & { readonly min: number };
  /** Smallest udp / icmp RTT in the windows, seconds. */
  readonly udpMin: number;
  readonly icmpMin: number;
  /** null when the send-path prober did not run (userspace phase, or unavailable). */
  readonly icmpDetail: IcmpDetail | null;
}

export interface PhaseInfo {
  readonly phase: Phase;
  readonly sources: Record<string, { source: string; detail: string; mode?: string }>;
  readonly reflector: { source: string; detail: string };
  readonly where: Record<string, string>;
  readonly kinds: string[];
  readonly renderBytes: number;
  readonly renderMs: Summary;
  readonly reflectorBusyMs: number;
  /** null when it could not be measured (see icmpDetailNote) or in the userspace phase. */
  readonly pingSendPath: PingSendPath | null;
  /** What is missing from the like-for-like icmp comparison in this phase, and why. */
  readonly icmpDetailNote?: string;
}

export interface RttLabReport {
  readonly path: PathSpec;
  readonly options: RttLabOptions;
  readonly rows: RttLabRow[];
  readonly phases: PhaseInfo[];
}

const SYSTEM_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Absolute path of a system tool (never node_modules/.bin). */
export function systemBin(name: string): string | undefined {
  for (const d of SYSTEM_DIRS) {
    try {
      accessSync(join(d, name), constants.X_OK);
      return join(d, name);
    } catch {
      // not here
    }
  }
  return undefined;
}

function bin(name: string): string {
  const p = systemBin(name);
  if (p === undefined) throw new Error(`rtt-lab needs \`${name}\``);
  return p;
}

/** Why the lab measurement can't run on this machine, or undefined when it can. */
export function rttLabUnavailable(): string | undefined {
  if (process.platform !== 'linux')
    return `needs Linux network namespaces (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'needs root (it creates network namespaces)';
  const missing = ['ip', 'ping'].filter((c) => systemBin(c) === undefined);
  if (missing.length > 0)
    return `missing ${missing.join(', ')} (apt-get install -y iproute2 iputils-ping)`;
  return undefined;
}

/** Only 198.18.0.0/15 (RFC 2544 benchmarking space), where the lab's addresses live. */
export function assertLabAddress(address: string): string {
  if (!/^198\.1[89]\.\d{1,3}\.\d{1,3}$/.test(address))
    throw new Error(`rtt-lab address ${address} is not in 198.18.0.0/15`);
  return address;
}

// ---- children in namespaces ------------------------------------------------------------------

function spawnInNs(
  ns: string,
  script: string,
  arg: unknown,
  env: NodeJS.ProcessEnv,
  prefix: readonly string[] = [],
): JsonChild {
  const argv = [
    'netns',
    'exec',
    ns,
    ...prefix,
    process.execPath,
    '--import',
    'tsx',
    script,
    JSON.stringify(arg),
  ];
  return jsonChild(
    spawn(bin('ip'), argv, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'inherit'] }),
    `${script} in ${ns}`,
  );
}

// ---- the measurement ---------------------------------------------------------------------------

interface Window {
  readonly phase: Phase;
  readonly condition: Condition;
  readonly from: number;
  readonly to: number;
}

/** Measures every phase and condition on `path`; never leaves a child behind. */
export async function measureRttPath(
  path: PathSpec,
  options: RttLabOptions = DEFAULT_OPTIONS,
): Promise<RttLabReport> {
  assertLabAddress(path.proberAddress);
  assertLabAddress(path.reflectorAddress);
  const rows: RttLabRow[] = [];
  const phases: PhaseInfo[] = [];
  const privs = options.dropNetRaw
    ? [bin('setpriv'), '--bounding-set=-net_raw', '--inh-caps=-net_raw']
    : [];
  for (const phase of options.phases) {
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (phase === 'userspace') env['PODMESH_TIMESTAMPS'] = 'userspace';
    else delete env['PODMESH_TIMESTAMPS'];
    const reflector = spawnInNs(
      path.reflectorNs,
      'bench/rtt-reflector.ts',
      { address: path.reflectorAddress },
      env,
    );
    let prober: JsonChild | undefined;
    let sendPath: JsonChild | undefined;
    let ping: ReturnType<typeof startPing> | undefined;
    try {
      const ready = await reflector.next<{ port: number; timestamps: PhaseInfo['reflector'] }>(
        'ready',
        30_000,
      );
      const spec: ProberSpec = {
        address: path.proberAddress,
        target: { address: path.reflectorAddress, stampPort: ready.port },
        intervalMs: options.intervalMs,
        phase,
        ...(options.probeKinds !== undefined ? { probeKinds: options.probeKinds } : {}),
      };
      prober = spawnInNs(path.proberNs, 'bench/rtt-prober.ts', spec, env, privs);
      const info = await prober.next<{
        sources: PhaseInfo['sources'];
        where: Record<string, string>;
        kinds: string[];
        renderBytes: number;
      }>('ready', 60_000);
      const notes: string[] = [];
      let sendPathId: number | undefined;
      if (phase === 'kernel') {
        const sp: SendPathSpec = {
          address: path.proberAddress,
          target: path.reflectorAddress,
          intervalMs: options.intervalMs,
        };
        sendPath = spawnInNs(path.proberNs, 'bench/rtt-send-path.ts', sp, env, privs);
        const first = await sendPath.next<SendPathReady>('ready', 30_000);
        if (first.ok) sendPathId = first.id;
        else {
          notes.push(`send-path prober: ${first.why}`);
          await sendPath.stop();
          sendPath = undefined;
        }
      } else notes.push('like-for-like icmp: kernel phase only');
      await sleep(1000);
      const windows: Window[] = [];
      const conditions = options.conditions;
      const farEndMs = Math.max(3000, options.windowMs);
      const totalS =
        (options.rounds * conditions.length * (options.settleMs + options.windowMs) +
          (sendPath !== undefined ? farEndMs + 15_000 : 0)) /
          1000 +
        3;
      ping = startPing(
        [bin('ip'), 'netns', 'exec', path.proberNs, bin('ping')],
        assertLabAddress(path.reflectorAddress),
        { intervalMs: options.intervalMs, deadlineS: totalS },
      );
      await sleep(500);
      // Conditions take turns in short windows, in a rotating order, so a hiccup of a shared
      // machine lands in one window of one condition instead of a whole condition.
      for (let round = 0; round < options.rounds; round++) {
        for (let k = 0; k < conditions.length; k++) {
          const condition = conditions[(k + round) % conditions.length]!;
          if (condition === 'busy-main') prober.send('busy on');
          if (condition === 'busy-reflector') reflector.send('load on');
          try {
            await sleep(options.settleMs);
            const from = Date.now();
            await sleep(options.windowMs);
            windows.push({ phase, condition, from, to: Date.now() });
          } finally {
            if (condition === 'busy-main') prober.send('busy off');
            if (condition === 'busy-reflector') reflector.send('load off');
          }
        }
      }
      let pingPath: PingSendPath | null = null;
      if (sendPath !== undefined) {
        const measured = await measurePingSendPath(path, env, sendPathId!, sendPath, farEndMs);
        if ('why' in measured) notes.push(`far end: ${measured.why}`);
        else pingPath = measured;
      }
      await sleep(300);
      prober.send('dump');
      const dump = await prober.next<{ samples: Sample[]; renderMs: number[] }>('samples', 30_000);
      sendPath?.send('dump');
      const spDump = sendPath
        ? await sendPath.next<{ samples: SendPathSample[]; missingTx: number }>('samples', 30_000)
        : undefined;

      reflector.send('stats');
      const stats = await reflector.next<{ busyMs: number }>('stats', 10_000);
      ping.child.kill('SIGINT');
      const pings: PingReply[] = await Promise.race([ping.done, sleep(10_000).then(() => [])]);
      for (const condition of conditions) {
        const mine = windows.filter((w) => w.condition === condition);
        const inside = (atMs: number): boolean => mine.some((w) => atMs >= w.from && atMs < w.to);
        const pick = (kind: string): { s: KindSummary; min: number } => {
          const inWindow = dump.samples.filter((s) => s.kind === kind && inside(s.sentAtMs));
          const ok = inWindow.flatMap((s) => (s.rtt === null ? [] : [s.rtt]));
          return {
            s: { ...summarise(ok), lost: inWindow.length - ok.length },
            min: Math.min(...ok),
          };
        };
        const pingIn = pings.filter((p) => inside(p.atMs)).map((p) => p.rtt);
        const udp = pick('udp');
        const icmp = pick('icmp');
        const sp = spDump?.samples.filter((x) => inside(x.sentAtMs));
        rows.push({
          phase,
          condition,
          udp: udp.s,
          icmp: icmp.s,
          udpMin: udp.min,
          icmpMin: icmp.min,
          ping: { ...summarise(pingIn), lost: 0, min: Math.min(...pingIn) },
          icmpDetail: sp === undefined ? null : icmpDetail(sp),
        });
      }
      if (spDump !== undefined && spDump.missingTx > 0)
        notes.push(
          `send-path prober: ${spDump.missingTx} echoes had no kernel transmit time and were left out`,
        );
      phases.push({
        phase,
        sources: info.sources,
        reflector: ready.timestamps,
        where: info.where,
        kinds: info.kinds,
        renderBytes: info.renderBytes,
        renderMs: summarise(dump.renderMs),
        reflectorBusyMs: stats.busyMs,
        pingSendPath: pingPath,
        ...(notes.length > 0 ? { icmpDetailNote: notes.join('; ') } : {}),
      });
    } finally {
      ping?.child.kill('SIGKILL');
      await prober?.stop(3000);
      await sendPath?.stop(3000);
      await reflector.stop(3000);
    }
  }
  return { path, options, rows, phases };
}

/** One condition's send-path prober numbers. */
function icmpDetail(sp: readonly SendPathSample[]): IcmpDetail {
  const paths = sp.map((x) => x.userRtt - x.kernelRtt);
  return {
    userRtt: summarise(sp.map((x) => x.userRtt)),
    kernelRtt: summarise(sp.map((x) => x.kernelRtt)),
    sendPath: summarise(paths),
    sendPathMin: Math.min(...paths),
  };
}

/**
 * One idle window with the far end watching (ping and the send-path prober still running): the
 * far end's samples from the send-path prober (its identifier) give the hop, joined to the
 * prober's own by sequence number; the others that carry a time are ping's (podmesh's icmp
 * writes none).
 */
async function measurePingSendPath(
  path: PathSpec,
  env: NodeJS.ProcessEnv,
  sendPathId: number,
  sendPath: JsonChild,
  windowMs: number,
): Promise<PingSendPath | { why: string }> {
  const farEnd = spawnInNs(
    path.reflectorNs,
    'bench/rtt-far-end.ts',
    { address: path.reflectorAddress },
    env,
  );
  try {
    const ready = await farEnd.next<{ ok: boolean; why?: string }>('ready', 30_000);
    if (!ready.ok) return { why: ready.why ?? 'not available' };
    await sleep(300);
    const from = Date.now();
    await sleep(windowMs);
    const to = Date.now();
    farEnd.send('dump');
    const fe = (await farEnd.next<{ samples: FarEndSample[] }>('samples', 30_000)).samples.filter(
      (x) => x.sentAtMs >= from && x.sentAtMs < to,
    );
    sendPath.send('dump');
    const mine = await sendPath.next<{ samples: SendPathSample[] }>('samples', 30_000);
    const bySeq = new Map(
      mine.samples.filter((x) => x.sentAtMs >= from - 1000).map((x) => [x.seq, x]),
    );
    const hops = fe.flatMap((x) => {
      const m = x.id === sendPathId ? bySeq.get(x.seq) : undefined;
      return m === undefined ? [] : [x.oneWay - (m.userRtt - m.kernelRtt)];
    });
    const ping = fe.filter((x) => x.id !== sendPathId).map((x) => x.oneWay);
    if (ping.length === 0 || hops.length === 0)
      return { why: `no timed echo requests seen (ping ${ping.length}, prober ${hops.length})` };
    const toFarEnd = summarise(ping);
    const hop = summarise(hops);
    return {
      toFarEnd,
      hop,
      sendPath: toFarEnd.p50 - hop.p50,
      toFarEndMin: Math.min(...ping),
      hopMin: Math.min(...hops),
    };
  } finally {
    await farEnd.stop(3000);
  }
}

// ---- targets and report ------------------------------------------------------------------------

export const CONDITION_LABEL: Record<Condition, string> = {
  idle: 'idle',
  'busy-main': 'busy: 5 MB /metrics render every 1 s (prober main thread)',
  'busy-reflector': 'busy: random-phase CPU load on the reflector thread',
};

/** The issue's targets (issue 8): podmesh's RTT next to ping's, in µs. */
export const RTT_TARGETS = { medianWithinUs: 20, p99AboveUs: 100 } as const;

export interface TargetCheck {
  readonly name: string;
  readonly measuredUs: number;
  /** How the limit reads: "±20" for the median (either side), "≤ 100" for the p99. */
  readonly limit: string;
  readonly limitUs: number;
  readonly pass: boolean;
  /** Why a miss is what it is, when the numbers say (a median below ping's). */
  readonly note?: string;
}

/**
 * The issue's targets: median within 20 µs of ping's median and p99 no more than 100 µs above
 * ping's p99, for udp and icmp, idle and with a busy main thread; with a busy reflector, udp's
 * p99 (icmp is answered by the kernel, so the reflector's load can't reach it). One set per phase.
 */
export function checkTargets(report: RttLabReport): TargetCheck[] {
  const out: TargetCheck[] = [];
  const { medianWithinUs, p99AboveUs } = RTT_TARGETS;
  for (const r of report.rows) {
    for (const kind of ['udp', 'icmp'] as const) {
      const s = r[kind];
      if (s.n === 0 && s.lost === 0) continue; // not probed in this run
      const label = `${r.phase === 'kernel' ? '' : `${r.phase} `}${kind} ${r.condition}`;
      const d50 = (s.p50 - r.ping.p50) * 1e6;
      const d99 = (s.p99 - r.ping.p99) * 1e6;
      if (r.condition !== 'busy-reflector') {
        const below = d50 < -medianWithinUs;
        out.push({
          name: `rtt-lab ${label}: median - ping median`,
          measuredUs: d50,
          limit: `±${medianWithinUs}`,
          limitUs: medianWithinUs,
          pass: Number.isFinite(d50) && Math.abs(d50) <= medianWithinUs,
          ...(below ? { note: 'below ping' } : {}),
        });
      }
      if (r.condition !== 'busy-reflector' || kind === 'udp')
        out.push({
          name: `rtt-lab ${label}: p99 - ping p99`,
          measuredUs: d99,
          limit: `≤ ${p99AboveUs}`,
          limitUs: p99AboveUs,
          pass: Number.isFinite(d99) && d99 <= p99AboveUs,
        });
    }
  }
  return out;
}

function icmpVia(mode: string | undefined): string {
  if (mode === undefined) return '';
  return mode === 'raw-socket' ? ' via raw-socket' : ` via a ${mode} socket`;
}

/** One line per phase: what each kind used, the busy work's size. */
export function formatPhases(report: RttLabReport): string[] {
  return report.phases.map(
    (p) =>
      `${p.phase}: udp ${p.sources['udp']?.source} (${p.where['udp']}), icmp ${p.sources['icmp']?.source}${icmpVia(p.sources['icmp']?.mode)} (${p.where['icmp']}), reflector ${p.reflector.source}` +
      (p.renderMs.n > 0
        ? `; /metrics ${fmt(p.renderBytes / 1e6, 1)} MB rendered in p50 ${fmt(p.renderMs.p50, 0)} ms / max ${fmt(p.renderMs.max, 0)} ms (${p.renderMs.n} renders)`
        : '') +
      (p.reflectorBusyMs > 0 ? `; reflector load ${fmt(p.reflectorBusyMs / 1000, 1)} s busy` : ''),
  );
}

/** podmesh and ping side by side, per phase and condition. */
export function formatRttTable(report: RttLabReport, title: string): string {
  return table(
    title,
    [
      'phase',
      'condition',
      'udp n',
      'udp p50',
      'udp p99',
      'icmp n',
      'icmp p50',
      'icmp p99',
      'ping n',
      'ping p50',
      'ping p99',
      'udp-ping p50',
      'udp-ping p99',
      'icmp-ping p50',
      'icmp-ping p99',
      'lost u/i',
    ],
    report.rows.map((r) => [
      r.phase,
      CONDITION_LABEL[r.condition],
      String(r.udp.n),
      us(r.udp.p50),
      us(r.udp.p99),
      String(r.icmp.n),
      us(r.icmp.p50),
      us(r.icmp.p99),
      String(r.ping.n),
      us(r.ping.p50),
      us(r.ping.p99),
      us(r.udp.p50 - r.ping.p50),
      us(r.udp.p99 - r.ping.p99),
      us(r.icmp.p50 - r.ping.p50),
      us(r.icmp.p99 - r.ping.p99),
      `${r.udp.lost}/${r.icmp.lost}`,
    ]),
  );
}

/**
 * The icmp comparison made like for like, per condition: podmesh's icmp and ping, the send-path
 * prober timed both ways, and ping's own send path (measured once, idle, per phase).
 */
export function formatIcmpTable(report: RttLabReport, title: string): string | undefined {
  const rows = report.rows.filter((r) => r.icmpDetail !== null);
  if (rows.length === 0) return undefined;
  const pingPath = (r: RttLabRow): number | undefined =>
    report.phases.find((p) => p.phase === r.phase)?.pingSendPath?.sendPath;
  return table(
    title,
    [
      'condition',
      'podmesh icmp',
      'ping',
      'ping - podmesh',
      "ping's send path",
      'podmesh + it',
      'T1 kernel',
      'T1 user',
      'JS send path',
      'JS send path p99',
      'n',
    ],
    rows.map((r) => {
      const d = r.icmpDetail!;
      const pp = pingPath(r);
      return [
        CONDITION_LABEL[r.condition],
        us(r.icmp.p50),
        us(r.ping.p50),
        us(r.ping.p50 - r.icmp.p50),
        us(pp),
        us(pp === undefined ? undefined : r.icmp.p50 + pp),
        us(d.kernelRtt.p50),
        us(d.userRtt.p50),
        us(d.sendPath.p50),
        us(d.sendPath.p99),
        String(d.userRtt.n),
      ];
    }),
  );
}

/** ping's send path as measured, and the findings it supports, one line each. */
export function icmpFindings(report: RttLabReport): string[] {
  const signed = (x: number | undefined): string =>
    x === undefined || !Number.isFinite(x) ? 'n/a' : `${x >= 0 ? '+' : ''}${fmt(x * 1e6, 0)} µs`;
  const lines: string[] = [];
  for (const p of report.phases) {
    const pp = p.pingSendPath;
    if (pp === null) continue;
    lines.push(
      `ping's own send path: ${fmt(pp.sendPath * 1e6, 0)} µs p50 = its T1 to the far end's kernel receive (p50 ${us(pp.toFarEnd.p50)}, p99 ${us(pp.toFarEnd.p99)}, n ${pp.toFarEnd.n}) less the hop (p50 ${us(pp.hop.p50)}), idle, with the far end watching`,
    );
    for (const r of report.rows) {
      const d = r.icmpDetail;
      if (r.phase !== p.phase || d === null || r.condition === 'busy-reflector') continue;
      lines.push(
        `${r.condition}: ping - podmesh icmp ${signed(r.ping.p50 - r.icmp.p50)}; podmesh icmp + ping's send path - ping ${signed(r.icmp.p50 + pp.sendPath - r.ping.p50)}; podmesh's socket with T1 read in JavaScript - ping ${signed(d.userRtt.p50 - r.ping.p50)}`,
      );
    }
  }
  return lines;
}

export const ICMP_TABLE_TITLE =
  "icmp like for like, p50 µs: ping's send path (its gettimeofday() before sendmsg(), which it writes into each packet, to the kernel's transmit; measured from the far end, idle) is in ping's RTT, not in podmesh's; T1 kernel / T1 user: a ping on podmesh's socket and addon (rtt-send-path.ts) timed from the kernel's transmit stamp (as podmesh) and from the clock read in JavaScript just before send(); JS send path = T1 kernel - T1 user";

export function formatTargets(checks: readonly TargetCheck[], title: string): string {
  return table(
    title,
    ['target', 'measured µs', 'limit µs', 'result'],
    checks.map((c) => [
      c.name,
      fmt(c.measuredUs, 0),
      c.limit,
      c.pass ? 'PASS' : c.note !== undefined ? `MISS (${c.note})` : 'MISS',
    ]),
  );
}

export function formatReport(report: RttLabReport): string {
  const o = report.options;
  const lines = [
    ...formatPhases(report),
    formatRttTable(
      report,
      `RTT ${report.path.proberAddress} (${report.path.proberNs}) -> ${report.path.reflectorAddress} (${report.path.reflectorNs}), µs; one udp and one icmp probe every ${o.intervalMs} ms, iputils ping -i ${o.intervalMs / 1000} at the same time; ${o.rounds} rounds × ${o.windowMs / 1000} s windows per condition`,
    ),
  ];
  const icmp = formatIcmpTable(report, ICMP_TABLE_TITLE);
  if (icmp !== undefined) lines.push(icmp, ...icmpFindings(report).map((l) => `  ${l}`));
  for (const p of report.phases)
    if (p.icmpDetailNote !== undefined) lines.push(`${p.phase}: ${p.icmpDetailNote}`);
  lines.push(
    formatTargets(
      checkTargets(report),
      `Targets: median within ${RTT_TARGETS.medianWithinUs} µs of ping's, p99 at most ${RTT_TARGETS.p99AboveUs} µs above ping's`,
    ),
  );
  return lines.join('\n');
}

// ---- two namespaces joined by a veth pair ------------------------------------------------------

export interface VethPath extends PathSpec {
  readonly down: () => void;
}

function ip(args: readonly string[], input?: string): void {
  const r = spawnSync(bin('ip'), args, { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

/**
 * Two namespaces (prober, reflector) joined by a veth pair, addressed from 198.18.250.0/24
 * (outside the blocks test/lab uses); the prober's allows unprivileged ICMP, as containerd 2.x
 * sets up a Pod.
 */
export function vethPath(): VethPath {
  const id = randomBytes(2).toString('hex');
  const a = `pmrtt${id}p`;
  const b = `pmrtt${id}r`;
  const net = 4 * (Number.parseInt(id, 16) % 64);
  const proberAddress = `198.18.250.${net + 1}`;
  const reflectorAddress = `198.18.250.${net + 2}`;
  const down = (): void => {
    for (const ns of [a, b]) {
      const pids = spawnSync(bin('ip'), ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
      for (const pid of pids.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
      spawnSync(bin('ip'), ['netns', 'del', ns]);
    }
  };
  try {
    ip(['netns', 'add', a]);
    ip(['netns', 'add', b]);
    ip(['link', 'add', 'v0', 'netns', a, 'type', 'veth', 'peer', 'name', 'v0', 'netns', b]);
    for (const [ns, addr] of [
      [a, proberAddress],
      [b, reflectorAddress],
    ] as const) {
      ip(['-n', ns, 'addr', 'add', `${addr}/30`, 'dev', 'v0']);
      ip(['-n', ns, 'link', 'set', 'v0', 'up']);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    ip([
      'netns',
      'exec',
      a,
      '/bin/sh',
      '-c',
      'echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range',
    ]);
  } catch (e) {
    down();
    throw e;
  }
  return { proberNs: a, proberAddress, reflectorNs: b, reflectorAddress, down };
}

// ---- main ----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const unavailable = rttLabUnavailable();
  if (unavailable !== undefined) throw new Error(`rtt-lab ${unavailable}`);
  const quick = process.argv.includes('--quick');
  const arg = (name: string): string | undefined =>
    process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const phasesArg = arg('phases');
  const kindsArg = arg('kinds');
  const options: RttLabOptions = {
    ...DEFAULT_OPTIONS,
    ...(quick ? { rounds: 2, windowMs: 1500 } : {}),
    ...(phasesArg !== undefined ? { phases: phasesArg.split(',') as Phase[] } : {}),
    dropNetRaw: process.argv.includes('--no-net-raw'),
    ...(kindsArg !== undefined ? { probeKinds: kindsArg.split(',') as ('udp' | 'icmp')[] } : {}),
  };
  const path = vethPath();
  const cleanup = (): void => {
    killChildren();
    path.down();
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      cleanup();
      process.exit(130);
    });
  const started = performance.now();
  try {
    const report = await measureRttPath(path, options);
    process.stdout.write(`${formatReport(report)}\n`);
    process.stdout.write(`rtt-lab took ${fmt((performance.now() - started) / 1000, 1)} s\n`);
    const { down: _down, ...pathData } = path;
    process.stdout.write(
      `RTT_LAB_JSON ${JSON.stringify({ ...report, path: pathData, targets: checkTargets(report) })}\n`,
    );
  } finally {
    cleanup();
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`rtt-lab failed: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}
