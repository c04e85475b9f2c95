// `npm run bench -- --baseline=<git-ref>`: the same bench against another commit, on the same
// machine in the same run, so a change can show its CPU, RSS and RTT next to what it replaced
// (issue #15: "before and after in the same run on the same machine, within noise") without
// leaning on numbers measured elsewhere or at another time:
//
//   1. checks <ref> out into a temporary git worktree (`git worktree add --detach`), with this
//      checkout's node_modules (a symlink) and the timestamping addon: src/native/build copied
//      from here when src/native/timestamping.c and binding.gyp are the same at <ref>, built
//      there with src/native/build.mjs when they differ
//   2. runs each side's own bench/run.ts with the selected sections, one child process per run,
//      taking turns: baseline run 1, current run 1, baseline run 2, ... so a slow minute of a
//      shared machine lands on both sides rather than on one; each run's tables are printed as
//      they come. Each run bundles its own side (the load section's buildDist, with that side's
//      src/bundle.ts), so the baseline's agent is <ref>'s esbuild bundle
//   3. prints a comparison: per key number, each side's runs, their medians, current/baseline,
//      and whether the difference is within noise (the min-max range of either side's runs)
//   4. removes the worktree, on failure and on SIGINT/SIGTERM too (abortBaseline)
//
// Each side runs its own bench code because a restructuring moves the modules the bench
// imports: a bench built against one tree can't load the other. When bench/ differs between the
// sides, the output says so. The load section's Agent runs once per child (BENCH_AGENT_RUNS=1
// unless set): this module's interleaved runs take the place of that section's own three.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fmt, table, track } from './lib.ts';

export interface BaselineOptions {
  /** The git ref to compare against (a branch, tag or commit; HEAD compares the code with itself). */
  readonly ref: string;
  /** Runs per side, interleaved. */
  readonly runs: number;
  readonly sections: readonly string[];
  readonly quick: boolean;
  /** The current checkout's root (its working tree, uncommitted changes included, is "current"). */
  readonly root: string;
  readonly out: (line: string) => void;
}

/** One run's BENCH_JSON; read loosely, as an older ref's bench may print an older shape. */
type BenchJson = Record<string, unknown>;

const ADDON = 'src/native/build/Release/podmesh_timestamping.node';

function git(cwd: string, args: readonly string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8' });
  return { ok: r.status === 0, out: (r.stdout ?? '').trim(), err: (r.stderr ?? '').trim() };
}

// ---- the baseline's checkout ---------------------------------------------------------------

interface Checkout {
  readonly dir: string;
  readonly commit: string;
  /** Where the baseline's timestamping addon came from. */
  readonly addonNote: string;
  /** Synchronous, so a signal handler can call it; safe to call more than once. */
  remove(): void;
}

/** Set while a worktree exists (from before `git worktree add`) or a child bench runs. */
let removeWorktree: (() => void) | undefined;
let running: ChildProcess | undefined;

