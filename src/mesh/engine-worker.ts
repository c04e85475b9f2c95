// Worker-thread entry point: hosts one ProbeEngine off the main thread and speaks a small
// message protocol with RemoteEngine (engine-client.ts). Results of every family go out in
// batches (every 200 ms at the default interval), so the main thread wakes for a batch, not for
// every answer; peer probe results travel packed in a transferred buffer (result-batch.ts), the
// other families' as plain data.

import { parentPort, workerData } from 'node:worker_threads';
import { SystemClock } from '../core/clock.ts';
import type { ProbeResult } from '../core/types.ts';
import { ProbeEngine, resultFlushFor } from './engine.ts';
import {
  PLAIN_FAMILIES,
  type EngineSpec,
  type FamilyName,
  type JobOf,
  type PlainFamily,
  type QueuedResults,
  type ResultOf,
  type ResultSinks,
} from './family.ts';
import { packResults, type PackedResults } from './result-batch.ts';

export type ToWorker =
  | {
      [F in FamilyName]: { type: 'reconcile'; family: F; jobs: JobOf<F>[]; departed: string[] };
    }[FamilyName]
  | { type: 'stop' };
export type FromWorker =
  | { type: 'ready'; status: ProbeEngine['status'] }
  | { type: 'failed'; message: string }
  | {
      type: 'results';
      /** Peer probe results, packed (result-batch.ts): the bulk of what crosses, 1,000 a second. */
      batch: PackedResults;
      /** Every other family's results, as they are. */
      queued: QueuedResults;
    }
  | { type: 'health'; health: ReturnType<ProbeEngine['health']> }
  | {
      type: 'log';
      level: 'info' | 'warn' | 'error';
      msg: string;
      fields?: Record<string, unknown> | undefined;
    }
  | { type: 'stopped' };

const HEALTH_EVERY_MS = 1000;

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('engine-worker.ts must run as a worker thread');
  const post = (m: FromWorker): void => port.postMessage(m);
  const spec = (workerData as { spec: EngineSpec }).spec;
  // Results reach the main thread at most this late. Every flush wakes the main thread, and on a
  // small VM a wake-up costs 100-200 µs of CPU; results carry their own times, so holding them
  // costs only freshness, kept within a fifth of a probe interval.
  const flushMs = resultFlushFor(spec.intervalMs);
  let batch: [ProbeResult, number][] = [];
  let queued: QueuedResults = {};
  let held = 0;
  const flush = (): void => {
    const out = batch;
    const rest = queued;
    batch = [];
    queued = {};
    held = 0;
    const packed = packResults(out);
    port.postMessage({ type: 'results', batch: packed, queued: rest } satisfies FromWorker, [
      packed.nums.buffer as ArrayBuffer,
    ]);
  };
  const exact = new SystemClock();
  let engine: ProbeEngine | undefined;
  // On the engine's slotted clock, so a flush rides on a wake-up the probes cause anyway.
  const scheduleFlush = (): void => void (engine?.timers ?? exact).setTimeout(flush, flushMs);
  // One message per flush instead of one per result: at the default interval the main thread
  // wakes 5 times a second, not a thousand. Timestamps are taken here, so the delay costs no
  // accuracy.
  const hold = (): void => {
    if (held++ === 0) scheduleFlush();
  };
  const queue = <F extends PlainFamily>(family: F) => {
    return (r: ResultOf<F>, late: number): void => {
      hold();
      const list = (queued[family] ??= []) as [ResultOf<F>, number][];
      list.push([r, late]);
    };
  };
  const sinks: ResultSinks = {
    peer: (r, late) => {
      hold();
      batch.push([r, late]);
    },
    ...Object.fromEntries(PLAIN_FAMILIES.map((f) => [f, queue(f)])),
  };
  try {
    engine = await ProbeEngine.start(spec, exact, sinks, (level, msg, fields) =>
      post({ type: 'log', level, msg, fields }),
    );
  } catch (e) {
    post({ type: 'failed', message: (e as Error).message });
    return;
  }
  const healthTimer = setInterval(
    () => post({ type: 'health', health: engine.health() }),
    HEALTH_EVERY_MS,
  );
  port.on('message', (m: ToWorker) => {
    if (m.type === 'reconcile') engine.reconcile(m.family, m.jobs, m.departed);
    else if (m.type === 'stop') {
      clearInterval(healthTimer);
      void engine.stop().then(() => {
        if (held > 0) flush();
        post({ type: 'health', health: engine.health() });
        post({ type: 'stopped' });
        port.close();
      });
    }
  });
  post({ type: 'ready', status: engine.status });
}

void main();
