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
// userspace: podmesh as it ran before the addon, for comparison). docs/timestamps.md explains
// the method and has sample output.
//
//   sudo npx tsx bench/rtt-lab.ts [--quick] [--phases=kernel,userspace]
//
// Needs root, iproute2 and iputils-ping. Creates two namespaces joined by a veth pair, with
// addresses in 198.18.0.0/15 that exist only inside them, and removes them at the end (on error
// and on SIGINT/SIGTERM too). test/lab/lab-rtt.test.ts runs measureRttPath() on the lab's own
// pod-to-pod path. Prints a table and one line `RTT_LAB_JSON {...}`.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ROOT,
  fmt,
  killChildren,
  sleep,
  summarise,
  table,
  track,
  us,
  type Summary,
} from './lib.ts';
import type { ProberSpec, Sample } from './rtt-prober.ts';

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
  /** Probe interval of each job (one udp, one icmp) and ping's -i. */
  readonly intervalMs: number;
  /** Run the prober without CAP_NET_RAW (setpriv), as a "restricted" Pod would. */
  readonly dropNetRaw?: boolean;
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

export interface RttLabRow {
  readonly phase: Phase;
  readonly condition: Condition;
  readonly udp: KindSummary;
  readonly icmp: KindSummary;
  readonly ping: KindSummary & { readonly min: number };
  /** Smallest udp / icmp RTT in the windows, seconds. */
  readonly udpMin: number;
  readonly icmpMin: number;
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

/** Only 198.18.0.0/15 (RFC 2544 benchmarking space), where the lab's addresses live. */
export function assertLabAddress(address: string): string {
  if (!/^198\.1[89]\.\d{1,3}\.\d{1,3}$/.test(address))
    throw new Error(`rtt-lab address ${address} is not in 198.18.0.0/15`);
  return address;
}

// ---- children in namespaces, speaking JSON lines ---------------------------------------------

interface NsChild {
  next<T>(type: string, timeoutMs: number): Promise<T>;
  send(line: string): void;
  stop(): Promise<void>;
}

function spawnInNs(
  ns: string,
  script: string,
  arg: unknown,
  env: NodeJS.ProcessEnv,
  prefix: readonly string[] = [],
): NsChild {
  const proc = track(
    spawn(
      bin('ip'),
      [
        'netns',
        'exec',
        ns,
        ...prefix,
        process.execPath,
        '--import',
        'tsx',
        script,
        JSON.stringify(arg),
      ],
      { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'inherit'] },
    ),
  );
  const queue: { type: string; msg: unknown }[] = [];
  const waiters: { type: string; resolve: (m: unknown) => void }[] = [];
  let exited: string | undefined;
  const failers = new Set<(why: string) => void>();
  let buf = '';
  proc.stdout?.setEncoding('utf8');
  proc.stdout?.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        msg = undefined;
      }
      const type = typeof msg === 'object' && msg !== null && 'type' in msg ? msg.type : undefined;
      if (typeof type !== 'string') {
        if (line.trim() !== '') process.stderr.write(`[${script}] ${line}\n`);
        continue;
      }
      const w = waiters.findIndex((x) => x.type === type);
      if (w >= 0) waiters.splice(w, 1)[0]!.resolve(msg);
      else queue.push({ type, msg });
    }
  });
  proc.once('exit', (code, signal) => {
    exited = `${script} in ${ns} exited (code ${code}, signal ${signal})`;
    for (const f of failers) f(exited);
  });
  proc.stdin?.on('error', () => undefined);
  return {
    next<T>(type: string, timeoutMs: number): Promise<T> {
      const i = queue.findIndex((x) => x.type === type);
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]!.msg as T);
      if (exited !== undefined) return Promise.reject(new Error(exited));
      return new Promise<T>((resolve, reject) => {
        const fail = (why: string): void => {
          clearTimeout(timer);
          reject(new Error(why));
        };
        const timer = setTimeout(
          () => fail(`${script}: no "${type}" message within ${timeoutMs} ms`),
          timeoutMs,
        );
        failers.add(fail);
        waiters.push({
          type,
          resolve: (m) => {
            clearTimeout(timer);
            failers.delete(fail);
            resolve(m as T);
          },
        });
      });
    },
    send(line: string): void {
      proc.stdin?.write(`${line}\n`);
    },
    async stop(): Promise<void> {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.stdin?.end();
      const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** iputils ping for `seconds`; `-D` stamps each reply so it can be put in its window. */
function runPing(
  ns: string,
  address: string,
  intervalMs: number,
  seconds: number,
): { child: ChildProcess; done: Promise<{ atMs: number; rtt: number }[]> } {
  const child = track(
    spawn(
      bin('ip'),
      [
        'netns',
        'exec',
        ns,
        bin('ping'),
        '-n',
        '-D',
        '-i',
        String(intervalMs / 1000),
        '-w',
        String(Math.ceil(seconds)),
        assertLabAddress(address),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
  let text = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (c: string) => (text += c));
  child.stderr?.on('data', (c: Buffer) => process.stderr.write(`[ping] ${c.toString()}`));
  const done = new Promise<{ atMs: number; rtt: number }[]>((resolve) => {
    const finish = (): void => {
      const out: { atMs: number; rtt: number }[] = [];
      for (const m of text.matchAll(/^\[([\d.]+)\].*time=([\d.]+) ms/gm)) {
        const rtt = Number(m[2]) / 1000;
        out.push({ atMs: Number(m[1]) * 1000 - rtt * 1000, rtt });
      }
      resolve(out);
    };
    child.on('error', finish);
    child.on('close', finish);
  });
  return { child, done };
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
    let prober: NsChild | undefined;
    let ping: ReturnType<typeof runPing> | undefined;
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
      };
      const privs = options.dropNetRaw
        ? [bin('setpriv'), '--bounding-set=-net_raw', '--inh-caps=-net_raw']
        : [];
      prober = spawnInNs(path.proberNs, 'bench/rtt-prober.ts', spec, env, privs);
      const info = await prober.next<{
        sources: PhaseInfo['sources'];
        where: Record<string, string>;
        kinds: string[];
        renderBytes: number;
      }>('ready', 60_000);
      await sleep(1000);
      const windows: Window[] = [];
      const conditions = options.conditions;
      const totalS =
        (options.rounds * conditions.length * (options.settleMs + options.windowMs)) / 1000 + 3;
      ping = runPing(path.proberNs, path.reflectorAddress, options.intervalMs, totalS);
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
      await sleep(300);
      prober.send('dump');
      const dump = await prober.next<{ samples: Sample[]; renderMs: number[] }>('samples', 30_000);
      reflector.send('stats');
      const stats = await reflector.next<{ busyMs: number }>('stats', 10_000);
      ping.child.kill('SIGINT');
      const pings = await Promise.race([ping.done, sleep(10_000).then(() => [])]);
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
        rows.push({
          phase,
          condition,
          udp: udp.s,
          icmp: icmp.s,
          udpMin: udp.min,
          icmpMin: icmp.min,
          ping: { ...summarise(pingIn), lost: 0, min: Math.min(...pingIn) },
        });
      }
      phases.push({
        phase,
        sources: info.sources,
        reflector: ready.timestamps,
        where: info.where,
        kinds: info.kinds,
        renderBytes: info.renderBytes,
        renderMs: summarise(dump.renderMs),
        reflectorBusyMs: stats.busyMs,
      });
    } finally {
      ping?.child.kill('SIGKILL');
      await prober?.stop();
      await reflector.stop();
    }
  }
  return { path, options, rows, phases };
}