function checkOut(root: string, ref: string): Checkout {
  const rev = git(root, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  if (!rev.ok) throw new Error(`--baseline: ${ref} does not name a commit in ${root}`);
  const commit = rev.out;
  const dir = mkdtempSync(join(os.tmpdir(), 'podmesh-baseline-'));
  let added = false;
  const remove = (): void => {
    // The symlink first, so nothing below can reach the shared node_modules through it.
    rmSync(join(dir, 'node_modules'), { force: true });
    if (added) git(root, ['worktree', 'remove', '--force', dir]);
    rmSync(dir, { recursive: true, force: true });
    if (added) git(root, ['worktree', 'prune']);
    added = false;
    removeWorktree = undefined;
  };
  // Before the worktree exists: a signal during the checkout or the addon's build removes it too.
  removeWorktree = remove;
  try {
    const add = git(root, ['worktree', 'add', '--detach', dir, commit]);
    if (!add.ok) throw new Error(`git worktree add ${dir} ${commit}: ${add.err}`);
    added = true;
    symlinkSync(realpathSync(join(root, 'node_modules')), join(dir, 'node_modules'), 'dir');
    return { dir, commit, addonNote: addon(root, dir, commit), remove };
  } catch (e) {
    remove();
    throw e;
  }
}

/**
 * Gives the baseline the addon the current side has: the same file when its source is the same
 * at both commits (building it again would only cost time), built from <ref>'s source when not.
 * When this checkout has no addon, neither side gets one, so both time the same way.
 */
function addon(root: string, dir: string, commit: string): string {
  if (!existsSync(join(root, ADDON)))
    return 'none on either side (not built in this checkout: `npm run build:native`)';
  if (!git(root, ['cat-file', '-e', `${commit}:src/native/timestamping.c`]).ok)
    return 'none at that ref (no src/native/timestamping.c)';
  // Against the working tree: the current addon was built from what is on disk.
  const same = git(root, [
    'diff',
    '--quiet',
    commit,
    '--',
    'src/native/timestamping.c',
    'src/native/binding.gyp',
  ]).ok;
  if (same) {
    cpSync(join(root, 'src/native/build'), join(dir, 'src/native/build'), { recursive: true });
    return 'copied from this checkout (src/native/timestamping.c and binding.gyp unchanged)';
  }
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['src/native/build.mjs'], { cwd: dir, encoding: 'utf8' });
  // build.mjs never fails (an install must not): whether the file is there is the answer.
  if (!existsSync(join(dir, ADDON)))
    throw new Error(
      `--baseline: could not build the timestamping addon at ${commit.slice(0, 12)}, and the sides would time differently: ${`${r.stderr}${r.stdout}`.trim().split('\n').slice(-5).join(' | ')}`,
    );
  return `built from that ref's source in ${fmt((performance.now() - t0) / 1000, 1)} s (src/native differs)`;
}

/**
 * The sections the ref's bench/run.ts has: each is run under `if (ONLY.has('<name>'))`, and an
 * unknown name in --only makes it throw, so asking it for a missing one would fail the run.
 */
function sectionsAt(
  dir: string,
  wanted: readonly string[],
): { run: string[]; skipped: Record<string, string> } {
  const file = join(dir, 'bench/run.ts');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  const run: string[] = [];
  const skipped: Record<string, string> = {};
  for (const s of wanted) {
    if (text === undefined) skipped[s] = 'no bench/run.ts at that ref';
    else if (!text.includes(`ONLY.has('${s}')`))
      skipped[s] = `that ref's bench/run.ts has no ${s} section`;
    else run.push(s);
  }
  return { run, skipped };
}

// ---- one run of one side -------------------------------------------------------------------

interface RunOutcome {
  readonly json: BenchJson | null;
  /** Why there is no JSON (the child's exit), or undefined. */
  readonly failed?: string;
}

/**
 * `node --import tsx bench/run.ts <args>` in `dir`: its tables pass through to stdout as they
 * come, its BENCH_JSON line is kept (not printed: the comparison's is the one line scripts read).
 */
