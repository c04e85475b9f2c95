// The bench's controller scale section (`npm run bench -- --only=scale`, issue 18): the real
// controller (bench/controller-scale-controller.ts: runController with the shipped settings)
// pulling N simulated agents' rows (bench/controller-scale-agents.ts, rows from
// bench/controller-scale-rows.ts) over HTTP on loopback, each side in a process of its own, at
// a few cluster sizes. Per size: a collection round's wall time against the pull interval, the
// controller's CPU per round and the share of it triage takes (with the latency history), the
// process's peak RSS (VmHWM), and /api/v1/matrix's size and fetch time, fetched once after every
// round as an open web UI would. The targets: a round within its interval, the matrix
// and triage of 5,000 nodes within 1 s of CPU, the process within 512 MB.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { StaticPeer } from '../src/config/settings.ts';
import type { AgentsReady } from './controller-scale-agents.ts';
import type { ReportMessage, RoundMessage } from './controller-scale-controller.ts';
import { simAgent } from './controller-scale-rows.ts';
import { ROOT, spawnNode, spawnTs, type JsonChild } from './lib.ts';

/** A process's peak RSS (VmHWM) in MB, read from /proc; NaN when it is gone. */
function hwmOfMB(pid: number | undefined): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? Number.NaN : Number(m[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

/** Agents (2 a node) per size; 10,000 is issue 18's 5,000 nodes. */
export const SCALE_SIZES = [600, 2000, 10_000] as const;
/** Core peers per row: the shipped peers.limit (rotation off). */
export const SCALE_PEERS = 32;
/** How long past the cap a round may take before the size is reported as stalled. */
const STALL_MS = Number(process.env['BENCH_SCALE_STALL_MS'] ?? 60_000);
/** The shipped controller.pullIntervalMs (the round's target). */
export const PULL_INTERVAL_MS = 5000;

export const SCALE_TARGETS = {
  /** A round ends within the pull interval. */
  roundMs: PULL_INTERVAL_MS,
  /** Matrix and triage of 5,000 nodes (10,000 agents) within 1 s of CPU. */
  cpuMsAt10000: 1000,
  /** The controller's Deployment limit (deploy/base/controller.yaml). */
  rssMB: 512,
};

export interface ScaleRow {
  readonly agents: number;
  readonly nodes: number;
  readonly rounds: readonly RoundMessage[];
  /** Medians over the rounds after the first (the first warms the JIT up). */
  readonly roundMs: number;
  readonly cpuMs: number;
  readonly triageCpuMs: number;
  readonly okAgents: number;
  readonly cells: number;
  readonly hwmMB: number;
  readonly matrixBytes: number;
  readonly matrixFetchMs: number;
  readonly rowBytes: AgentsReady['rowBytes'];
  readonly row: Pick<AgentsReady, 'peersPerRow' | 'resultsPerRow' | 'dnsPerRow' | 'portsPerRow'>;
  /** Set when a round did not end within the bench's time: the numbers then are NaN. */
  readonly stalled?: string;
}

/** The controller's Node flags as shipped: deploy/Dockerfile's ENTRYPOINT (no heap cap). */
function shippedControllerFlags(): string[] {
  const dockerfile = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
  const entry = /^ENTRYPOINT (\[.*\])\s*$/m.exec(dockerfile)?.[1];
  if (entry === undefined) throw new Error('deploy/Dockerfile has no ENTRYPOINT ["node", ...]');
  return (JSON.parse(entry) as string[]).filter((a) => a.startsWith('--'));
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** GETs `url` and counts the body's bytes as they stream (nothing is kept). */
async function fetchBytes(url: string): Promise<{ bytes: number; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(url);
  let bytes = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>)
    bytes += chunk.byteLength;
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return { bytes, ms: performance.now() - t0 };
}

/**
 * One cluster size: the agents, then the controller, `rounds` rounds (or fewer when `capMs`
 * passes first), the matrix fetched after each, then the controller's high-water mark.
 */
export async function measureScale(
  agents: number,
  rounds: number,
  capMs: number,
  log: (line: string) => void,
): Promise<ScaleRow> {
  const started = performance.now();
  let sim: JsonChild | undefined;
  let ctl: JsonChild | undefined;
  const dir = mkdtempSync(join(os.tmpdir(), 'podmesh-scale-'));
  try {
    sim = spawnTs('bench/controller-scale-agents.ts', [
      JSON.stringify({ agents, peers: SCALE_PEERS }),
    ]);
    const ready = await sim.next<AgentsReady>('ready', 180_000);
    const list: StaticPeer[] = ready.ports.map((port, i) => {
      const a = simAgent(i);
      return {
        node: a.node,
        network: a.network,
        zone: a.zone,
        address: a.address,
        stampPort: 9862,
        tcpPort: 9863,
        httpPort: port,
      };
    });
    const specFile = join(dir, 'spec.json');
    writeFileSync(specFile, JSON.stringify({ agents: list }));
    log(
      `  ${agents} agents serving (rows ${Math.round(ready.rowBytes.mean)} B, built in ${((performance.now() - started) / 1000).toFixed(1)} s); starting the controller`,
    );
    ctl = spawnNode(
      [
        ...shippedControllerFlags(),
        // BENCH_SCALE_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof": where the time goes.
        ...(process.env['BENCH_SCALE_NODE_FLAGS']?.split(' ').filter((f) => f !== '') ?? []),
        '--import',
        'tsx',
        'bench/controller-scale-controller.ts',
        specFile,
      ],
      ROOT,
      'controller-scale-controller',
    );
    const { url } = await ctl.next<{ url: string }>('ready', 60_000);
    const seen: RoundMessage[] = [];
    const fetches: { bytes: number; ms: number }[] = [];
    const until = performance.now() + capMs;
    let stalled: string | undefined;
    while (seen.length < rounds) {
      const left = until - performance.now();
      if (left <= 0 && seen.length >= 2) break;
      let r: RoundMessage;
      try {
        // A round that has not ended a minute past the cap won't end in a bench's time: the
        // size is reported as such (with the memory it reached), not waited out.
        r = await ctl.next<RoundMessage>('round', Math.max(left, 0) + STALL_MS);
      } catch {
        stalled = `no round ended within ${((capMs + STALL_MS) / 1000).toFixed(0)} s of the controller's start`;
        log(`  ${stalled}`);
        break;
      }
      seen.push(r);
      log(
        `  round ${r.n}: ${r.wallMs.toFixed(0)} ms, CPU ${r.cpuMs.toFixed(0)} ms (triage ${r.triageCpuMs.toFixed(0)} ms), ${r.ok}/${r.agents} ok, ${r.cells} cells, RSS ${r.rssMB.toFixed(0)} MB, heap ${r.heapMB.toFixed(0)} MB`,
      );
      // An open web UI: the matrix once a round, while the controller goes on with the next.
      fetches.push(await fetchBytes(`${url}/api/v1/matrix`));
    }
    ctl.send('report');
    // A stalled controller is inside one long synchronous stretch (triage of a 10,000-agent
    // matrix) and may not read its stdin for minutes: its peak is then read from outside.
    const report = await ctl
      .next<ReportMessage>('report', 30_000)
      .catch((): Pick<ReportMessage, 'hwmMB'> => ({ hwmMB: hwmOfMB(ctl!.proc.pid) }));
    const later = seen.length > 1 ? seen.slice(1) : seen;
    const last = seen[seen.length - 1];
    return {
      agents,
      nodes: agents / 2,
      rounds: seen,
      roundMs: median(later.map((r) => r.wallMs)),
      cpuMs: median(later.map((r) => r.cpuMs)),
      triageCpuMs: median(later.map((r) => r.triageCpuMs)),
      okAgents: last?.ok ?? 0,
      cells: last?.cells ?? 0,
      hwmMB: report.hwmMB,
      matrixBytes: fetches.length > 0 ? Math.max(...fetches.map((f) => f.bytes)) : Number.NaN,
      matrixFetchMs: median(fetches.map((f) => f.ms)),
      ...(stalled !== undefined ? { stalled } : {}),
      rowBytes: ready.rowBytes,
      row: {
        peersPerRow: ready.peersPerRow,
        resultsPerRow: ready.resultsPerRow,
        dnsPerRow: ready.dnsPerRow,
        portsPerRow: ready.portsPerRow,
      },
    };
  } finally {
    await ctl?.stop(5000);
    await sim?.stop(5000);
    rmSync(dir, { recursive: true, force: true });
  }
}
