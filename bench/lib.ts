// Helpers shared by the benchmark's processes: helper children that never outlive the bench and
// speak JSON lines, iputils ping runs, percentiles, CPU/wall accounting and a plain-text table
// printer.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  loadTimestamping,
  type NativeEventHandler,
  type NativeSocket,
  type SocketKind,
  type Stamps,
  type TimestampingAddon,
} from '../src/native/timestamping.ts';

/** The repository root: children start from here so `--import tsx` resolves. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

const children = new Set<ChildProcess>();

/** SIGKILLs every child still running; safe to call more than once (also runs at exit). */
export function killChildren(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        c.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
}
process.on('exit', killChildren);

/** Registers a child spawned elsewhere (ping) so it is killed with the rest. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export interface JsonChild {
  readonly proc: ChildProcess;
  /** Next JSON line from the child's stdout whose `type` is `type`. */
  next<T>(type: string, timeoutMs: number): Promise<T>;
  send(line: string): void;
  /** Closes stdin (the child's cue to exit), then kills it if it lingers. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `node --import tsx <script> <args>` from the repo root. Every stdout line that parses
 * as a JSON object with a string `type` is a message; other lines are passed through to stderr.
 */
export function spawnTs(script: string, args: readonly string[]): JsonChild {
  return spawnNode(['--import', 'tsx', script, ...args], ROOT, script);
}

/** Starts `node <nodeArgs>` in `cwd` and speaks the JSON-line protocol described above. */
export function spawnNode(nodeArgs: readonly string[], cwd: string, script: string): JsonChild {
  return jsonChild(
    spawn(process.execPath, nodeArgs, { cwd, stdio: ['pipe', 'pipe', 'inherit'] }),
    script,
  );
}

/**
 * The JSON-line protocol over any child with piped stdin and stdout (a node started directly,
 * or through `ip netns exec`): tracks it, queues its messages by `type`, and fails waiters with
 * `label` in the message when it exits.
 */
