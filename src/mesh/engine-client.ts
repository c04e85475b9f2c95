// The main thread's handle on an engine: either a ProbeEngine on a worker thread (RemoteEngine)
// or one in this thread (LocalEngine), behind the same small interface so the agent doesn't
// care where probes run.

import { Worker } from 'node:worker_threads';
import type { Clock } from '../core/clock.ts';
import type { EngineHealth } from '../metrics/recorder.ts';
import {
  ProbeEngine,
  type EngineSpec,
  type EngineStatus,
  type LogSink,
  type ResultSink,
} from './engine.ts';
import type { FromWorker, ToWorker } from './engine-worker.ts';
import type { Job } from './scheduler.ts';

export interface EngineHandle {
  readonly status: EngineStatus;
  reconcile(jobs: readonly Job[]): void;
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
  ): Promise<LocalEngine> {
    return new LocalEngine(await ProbeEngine.start(spec, clock, onResult, log));
  }
  get status(): EngineStatus {
    return this.engine.status;
  }
  reconcile(jobs: readonly Job[]): void {
    this.engine.reconcile(jobs);
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

export class RemoteEngine implements EngineHandle {
  private lastHealth: EngineHealth | undefined;
  private stopped: Promise<void> | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly status: EngineStatus,
  ) {}

  static start(spec: EngineSpec, onResult: ResultSink, log: LogSink): Promise<RemoteEngine> {
    const worker = new Worker(WORKER_URL, { workerData: { spec }, name: 'podmesh-engine' });
    return new Promise((resolve, reject) => {
      let engine: RemoteEngine | undefined;
      worker.on('message', (m: FromWorker) => {
        switch (m.type) {
          case 'ready':
            engine = new RemoteEngine(worker, m.status);
            resolve(engine);
            break;
          case 'failed':
            void worker.terminate();
            reject(new Error(m.message));
            break;
          case 'results':
            for (const [r, late] of m.batch) onResult(r, late);
            break;
          case 'health':
            if (engine !== undefined) engine.lastHealth = m.health;
            break;
          case 'log':
            log(m.level, m.msg, m.fields);
            break;
          case 'stopped':
            break;
        }
      });
      worker.on('error', (e) => {
        log('error', `probe engine thread crashed: ${e.message}`);
        if (engine === undefined) reject(e);
      });
      worker.on('exit', (code) => {
        if (engine === undefined)
          reject(new Error(`probe engine thread exited with code ${code} before it was ready`));
      });
    });
  }

  reconcile(jobs: readonly Job[]): void {
    this.worker.postMessage({ type: 'reconcile', jobs: [...jobs] } satisfies ToWorker);
  }

  health(): EngineHealth | undefined {
    return this.lastHealth;
  }

  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      const done = (): void => resolve();
      this.worker.once('exit', done);
      this.worker.on('message', (m: FromWorker) => {
        if (m.type === 'stopped') void this.worker.terminate();
      });
      this.worker.postMessage({ type: 'stop' } satisfies ToWorker);
    });
    return this.stopped;
  }
}
