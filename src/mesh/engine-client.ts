// The main thread's handle on an engine: either a ProbeEngine on a worker thread (RemoteEngine)
// or one in this thread (LocalEngine), behind the same small interface so the agent doesn't
// care where probes run.

import { Worker } from 'node:worker_threads';
import type { Clock } from '../core/clock.ts';
import type { EngineHealth } from '../core/engine-health.ts';
import type { DnsJob } from '../probes/dns-job.ts';
import type { PortJob } from '../probes/port-job.ts';
import {
  ProbeEngine,
  type DnsResultSink,
  type PortResultSink,
  type EngineSpec,
  type EngineStatus,
  type LogSink,
  type ResultSink,
} from './engine.ts';
import type { FromWorker, ToWorker } from './engine-worker.ts';
import { unpackResults } from './result-batch.ts';
import type { Job } from './scheduler.ts';

export interface EngineHandle {
  readonly status: EngineStatus;
  /** Peer probes to run; `departed` peers' probe state is dropped (see ProbeEngine.reconcile). */
  reconcile(jobs: readonly Job[], departed?: readonly string[]): void;
  /** DNS lookups to run; only an engine started with `spec.dns` runs them. */
  reconcileDns(jobs: readonly DnsJob[]): void;
  /** Port targets to connect to; only an engine started with `spec.ports` runs them. */
  reconcilePorts(jobs: readonly PortJob[]): void;
  /** Latest health: pushed every second by a worker, read on demand from a local engine. */
  health(): EngineHealth | undefined;
  stop(): Promise<void>;
}

export class LocalEngine implements EngineHandle {
  private constructor(private readonly engine: ProbeEngine) {}
  static async start(
    spec: EngineSpec,
    clock: Clock,
    onResult: ResultSink,
    log: LogSink,
    onDnsResult?: DnsResultSink,
    onPortResult?: PortResultSink,
  ): Promise<LocalEngine> {
    return new LocalEngine(
      await ProbeEngine.start(spec, clock, onResult, log, onDnsResult, onPortResult),
    );
  }
  get status(): EngineStatus {
    return this.engine.status;
  }
  reconcile(jobs: readonly Job[], departed?: readonly string[]): void {
    this.engine.reconcile(jobs, departed);
  }
  reconcileDns(jobs: readonly DnsJob[]): void {
    this.engine.reconcileDns(jobs);
  }
  reconcilePorts(jobs: readonly PortJob[]): void {
    this.engine.reconcilePorts(jobs);
  }
  health(): EngineHealth {
    return this.engine.health();
  }
  stop(): Promise<void> {
    return this.engine.stop();
  }
}

/**
 * Source and compiled builds both work: from source the worker starts through a bootstrap that
 * registers tsx's loader, which Node 20 doesn't carry into new threads.
 */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(
  FROM_SOURCE ? './engine-worker-tsx.mjs' : './engine-worker.js',
  import.meta.url,
);

const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;

/**
 * A ProbeEngine on a worker thread. If the thread dies (a bug, an addon crash), it is started
 * again with capped backoff and given the last job list, so one fault doesn't end monitoring.
 */
export class RemoteEngine implements EngineHandle {
  private worker: Worker | undefined;
  private lastHealth: EngineHealth | undefined;
  private lastJobs: Job[] = [];
  private lastDnsJobs: DnsJob[] = [];
  private lastPortJobs: PortJob[] = [];
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private backoffMs = RESTART_MIN_MS;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Times the engine thread died and was started again. */
  restarts = 0;
  /** Probe results dropped because their batch could not be read (a bug if ever non-zero). */
  unreadResults = 0;
  status: EngineStatus = { kinds: [], timestamps: {} };

  private constructor(
    private spec: EngineSpec,
    private readonly onResult: ResultSink,
    private readonly log: LogSink,
    private readonly onDnsResult: DnsResultSink | undefined,
    private readonly onPortResult: PortResultSink | undefined,
  ) {}

  static async start(
    spec: EngineSpec,
    onResult: ResultSink,
    log: LogSink,
    onDnsResult?: DnsResultSink,
    onPortResult?: PortResultSink,
  ): Promise<RemoteEngine> {
    const engine = new RemoteEngine(spec, onResult, log, onDnsResult, onPortResult);
    await engine.spawn();
    return engine;
  }