export function jsonChild(child: ChildProcess, label: string): JsonChild {
  const proc = track(child);
  const queue: { type: string; msg: unknown }[] = [];
  const waiters: { type: string; resolve: (m: unknown) => void }[] = [];
  let exited: string | undefined;
  const failWaiters: ((why: string) => void)[] = [];
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
        if (line.trim() !== '') process.stderr.write(`[${label}] ${line}\n`);
        continue;
      }
      const w = waiters.findIndex((x) => x.type === type);
      if (w >= 0) waiters.splice(w, 1)[0]!.resolve(msg);
      else queue.push({ type, msg });
    }
  });
  proc.once('exit', (code, signal) => {
    exited = `${label} exited (code ${code}, signal ${signal})`;
    for (const f of failWaiters.splice(0)) f(exited);
  });
  proc.stdin?.on('error', () => undefined);
  return {
    proc,
    next<T>(type: string, timeoutMs: number): Promise<T> {
      const i = queue.findIndex((x) => x.type === type);
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]!.msg as T);
      if (exited !== undefined) return Promise.reject(new Error(exited));
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${label}: no "${type}" message within ${timeoutMs} ms`)),
          timeoutMs,
        );
        const waiter = {
          type,
          resolve: (m: unknown) => {
            clearTimeout(timer);
            resolve(m as T);
          },
        };
        waiters.push(waiter);
        failWaiters.push((why) => {
          clearTimeout(timer);
          reject(new Error(why));
        });
      });
    },
    send(line: string): void {
      proc.stdin?.write(`${line}\n`);
    },
    async stop(graceMs = 2000): Promise<void> {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.stdin?.end();
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** One reply of iputils ping: when its request was sent (Unix ms) and its RTT (seconds). */
export interface PingReply {
  readonly atMs: number;
  readonly rtt: number;
}

/**
 * iputils ping at `intervalMs` until `count` replies or `deadlineS`; `command` is the ping binary
 * with whatever runs it (e.g. `ip netns exec <ns> /usr/bin/ping`). `-D` stamps every reply with
 * its Unix time, so each `time=` can be put in the window its request was sent in. The caller
 * checks `address` (loopback, or a lab address). `done` resolves once ping exits ([] if it
 * could not start).
 */
export function startPing(
  command: readonly [string, ...string[]],
  address: string,
  o: { readonly intervalMs: number; readonly deadlineS: number; readonly count?: number },
): { child: ChildProcess; done: Promise<PingReply[]> } {
  const [bin, ...prefix] = command;
  const args = [
    ...prefix,
    '-n',
    '-D',
    '-i',
    String(o.intervalMs / 1000),
    ...(o.count !== undefined ? ['-c', String(o.count)] : []),
    '-w',
    String(Math.ceil(o.deadlineS)),
    address,
  ];
  const child = track(spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let text = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (c: string) => (text += c));
  child.stderr?.on('data', (c: Buffer) => process.stderr.write(`[ping] ${c.toString()}`));
  const done = new Promise<PingReply[]>((resolve) => {
    child.on('error', () => resolve([]));
    child.on('close', () => resolve(parsePingReplies(text)));
  });
  return { child, done };
}

/** The replies in `ping -D` output; atMs is the send time (reply time minus the RTT). */
export function parsePingReplies(text: string): PingReply[] {
  const out: PingReply[] = [];
  for (const m of text.matchAll(/^\[([\d.]+)\].*time=([\d.]+) ms/gm)) {
    const rtt = Number(m[2]) / 1000;
    out.push({ atMs: Number(m[1]) * 1000 - rtt * 1000, rtt });
  }
  return out;
}

/** Makes a child exit when its parent goes away (stdin closes), whatever killed the parent. */
export function exitWhenParentGoes(
  onLine?: (line: string) => void,
  cleanup?: () => Promise<void>,
): void {
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line !== '') onLine?.(line);
    }
  });
  process.stdin.on('end', () => {
    const done = (): never => process.exit(0);
    // Bounded: a hung cleanup must not keep the child alive.
    setTimeout(done, 1500).unref();
    void (cleanup?.() ?? Promise.resolve()).finally(done);
  });
}

export function send(msg: Record<string, unknown> & { type: string }): void {
  process.stdout.write(`${JSON.stringify(msg)}\n`);
}

/**
 * For a child that measures with the timestamping addon: one of its sockets, opened with
 * `handler(addon, socket)` as its event callback; or, when the addon can't load or the socket
 * can't be opened, undefined after saying why ({"type":"ready","ok":false,"why":...}) and
 * waiting for the parent to stop it.
 */
export function openAddonSocket(
  kind: SocketKind,
  address: string,
  stamps: Stamps,
  handler: (addon: TimestampingAddon, socket: () => NativeSocket) => NativeEventHandler,
): { addon: TimestampingAddon; socket: NativeSocket } | undefined {
  const notReady = (why: string): undefined => {
    send({ type: 'ready', ok: false, why });
    exitWhenParentGoes();
    return undefined;
  };
  const load = loadTimestamping();
  if (!load.ok) return notReady(load.reason);
  let socket: NativeSocket | undefined;
  try {
    socket = new load.addon.Socket(
      kind,
      address,
      0,
      stamps,
      handler(load.addon, () => socket!),
    );
  } catch (err) {
    return notReady(`cannot open the socket: ${String(err)}`);
  }
  return { addon: load.addon, socket };
}

/** Only 127.0.0.0/8: the bench must never send anything off the machine. */
export function assertLoopback(address: string): string {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address))
    throw new Error(`bench address ${address} is not in 127.0.0.0/8`);
  return address;
}

/**
 * The zone the bench's DnsServer (in bench/responders.ts) is authoritative for, and the name the
 * dns section queries. Here rather than in responders.ts, which runs its main() when imported.
 */
export const BENCH_DNS_ZONE = 'cluster.local';
export const BENCH_DNS_NAME = 'kubernetes.default.svc.cluster.local';
/**
 * A small zone shaped like a cluster's. The addresses are only answer data (nothing is sent to
 * them), and are loopback anyway so nobody copying them sends traffic anywhere.
 */
export const BENCH_DNS_RECORDS: Readonly<Record<string, readonly string[]>> = {
  [BENCH_DNS_NAME]: ['127.0.90.1'],
  'kube-dns.kube-system.svc.cluster.local': ['127.0.90.10'],
  'podmesh.podmesh.svc.cluster.local': ['127.0.90.20'],
  'node-a.podmesh.podmesh.svc.cluster.local': ['127.0.91.1'],
  'node-b.podmesh.podmesh.svc.cluster.local': ['127.0.91.2'],
  'node-c.podmesh.podmesh.svc.cluster.local': ['127.0.91.3'],
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

export interface Summary {
  readonly n: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export function summarise(values: readonly number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 0.5),
    p90: percentile(s, 0.9),
    p99: percentile(s, 0.99),
    max: s.length === 0 ? Number.NaN : s[s.length - 1]!,
  };
}

/** CPU seconds (user + system, every thread of this process) and wall seconds since `start`. */
export interface Meter {
  stop(): { wallS: number; cpuS: number; userS: number; systemS: number };
}

export function meter(): Meter {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  return {
    stop() {
      const c = process.cpuUsage(cpu0);
      return {
        wallS: Number(process.hrtime.bigint() - t0) / 1e9,
        cpuS: (c.user + c.system) / 1e6,
        userS: c.user / 1e6,
        systemS: c.system / 1e6,
      };
    },
  };
}

/** Formats a number with a fixed number of decimals, or "n/a". */
export function fmt(x: number | undefined | null, decimals = 1): string {
  return x === undefined || x === null || !Number.isFinite(x) ? 'n/a' : x.toFixed(decimals);
}

/** Microseconds, from seconds. */
export function us(seconds: number | undefined): string {
  return seconds === undefined ? 'n/a' : fmt(seconds * 1e6, 0);
}

export function table(
  title: string,
  headers: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [``, title, rule, line(headers), rule, ...rows.map(line), rule].join('\n');
}