// ---- report ------------------------------------------------------------------------------------

const CONDITION_LABEL: Record<Condition, string> = {
  idle: 'idle',
  'busy-main': 'busy: 5 MB /metrics render every 1 s (prober main thread)',
  'busy-reflector': 'busy: random-phase CPU load on the reflector thread',
};

export interface TargetCheck {
  readonly name: string;
  readonly measuredUs: number;
  readonly limitUs: number;
  readonly pass: boolean;
}

/** The targets, per phase and condition: median within 20 µs, p99 within 100 µs of ping. */
export function checkTargets(report: RttLabReport): TargetCheck[] {
  const out: TargetCheck[] = [];
  for (const r of report.rows) {
    for (const kind of ['udp', 'icmp'] as const) {
      const s = r[kind];
      if (s.n === 0) continue;
      const d50 = (s.p50 - r.ping.p50) * 1e6;
      const d99 = (s.p99 - r.ping.p99) * 1e6;
      out.push(
        {
          name: `${r.phase} ${kind} ${r.condition}: median - ping median`,
          measuredUs: d50,
          limitUs: 20,
          pass: Math.abs(d50) <= 20,
        },
        {
          name: `${r.phase} ${kind} ${r.condition}: p99 - ping p99`,
          measuredUs: d99,
          limitUs: 100,
          pass: d99 <= 100,
        },
      );
    }
  }
  return out;
}

