// Builds and runs the libFuzzer harness of the timestamping addon's receive path
// (receive-fuzz.c over ../receive.c) under AddressSanitizer and UndefinedBehaviorSanitizer, and
// reads libFuzzer's own counts back. fuzz.test.ts runs it for a few seconds inside `npm test`;
// run it for longer from the command line (docs/timestamps.md, "Fuzzing"):
//
//   npx tsx src/native/fuzz/fuzz.ts --seconds 600 [--corpus DIR] [--jobs N] [--seed N] [--coverage]
//
// It needs clang with its compiler-rt runtimes (Debian: clang, libclang-rt-dev; .ci/run installs
// them). Development tooling only: nothing in podmesh imports it.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

/** The harness and the code it fuzzes. */
export const FUZZ_SOURCES = [join(here, 'receive-fuzz.c'), join(here, '../receive.c')];
/** Inputs kept in the repo (a minimised corpus of a long run): every run starts from them. */
export const SEED_CORPUS = join(here, 'corpus');

/** The first clang that runs: $CLANG, then `clang`, then versioned names. */
export function findClang(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const names = [env.CLANG, 'clang', ...[19, 18, 17, 16, 15, 14].map((v) => `clang-${v}`)];
  for (const name of names) {
    if (name === undefined || name === '') continue;
    const r = spawnSync(name, ['--version'], { stdio: 'ignore' });
    if (r.status === 0) return name;
  }
  return undefined;
}

interface Ran {
  readonly status: number | null;
  readonly output: string;
}

function run(cmd: string, args: readonly string[], cwd?: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
  });
}

/** Compiles the harness into `outDir`; resolves with the binary's path, rejects with clang's output. */
export async function buildFuzzer(clang: string, outDir: string): Promise<string> {
  const binary = join(outDir, 'receive-fuzz');
  const r = await run(clang, [
    '-std=gnu11',
    '-g',
    '-O1',
    '-fno-omit-frame-pointer',
    '-fsanitize=fuzzer,address,undefined',
    // An undefined-behaviour report stops the run like a crash, instead of a line in the log.
    '-fno-sanitize-recover=all',
    '-Wall',
    '-Wextra',
    ...FUZZ_SOURCES,
    '-o',
    binary,
  ]);
  if (r.status !== 0)
    throw new Error(
      `${clang} could not build the fuzzer (is libclang-rt-dev installed?):\n${r.output}`,
    );
  return binary;
}

export interface FuzzResult {
  /** libFuzzer's exit status: 0 when the time ran out with nothing found. */
  readonly status: number | null;
  /** A sanitizer report, a failed check of the harness, a timeout or out-of-memory. */
  readonly found: boolean;
  /** Where libFuzzer saved the input that found it. */
  readonly artifact: string | undefined;
  readonly execs: number;
  readonly execsPerSec: number;
  /** Edges of the instrumented code covered (libFuzzer's `cov`), and its finer features (`ft`). */
  readonly cov: number;
  readonly ft: number;
  /** Inputs in the corpus at the end, and how many this run added. */
  readonly corpus: number;
  readonly newUnits: number;
  readonly peakRssMb: number;
  readonly output: string;
}

export interface FuzzOptions {
  readonly seconds: number;
  /** New inputs are written to the first; the others are read only. */
  readonly corpusDirs: readonly string[];
  /** Where a crashing input is written. */
  readonly artifactDir: string;
  readonly seed?: number;
  /** Parallel fuzzing processes (libFuzzer -fork); 1 runs in this one. */
  readonly jobs?: number;
}

function stat(output: string, name: string): number {
  const m = new RegExp(`^stat::${name}:\\s*(\\d+)`, 'm').exec(output);
  return m ? Number(m[1]) : 0;
}

/** The last status line's value of `cov:`, `ft:`, `corp:` and so on. */
function last(output: string, key: string): number {
  const all = [...output.matchAll(new RegExp(`\\b${key}: (\\d+)`, 'g'))];
  const m = all.at(-1);
  return m ? Number(m[1]) : 0;
}

/** Runs the fuzzer for `seconds`; resolves with libFuzzer's counts. */
export async function runFuzzer(binary: string, o: FuzzOptions): Promise<FuzzResult> {
  for (const dir of o.corpusDirs) mkdirSync(dir, { recursive: true });
  mkdirSync(o.artifactDir, { recursive: true });
  const jobs = o.jobs ?? 1;
  const args = [
    `-max_total_time=${o.seconds}`,
    '-print_final_stats=1',
    '-max_len=4096',
    '-timeout=10',
    '-rss_limit_mb=2048',
    `-artifact_prefix=${o.artifactDir}/`,
    ...(o.seed === undefined ? [] : [`-seed=${o.seed}`]),
    ...(jobs > 1 ? [`-fork=${jobs}`, '-ignore_crashes=0'] : []),
    ...o.corpusDirs,
  ];
  const r = await run(binary, args);
  const artifact = /Test unit written to (\S+)/.exec(r.output)?.[1];
  const found =
    r.status !== 0 ||
    artifact !== undefined ||
    /ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:/.test(r.output);
  return {
    status: r.status,
    found,
    artifact,
    // With -fork the parent prints no stat:: lines; its status lines count every job's runs.
    execs: stat(r.output, 'number_of_executed_units') || lastExecs(r),
    execsPerSec: stat(r.output, 'average_exec_per_sec') || last(r.output, 'exec/s'),
    cov: last(r.output, 'cov'),
    ft: last(r.output, 'ft'),
    corpus: last(r.output, 'corp'),
    newUnits: stat(r.output, 'new_units_added'),
    peakRssMb: stat(r.output, 'peak_rss_mb'),
    output: r.output,
  };
}

