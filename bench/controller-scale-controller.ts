// The controller scale section's controller (bench/controller-scale.ts): the real `podmesh
// controller` (src/controller/run.ts's runController with a static agent list, the shipped
// settings otherwise: pull interval, concurrency, timeouts, triage, latency history, the HTTP
// server with /api/v1/matrix), in a process of its own so its CPU and peak RSS are its own.
//
//   node --max-semi-space-size=1 --v8-pool-size=1 --import tsx \
//     bench/controller-scale-controller.ts <file of a json ControllerSpec>
//
// Times each round from the inside, by wrapping the Controller's round and its triage step
// (updateFindings: the latency history and triage) on the prototype before the controller
// starts: nothing else is changed. Prints {"type":"ready","url"} once serving, one
// {"type":"round",...} per round, answers a "report" line with {"type":"report",...} (VmHWM:
// the kernel's high-water mark of the whole process, so no peak between samples is missed) and
// exits when stdin closes.

import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import type { StaticPeer } from '../src/config/settings.ts';
import { loadConfig } from '../src/config/load.ts';
import { Controller } from '../src/controller/controller.ts';
import { runController } from '../src/controller/run.ts';
import { exitWhenParentGoes, send } from './lib.ts';

export interface ControllerSpec {
  readonly agents: readonly StaticPeer[];
}

export interface RoundMessage {
  readonly type: 'round';
  readonly n: number;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly triageWallMs: number;
  readonly triageCpuMs: number;
  readonly ok: number;
  readonly agents: number;
  readonly cells: number;
  readonly rssMB: number;
  readonly heapMB: number;
}

export interface ReportMessage {
  readonly type: 'report';
  readonly hwmMB: number;
  readonly cpuS: number;
  readonly wallS: number;
}

const cpuMs = (): number => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

/** The kernel's high-water mark of this process's RSS, MB. */
function vmHwmMB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? Number.NaN : Number(m[1]) / 1024;
}

async function main(): Promise<void> {
  // A file, not an argument: 10,000 agents' list is over the kernel's limit for one argument.
  const spec = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as ControllerSpec;
  let rounds = 0;
  let triageWall = 0;
  let triageCpu = 0;
  // Function-typed properties, not methods: they are taken off the prototype and applied.
  type Proto = {
    round: (this: unknown) => Promise<unknown>;
    updateFindings: (this: unknown, ...a: unknown[]) => void;
  };
  const proto = Controller.prototype as unknown as Proto;
  const round = proto.round;
  const updateFindings = proto.updateFindings;
  proto.updateFindings = function (this: unknown, ...a: unknown[]): void {
    const w = performance.now();
    const c = cpuMs();
    updateFindings.apply(this, a);
    triageWall += performance.now() - w;
    triageCpu += cpuMs() - c;
  };
  proto.round = async function (this: unknown) {
    const w = performance.now();
    const c = cpuMs();
    triageWall = 0;
    triageCpu = 0;
    const m = (await round.apply(this)) as import('../src/api/matrix.ts').Matrix;
    const mem = process.memoryUsage();
    const msg: RoundMessage = {
      type: 'round',
      n: ++rounds,
      wallMs: performance.now() - w,
      cpuMs: cpuMs() - c,
      triageWallMs: triageWall,
      triageCpuMs: triageCpu,
      ok: m.agents.filter((a) => a.state === 'ok').length,
      agents: m.agents.length,
      cells: m.cells.length,
      rssMB: mem.rss / 2 ** 20,
      heapMB: mem.heapUsed / 2 ** 20,
    };
    send({ ...msg });
    return m;
  };
  const config = loadConfig({
    overrides: {
      'discovery.mode': 'static',
      'peers.static': spec.agents,
      httpAddress: '127.0.0.1',
      httpPort: 0,
      logLevel: 'silent',
    },
  });
  const started = { wall: performance.now(), cpu: cpuMs() };
  const running = await runController({
    config,
    log: pino({ level: 'silent' }),
    version: 'bench',
  });
  send({ type: 'ready', url: running.url });
  exitWhenParentGoes(
    (line) => {
      if (line === 'report') {
        const r: ReportMessage = {
          type: 'report',
          hwmMB: vmHwmMB(),
          cpuS: (cpuMs() - started.cpu) / 1000,
          wallS: (performance.now() - started.wall) / 1000,
        };
        send({ ...r });
      }
    },
    () => running.stop(),
  );
}

void main().catch((e: unknown) => {
  process.stderr.write(
    `controller-scale-controller: ${e instanceof Error ? e.stack : String(e)}\n`,
  );
  process.exit(1);
});