async function runSide(
  dir: string,
  args: readonly string[],
  out: (line: string) => void,
): Promise<RunOutcome> {
  const child = track(
    spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], {
      cwd: dir,
      // One Agent run per child: the runs of this module are the repeats (see the header).
      env: { ...process.env, BENCH_AGENT_RUNS: process.env['BENCH_AGENT_RUNS'] ?? '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  running = child;
  let json: BenchJson | null = null;
  let buf = '';
  const line = (l: string): void => {
    if (!l.startsWith('BENCH_JSON ')) return out(l);
    try {
      json = JSON.parse(l.slice('BENCH_JSON '.length)) as BenchJson;
    } catch {
      json = null;
    }
  };
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      line(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  const exit = await new Promise<string>((resolve) => {
    child.once('error', (e) => resolve(e.message));
    child.once('close', (code, signal) => resolve(`code ${code}, signal ${signal}`));
  });
  if (buf !== '') line(buf);
  running = undefined;
  return json !== null ? { json } : { json: null, failed: `bench/run.ts exited (${exit})` };
}

// ---- key numbers ---------------------------------------------------------------------------

interface Metric {
  readonly section: string;
  /** Which row of the section: a scenario, a mode, a prober. */
  readonly what: string;
  readonly name: string;
  readonly better: 'lower' | 'higher';
  readonly decimals: number;
  /** The smallest step its source prints (ping: 1 µs): no difference below it is judged. */
  readonly resolution?: number;
  readonly get: (j: BenchJson) => number | undefined;
}

type Loose = Record<string, unknown>;
const isObj = (x: unknown): x is Loose => typeof x === 'object' && x !== null;
const list = (x: unknown): Loose[] => (Array.isArray(x) ? x.filter(isObj) : []);
const num = (x: unknown): number | undefined =>
  typeof x === 'number' && Number.isFinite(x) ? x : undefined;
/** A Summary's field, seconds, as µs. */
const usOf = (s: unknown, field: 'p50' | 'p99'): number | undefined => {
  const v = isObj(s) ? num(s[field]) : undefined;
  return v === undefined ? undefined : v * 1e6;
};

/** Rows of a section that any run of either side printed, in first-seen order. */
function keysSeen<K>(runs: readonly BenchJson[], rows: (j: BenchJson) => K[]): K[] {
  const seen = new Map<string, K>();
  for (const j of runs) for (const k of rows(j)) seen.set(JSON.stringify(k), k);
  return [...seen.values()];
}

/** RTT rows: podmesh's udp and icmp p50/p99 per mode, ping's beside them as the path's floor. */
function rttMetrics(
  section: string,
  runs: readonly BenchJson[],
  rowsOf: (j: BenchJson) => Loose[],
  keyOf: (row: Loose) => string,
): Metric[] {
  const modes = keysSeen(runs, (j) => rowsOf(j).map(keyOf));
  const find = (j: BenchJson, mode: string): Loose | undefined =>
    rowsOf(j).find((r) => keyOf(r) === mode);
  return modes.flatMap((mode) =>
    (['udp', 'icmp', 'ping'] as const).flatMap((kind) =>
      (['p50', 'p99'] as const).map((p): Metric => ({
        section,
        what: mode,
        name: `${kind} ${p} µs`,
        better: 'lower',
        decimals: 1,
        // iputils prints `time=0.010 ms`: whole microseconds.
        ...(kind === 'ping' ? { resolution: 1 } : {}),
        get: (j) => usOf(find(j, mode)?.[kind], p),
      })),
    ),
  );
}

/** The key numbers of the sections both sides ran, from whatever rows their runs printed. */
function metrics(sections: readonly string[], runs: readonly BenchJson[]): Metric[] {
  const out: Metric[] = [];
  if (sections.includes('throughput')) {
    const tp = (j: BenchJson): Loose[] => list(j['throughput']);
    for (const name of keysSeen(runs, (j) => tp(j).map((t) => String(t['name']))))
      out.push({
        section: 'throughput',
        what: name,
        name: 'probes/CPU-s',
        better: 'higher',
        decimals: 0,
        get: (j) => num(tp(j).find((t) => t['name'] === name)?.['perCpuSec']),
      });
    for (const [key, label] of [
      ['udpVsBareDgram', 'udp CPU/probe ÷ bare dgram'],
      ['tcpVsBareConnect', 'tcp CPU/probe ÷ bare connect'],
    ] as const)
      out.push({
        section: 'throughput',
        what: 'overhead',
        name: label,
        better: 'lower',
        decimals: 2,
        get: (j) => (isObj(j['overhead']) ? num(j['overhead'][key]) : undefined),
      });
  }
  if (sections.includes('rtt')) {
    const rows = (j: BenchJson): Loose[] => (isObj(j['rtt']) ? list(j['rtt']['rows']) : []);
    out.push(...rttMetrics('rtt', runs, rows, (r) => String(r['mode'])));
  }
  if (sections.includes('load')) {
    const loads = (j: BenchJson): Loose[] => list(j['load']);
    const key = (l: Loose): string =>
      `${String(l['scenario'])} (${l['runner'] === 'source' ? 'tsx src' : 'bundle'})`;
    for (const what of keysSeen(runs, (j) => loads(j).map(key))) {
      const field =
        (f: string) =>
        (j: BenchJson): number | undefined =>
          num(loads(j).find((l) => key(l) === what)?.[f]);
      const m = (name: string, f: string, decimals: number): Metric => ({
        section: 'load',
        what,
        name,
        better: 'lower',
        decimals,
        get: field(f),
      });
      out.push(
        m('CPU % of 1 core', 'cpuPctOfOneCore', 2),
        m('CPU µs/probe', 'cpuUsPerProbe', 1),
        m('RSS max MB', 'rssMaxMB', 1),
        m('heap max MB', 'heapUsedMaxMB', 1),
      );
    }
  }
  if (sections.includes('dns')) {
    const dns = (j: BenchJson): Loose | undefined => (isObj(j['dns']) ? j['dns'] : undefined);
    const tp = (j: BenchJson): Loose[] => list(dns(j)?.['throughput']);
    for (const name of keysSeen(runs, (j) => tp(j).map((t) => String(t['name']))))
      out.push({
        section: 'dns',
        what: name,
        name: 'queries/CPU-s',
        better: 'higher',
        decimals: 0,
        get: (j) => num(tp(j).find((t) => t['name'] === name)?.['perCpuSec']),
      });
    for (const transport of ['udp', 'tcp'])
      for (const p of ['p50', 'p99'] as const)
        out.push({
          section: 'dns',
          what: `latency ${transport}`,
          name: `DnsProbe ${p} µs`,
          better: 'lower',
          decimals: 0,
          get: (j) =>
            usOf(
              list(dns(j)?.['latency']).find((r) => r['transport'] === transport)?.['podmesh'],
              p,
            ),
        });
  }
  if (sections.includes('rtt-lab')) {
    const rows = (j: BenchJson): Loose[] => (isObj(j['rttLab']) ? list(j['rttLab']['rows']) : []);
    out.push(
      ...rttMetrics(
        'rtt-lab',
        runs,
        rows,
        (r) => `${String(r['phase'])} ${String(r['condition'])}`,
      ),
    );
  }
  return out;
}

// ---- comparison ----------------------------------------------------------------------------

interface SideNumbers {
  readonly runs: number[];
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export interface Comparison {
  readonly section: string;
  readonly what: string;
  readonly metric: string;
  readonly better: 'lower' | 'higher';
  readonly baseline: SideNumbers | null;
  readonly current: SideNumbers | null;
  /** current median / baseline median. */
  readonly ratio: number | null;
  /**
   * The larger of the two sides' min-max ranges (sides with two runs or more), at least the
   * number's resolution: how far the same code moved from one run to the next here. null with
   * one run a side.
   */
  readonly noise: number | null;
  readonly verdict: string;
}

function median(sorted: readonly number[]): number {
  const m = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2;
}

function side(values: readonly (number | undefined)[]): SideNumbers | null {
  const runs = values.filter((v): v is number => v !== undefined);
  if (runs.length === 0) return null;
  const s = [...runs].sort((a, b) => a - b);
  return { runs, median: median(s), min: s[0]!, max: s[s.length - 1]! };
}

export function noiseOf(
  b: SideNumbers | null,
  c: SideNumbers | null,
  resolution = 0,
): number | null {
  const ranges = [b, c].flatMap((s) => (s !== null && s.runs.length > 1 ? [s.max - s.min] : []));
  return ranges.length === 0 ? null : Math.max(resolution, ...ranges);
}

/**
 * Within noise when the medians differ by no more than either side's min-max range: no more
 * than the same code moved from one run to the next on this machine in this run. With one run a
 * side there is no range, and nothing is judged.
 */
export function judge(
  b: SideNumbers | null,
  c: SideNumbers | null,
  better: 'lower' | 'higher',
  resolution = 0,
): string {
  if (b === null || c === null) return `n/a (${b === null ? 'baseline' : 'current'}: no value)`;
  const noise = noiseOf(b, c, resolution);
  if (noise === null) return 'not judged (one run a side)';
  if (Math.abs(c.median - b.median) <= noise) return 'within noise';
  const up = c.median > b.median;
  return `${up ? 'higher' : 'lower'}: ${up === (better === 'lower') ? 'WORSE' : 'better'}`;
}

export function compare(
  ms: readonly Metric[],
  base: readonly BenchJson[],
  cur: readonly BenchJson[],
): Comparison[] {
  return ms.map((m) => {
    const b = side(base.map(m.get));
    const c = side(cur.map(m.get));
    return {
      section: m.section,
      what: m.what,
      metric: m.name,
      better: m.better,
      baseline: b,
      current: c,
      ratio: b !== null && c !== null && b.median !== 0 ? c.median / b.median : null,
      noise: noiseOf(b, c, m.resolution),
      verdict: judge(b, c, m.better, m.resolution),
    };
  });
}

function formatComparison(
  rows: readonly Comparison[],
  ms: readonly Metric[],
  title: string,
): string {
  const decimals = (r: Comparison): number =>
    ms.find((m) => m.section === r.section && m.what === r.what && m.name === r.metric)?.decimals ??
    2;
  const runsText = (s: SideNumbers | null, d: number): string =>
    s === null ? 'n/a' : s.runs.map((v) => fmt(v, d)).join(' ');
  return table(
    title,
    [
      'section',
      'row',
      'number',
      'better',
      'baseline runs',
      'current runs',
      'baseline',
      'current',
      'cur/base',
      'noise',
      'verdict',
    ],
    rows.map((r) => {
      const d = decimals(r);
      return [
        r.section,
        r.what,
        r.metric,
        r.better,
        runsText(r.baseline, d),
        runsText(r.current, d),
        fmt(r.baseline?.median, d),
        fmt(r.current?.median, d),
        r.ratio === null ? 'n/a' : `${fmt(r.ratio, 3)}×`,
        r.noise === null || r.baseline === null || r.baseline.median === 0
          ? 'n/a'
          : `±${fmt((100 * r.noise) / Math.abs(r.baseline.median), 1)}%`,
        r.verdict,
      ];
    }),
  );
}

// ---- the whole comparison ------------------------------------------------------------------

/**
 * Runs the selected sections for the baseline and the current checkout, interleaved, prints
 * both and the comparison, then BENCH_JSON with both sides' runs and the comparison. Throws
 * (after printing and cleaning up) when a run failed.
 */
export async function runBaseline(o: BaselineOptions): Promise<void> {
  const started = performance.now();
  const { out } = o;
  const head = git(o.root, ['rev-parse', 'HEAD']).out;
  const dirty = git(o.root, ['status', '--porcelain', '--untracked-files=no']).out !== '';
  out(`baseline: checking out ${o.ref} into a temporary git worktree`);
  const co = checkOut(o.root, o.ref);
  const baseRuns: (BenchJson | null)[] = [];
  const curRuns: (BenchJson | null)[] = [];
  const failures: string[] = [];
  try {
    const { run: baseSections, skipped } = sectionsAt(co.dir, o.sections);
    const benchDiffers = !git(o.root, ['diff', '--quiet', co.commit, '--', 'bench/']).ok;
    const short = (c: string): string => c.slice(0, 12);
    const notes = [
      `baseline = ${o.ref} (${short(co.commit)}) in ${co.dir}; current = ${o.root} at ${short(head)}${dirty ? ' with uncommitted changes' : ''}`,
      `baseline's timestamping addon: ${co.addonNote}`,
      `${o.runs} runs a side, taking turns (baseline, current, baseline, ...); sections: ${o.sections.join(',')}${o.quick ? ' (--quick)' : ''}; the load section's Agent once per run (BENCH_AGENT_RUNS=${process.env['BENCH_AGENT_RUNS'] ?? '1'})`,
      ...Object.entries(skipped).map(([s, why]) => `skipped for the baseline: ${s} (${why})`),
      benchDiffers
        ? `bench/ differs between the sides: each measures with its own bench code (git diff ${short(co.commit)} -- bench/)`
        : 'bench/ is the same on both sides',
    ];
    for (const n of notes) out(n);
    const flags = o.quick ? ['--quick'] : [];
    const sides = [
      {
        name: 'baseline',
        label: `${o.ref} (${short(co.commit)})`,
        dir: co.dir,
        sections: baseSections,
        runs: baseRuns,
      },
      {
        name: 'current',
        label: `${short(head)}${dirty ? '+changes' : ''}`,
        dir: o.root,
        sections: [...o.sections],
        runs: curRuns,
      },
    ];
    for (let i = 0; i < o.runs; i++) {
      for (const s of sides) {
        if (s.sections.length === 0) continue;
        out(`\n===== ${s.name} ${s.label}: run ${i + 1} of ${o.runs} =====`);
        const r = await runSide(s.dir, [`--only=${s.sections.join(',')}`, ...flags], out);
        s.runs.push(r.json);
        if (r.failed !== undefined) {
          failures.push(`${s.name} run ${i + 1}: ${r.failed}`);
          out(`${s.name} run ${i + 1} failed: ${r.failed}`);
        }
      }
    }
    const base = baseRuns.filter((j): j is BenchJson => j !== null);
    const cur = curRuns.filter((j): j is BenchJson => j !== null);
    const both = o.sections.filter((s) => baseSections.includes(s));
    const ms = metrics(both, [...base, ...cur]);
    const comparison = compare(ms, base, cur);
    out(
      formatComparison(
        comparison,
        ms,
        `Comparison: current (${sides[1]!.label}) / baseline (${sides[0]!.label}), medians of ${o.runs} interleaved run${o.runs === 1 ? '' : 's'} a side; noise: the larger of the two sides' min-max ranges, as a share of the baseline's median; "within noise": the medians differ by no more than that`,
      ),
    );
    const beyond = comparison.filter((c) => c.verdict.endsWith('WORSE'));
    out(
      comparison.length === 0
        ? `nothing to compare: no section ran on both sides (${both.length === 0 ? 'the baseline has none of them' : 'no run printed its numbers'})`
        : comparison.every((c) => c.noise === null)
          ? 'nothing judged: one run a side gives no noise to judge by (--baseline-runs=3)'
          : beyond.length === 0
            ? 'no key number is worse beyond noise'
            : `worse beyond noise: ${beyond.map((c) => `${c.section} ${c.what} ${c.metric} ${fmt(c.ratio, 3)}×`).join('; ')}`,
    );
    if (failures.length > 0) out(`failed runs: ${failures.join('; ')}`);
    const elapsedS = (performance.now() - started) / 1000;
    out(`bench took ${fmt(elapsedS, 1)} s`);
    const json = {
      node: process.version,
      cores: os.cpus().length,
      quick: o.quick,
      elapsedS,
      sections: o.sections,
      baseline: {
        ref: o.ref,
        commit: co.commit,
        addon: co.addonNote,
        sections: baseSections,
        skipped,
        benchDiffers,
        runs: baseRuns,
      },
      current: { commit: head, dirty, runs: curRuns },
      comparison,
      failures,
    };
    out(`BENCH_JSON ${JSON.stringify(json)}`);
    if (failures.length > 0) throw new Error(`${failures.length} run(s) failed`);
  } finally {
    co.remove();
  }
}

/**
 * For a signal: lets the running child bench clean up after itself (its namespaces, its bundle
 * directory) for up to 10 s, then removes the worktree.
 */
export async function abortBaseline(): Promise<void> {
  const child = running;
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  }
  removeWorktree?.();
}