function lastExecs(r: Ran): number {
  const all = [...r.output.matchAll(/^#(\d+)\s/gm)];
  const m = all.at(-1);
  return m ? Number(m[1]) : 0;
}

/** One line for a log or a report. */
export function summary(r: FuzzResult, seconds: number): string {
  return (
    `${r.found ? 'FOUND a failing input' : 'nothing found'} in ${seconds} s: ` +
    `${r.execs} executions (${r.execsPerSec}/s), cov ${r.cov}, ft ${r.ft}, ` +
    `corpus ${r.corpus} (${r.newUnits} new), peak RSS ${r.peakRssMb} MB` +
    (r.artifact === undefined ? '' : `; input saved to ${r.artifact}`)
  );
}

/**
 * Line, region and branch coverage of receive.c reached by the inputs in `corpusDirs`: the
 * harness built with clang's source-based coverage (no sanitizers), run once over every input,
 * and `llvm-cov report`. Needs llvm-profdata and llvm-cov of clang's version (Debian: llvm).
 */
export async function measureCoverage(
  clang: string,
  corpusDirs: readonly string[],
  work: string,
): Promise<string> {
  const binary = join(work, 'receive-cov');
  const profraw = join(work, 'receive.profraw');
  const profdata = join(work, 'receive.profdata');
  const build = await run(clang, [
    '-std=gnu11',
    '-O1',
    '-fsanitize=fuzzer',
    '-fprofile-instr-generate',
    '-fcoverage-mapping',
    ...FUZZ_SOURCES,
    '-o',
    binary,
  ]);
  if (build.status !== 0) throw new Error(`coverage build failed:\n${build.output}`);
  // -runs=0: every input of the corpus once, no fuzzing.
  const ran = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(binary, ['-runs=0', ...corpusDirs], {
      stdio: 'ignore',
      env: { ...process.env, LLVM_PROFILE_FILE: profraw },
    });
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (ran !== 0) throw new Error(`the coverage build exited with ${ran}`);
  const version = /clang-(\d+)$/.exec(clang)?.[1];
  const tool = (name: string): string => (version === undefined ? name : `${name}-${version}`);
  const merged = await run(tool('llvm-profdata'), ['merge', '-sparse', profraw, '-o', profdata]);
  if (merged.status !== 0) throw new Error(`llvm-profdata failed:\n${merged.output}`);
  const report = await run(tool('llvm-cov'), [
    'report',
    binary,
    `-instr-profile=${profdata}`,
    '-show-region-summary=true',
    '-show-branch-summary=true',
    FUZZ_SOURCES[1] ?? '',
  ]);
  if (report.status !== 0) throw new Error(`llvm-cov failed:\n${report.output}`);
  return report.output;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? (process.argv[i + 1] ?? fallback) : fallback;
}

async function main(): Promise<void> {
  const clang = findClang();
  if (clang === undefined) {
    process.stderr.write('no clang on PATH: apt-get install clang libclang-rt-dev\n');
    process.exit(2);
  }
  const seconds = Number(arg('seconds', '600'));
  const corpus = arg('corpus', join(os.tmpdir(), 'podmesh-receive-fuzz-corpus'));
  const jobs = Number(arg('jobs', '1'));
  const seed = arg('seed', '');
  const work = mkdtempSync(join(os.tmpdir(), 'podmesh-fuzz-'));
  try {
    const binary = await buildFuzzer(clang, work);
    process.stderr.write(`fuzzing the receive path for ${seconds} s; corpus in ${corpus}\n`);
    const r = await runFuzzer(binary, {
      seconds,
      corpusDirs: [corpus, SEED_CORPUS],
      artifactDir: process.cwd(),
      jobs,
      ...(seed === '' ? {} : { seed: Number(seed) }),
    });
    if (r.found) process.stderr.write(r.output.split('\n').slice(-60).join('\n'));
    process.stdout.write(`${summary(r, seconds)}\n`);
    process.exitCode = r.found ? 1 : 0;
    if (process.argv.includes('--coverage'))
      process.stdout.write(await measureCoverage(clang, [corpus, SEED_CORPUS], work));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