  private spawn(): Promise<void> {
    const worker = new Worker(WORKER_URL, {
      // A small young generation: the engine's garbage is short-lived and tiny, and V8's
      // default lets it grow to tens of MB of RSS for nothing.
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
      workerData: { spec: this.spec },
      name: 'podmesh-engine',
    });
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (m: FromWorker) => {
        switch (m.type) {
          case 'ready':
            ready = true;
            this.worker = worker;
            this.status = m.status;
            // A restarted thread must come back on the ports peers already know, even when
            // the first start asked for any free port (0).
            if (this.spec.responders !== undefined) {
              this.spec = {
                ...this.spec,
                responders: {
                  ...this.spec.responders,
                  stampPort: m.status.stampPort ?? this.spec.responders.stampPort,
                  tcpPort: m.status.tcpPort ?? this.spec.responders.tcpPort,
                },
              };
            }
            resolve();
            break;
          case 'failed':
            void worker.terminate();
            reject(new Error(m.message));
            break;
          case 'results': {
            const unread = unpackResults(m.batch, this.onResult);
            if (unread > 0) {
              this.unreadResults += unread;
              this.log('error', `dropped ${unread} probe results the engine thread sent garbled`);
            }
            if (this.onDnsResult !== undefined)
              for (const [r, late] of m.dns) this.onDnsResult(r, late);
            if (this.onPortResult !== undefined)
              for (const [r, late] of m.ports) this.onPortResult(r, late);
            break;
          }
          case 'health':
            this.lastHealth = m.health;
            break;
          case 'log':
            this.log(m.level, m.msg, m.fields);
            break;
          case 'stopped':
            void worker.terminate();
            break;
        }
      });
      worker.on('error', (e) => {
        this.log('error', `probe engine thread crashed: ${e.message}`);
        if (!ready) reject(e);
      });
      worker.on('exit', (code) => {
        if (!ready) {
          reject(new Error(`probe engine thread exited with code ${code} before it was ready`));
          return;
        }
        if (this.worker === worker) this.worker = undefined;
        if (!this.stopping) this.scheduleRestart(code);
      });
    });
  }

  private scheduleRestart(code: number): void {
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, RESTART_MAX_MS);
    this.log('error', `probe engine thread exited (code ${code}); restarting in ${delay} ms`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.spawn().then(
        () => {
          this.restarts++;
          this.backoffMs = RESTART_MIN_MS;
          this.log('warn', 'probe engine thread restarted', { restarts: this.restarts });
          this.reconcile(this.lastJobs);
          this.reconcileDns(this.lastDnsJobs);
          this.reconcilePorts(this.lastPortJobs);
        },
        (e: unknown) => {
          this.log('error', `probe engine thread failed to restart: ${String(e)}`);
          this.scheduleRestart(-1);
        },
      );
    }, delay);
  }

  reconcile(jobs: readonly Job[], departed: readonly string[] = []): void {
    this.lastJobs = [...jobs];
    this.worker?.postMessage({
      type: 'reconcile',
      jobs: this.lastJobs,
      departed: [...departed],
    } satisfies ToWorker);
  }

  reconcileDns(jobs: readonly DnsJob[]): void {
    this.lastDnsJobs = [...jobs];
    this.worker?.postMessage({ type: 'reconcileDns', jobs: this.lastDnsJobs } satisfies ToWorker);
  }

  reconcilePorts(jobs: readonly PortJob[]): void {
    this.lastPortJobs = [...jobs];
    this.worker?.postMessage({
      type: 'reconcilePorts',
      jobs: this.lastPortJobs,
    } satisfies ToWorker);
  }

  health(): EngineHealth | undefined {
    return this.lastHealth === undefined
      ? undefined
      : { ...this.lastHealth, restarts: this.restarts };
  }

  /** For tests: kill the thread the way a crash would. */
  crashForTest(): Promise<number> {
    return this.worker?.terminate() ?? Promise.resolve(0);
  }

  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      this.stopping = true;
      if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
      const worker = this.worker;
      if (worker === undefined) {
        resolve();
        return;
      }
      worker.once('exit', () => resolve());
      worker.postMessage({ type: 'stop' } satisfies ToWorker);
    });
    return this.stopped;
  }
}
