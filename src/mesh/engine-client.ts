// The main thread's handle on an engine: either a ProbeEngine on a worker thread (RemoteEngine)
// or one in this thread (LocalEngine), behind the same small interface so the agent doesn't
// care where probes run.

import { Worker } from 'node:worker_threads';
import type { Clock } from '../core/clock.ts';
import type { EngineHealth } from '../core/engine-health.ts';
import {
  FAMILY_NAMES,
  deliverQueued,
  type EngineSpec,
  type EngineStatus,
  type FamilyName,
  type JobOf,
  type LogSink,
  type ResultSinks,
} from './family.ts';
import { ProbeEngine } from './engine.ts';
import type { FromWorker, ToWorker } from './engine-worker.ts';
import { unpackResults } from './result-batch.ts';

export interface EngineHandle {
  readonly status: EngineStatus;
  /**
   * The jobs of one family to run (an engine that doesn't run the family ignores them);
   * `departed` peers' state is dropped (see ProbeEngine.reconcile).
   */
  reconcile<F extends FamilyName>(
    family: F,
    jobs: readonly JobOf<F>[],
    departed?: readonly string[],
  ): void;
  /** Latest health: pushed every second by a worker, read on demand from a local engine. */
  health(): EngineHealth | undefined;
  stop(): Promise<void>;
}

export class LocalEngine implements EngineHandle {
  private constructor(private readonly engine: ProbeEngine) {}
  static async start(
    spec: EngineSpec,
    clock: Clock,
    sinks: ResultSinks,
    log: LogSink,
  ): Promise<LocalEngine> {
    return new LocalEngine(await ProbeEngine.start(spec, clock, sinks, log));
  }
  get status(): EngineStatus {
    return this.engine.status;
  }
  reconcile<F extends FamilyName>(
    family: F,
    jobs: readonly JobOf<F>[],
    departed?: readonly string[],
  ): void {
    this.engine.reconcile(family, jobs, departed);
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
 * again with capped backoff and given the last job lists, so one fault doesn't end monitoring.
 */
export class RemoteEngine implements EngineHandle {
  private worker: Worker | undefined;
  private lastHealth: EngineHealth | undefined;
  private readonly lastJobs: { [F in FamilyName]?: readonly JobOf<F>[] } = {};
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private backoffMs = RESTART_MIN_MS;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Times the engine thread died and was started again. */
  restarts = 0;
  /** Probe results dropped because their batch could not be read (a bug if ever non-zero). */
  unreadResults = 0;
  status: EngineStatus = { kinds: [], timestamps: {}, families: [] };

  private constructor(
    private spec: EngineSpec,
    private readonly sinks: ResultSinks,
    private readonly log: LogSink,
  ) {}

  static async start(spec: EngineSpec, sinks: ResultSinks, log: LogSink): Promise<RemoteEngine> {
    const engine = new RemoteEngine(spec, sinks, log);
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
            const peer = this.sinks.peer;
            if (peer !== undefined) {
              const unread = unpackResults(m.batch, peer);
              if (unread > 0) {
                this.unreadResults += unread;
                this.log('error', `dropped ${unread} probe results the engine thread sent garbled`);
              }
            }
            deliverQueued(m.queued, this.sinks);
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
          // A new thread has no per-peer state to drop: the job lists are all it needs.
          for (const family of FAMILY_NAMES) this.resend(family);
        },
        (e: unknown) => {
          this.log('error', `probe engine thread failed to restart: ${String(e)}`);
          this.scheduleRestart(-1);
        },
      );
    }, delay);
  }

  reconcile<F extends FamilyName>(
    family: F,
    jobs: readonly JobOf<F>[],
    departed: readonly string[] = [],
  ): void {
    (this.lastJobs as Record<F, readonly JobOf<F>[]>)[family] = [...jobs];
    this.resend(family, departed);
  }

  /** Posts the family's last job list (a ToWorker 'reconcile': family and jobs agree). */
  private resend(family: FamilyName, departed: readonly string[] = []): void {
    this.worker?.postMessage({
      type: 'reconcile',
      family,
      jobs: this.lastJobs[family] ?? [],
      departed,
    });
  }

  health(): EngineHealth | undefined {
    // Restarts are this thread's own count: reported even before any thread's first health push
    // (a thread that crashed within its first second never sent one).
    if (this.lastHealth === undefined)
      return this.restarts > 0 ? { restarts: this.restarts } : undefined;
    return { ...this.lastHealth, restarts: this.restarts };
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