function icmpVia(mode: string | undefined): string {
  if (mode === undefined) return '';
  return mode === 'raw-socket' ? ' via raw-socket' : ` via a ${mode} socket`;
}

export function formatReport(report: RttLabReport): string {
  const lines: string[] = [];
  for (const p of report.phases) {
    lines.push(
      `${p.phase}: udp ${p.sources['udp']?.source} (${p.where['udp']}), icmp ${p.sources['icmp']?.source}${icmpVia(p.sources['icmp']?.mode)} (${p.where['icmp']}), reflector ${p.reflector.source}` +
        (p.renderMs.n > 0
          ? `; /metrics ${fmt(p.renderBytes / 1e6, 1)} MB rendered in p50 ${fmt(p.renderMs.p50, 0)} ms / max ${fmt(p.renderMs.max, 0)} ms (${p.renderMs.n} renders)`
          : '') +
        (p.reflectorBusyMs > 0
          ? `; reflector load ${fmt(p.reflectorBusyMs / 1000, 1)} s busy`
          : ''),
    );
  }
  const o = report.options;
  lines.push(
    table(
      `RTT ${report.path.proberAddress} (${report.path.proberNs}) -> ${report.path.reflectorAddress} (${report.path.reflectorNs}), µs; one udp and one icmp probe every ${o.intervalMs} ms, iputils ping -i ${o.intervalMs / 1000} at the same time; ${o.rounds} rounds × ${o.windowMs / 1000} s windows per condition`,
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
        `${r.udp.lost}/${r.icmp.lost}`,
      ]),
    ),
  );
  const checks = checkTargets(report);
  lines.push(
    table(
      'Targets: median within 20 µs of ping, p99 within 100 µs of ping p99',
      ['check', 'measured µs', 'limit µs', 'result'],
      checks.map((c) => [
        c.name,
        fmt(c.measuredUs, 0),
        String(c.limitUs),
        // Below ping is not an error: ping's T1 is a user-space reading before its send.
        c.pass ? 'PASS' : c.measuredUs < 0 ? 'MISS (below ping)' : 'MISS',
      ]),
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
  if (process.getuid?.() !== 0) throw new Error('rtt-lab needs root (network namespaces)');
  for (const c of ['ip', 'ping']) bin(c);
  const quick = process.argv.includes('--quick');
  const phasesArg = process.argv.find((a) => a.startsWith('--phases='))?.slice('--phases='.length);
  const options: RttLabOptions = {
    ...DEFAULT_OPTIONS,
    ...(quick ? { rounds: 2, windowMs: 1500 } : {}),
    ...(phasesArg !== undefined ? { phases: phasesArg.split(',') as Phase[] } : {}),
    dropNetRaw: process.argv.includes('--no-net-raw'),
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
