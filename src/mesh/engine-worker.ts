// Worker-thread entry point: hosts one ProbeEngine off the main thread and speaks a small
// message protocol with RemoteEngine (engine-client.ts). Results (probe results and DNS lookups
// alike) go out in batches (every 200 ms at the default interval), so the main thread wakes for a batch, not for every
// answer; probe results travel packed in a transferred buffer (result-batch.ts).

import { parentPort, workerData } from 'node:worker_threads';
import { SystemClock } from '../core/clock.ts';
import type { ProbeResult } from '../core/types.ts';
import { ProbeEngine, resultFlushFor, type EngineSpec } from './engine.ts';
import type { DnsJob, DnsJobResult } from '../probes/dns-job.ts';
import type { PortJob, PortJobResult } from '../probes/port-job.ts';
import { packResults, type PackedResults } from './result-batch.ts';
import type { Job } from './scheduler.ts';

export type ToWorker =
  | { type: 'reconcile'; jobs: Job[]; departed: string[] }
  | { type: 'reconcileDns'; jobs: DnsJob[] }
  | { type: 'reconcilePorts'; jobs: PortJob[] }
  | { type: 'stop' };
export type FromWorker =
  | { type: 'ready'; status: ProbeEngine['status'] }
  | { type: 'failed'; message: string }
  | {
      type: 'results';
      /** Probe results, packed (result-batch.ts): the bulk of what crosses, 1,000 a second. */
      batch: PackedResults;
      dns: [DnsJobResult, number][];
      ports: [PortJobResult, number][];
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
  let dnsBatch: [DnsJobResult, number][] = [];
  let portBatch: [PortJobResult, number][] = [];
  const flush = (): void => {
    const out = batch;
    const dns = dnsBatch;
    const ports = portBatch;
    batch = [];
    dnsBatch = [];
    portBatch = [];
    const packed = packResults(out);
    port.postMessage({ type: 'results', batch: packed, dns, ports } satisfies FromWorker, [
      packed.nums.buffer as ArrayBuffer,
    ]);
  };
  const pending = (): boolean => batch.length > 0 || dnsBatch.length > 0 || portBatch.length > 0;
  const exact = new SystemClock();
  let engine: ProbeEngine | undefined;
  // On the engine's slotted clock, so a flush rides on a wake-up the probes cause anyway.
  const scheduleFlush = (): void => void (engine?.timers ?? exact).setTimeout(flush, flushMs);
  try {
    engine = await ProbeEngine.start(
      spec,
      exact,
      (r, late) => {
        // One message per flush instead of one per result: at the default interval the main
        // thread wakes 5 times a second, not a thousand. Timestamps are taken here, so the delay costs no accuracy.
        if (!pending()) scheduleFlush();
        batch.push([r, late]);
      },
      (level, msg, fields) => post({ type: 'log', level, msg, fields }),
      (r, late) => {
        if (!pending()) scheduleFlush();
        dnsBatch.push([r, late]);
      },
      (r, late) => {
        if (!pending()) scheduleFlush();
        portBatch.push([r, late]);
      },
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
    if (m.type === 'reconcile') engine.reconcile(m.jobs, m.departed);
    else if (m.type === 'reconcileDns') engine.reconcileDns(m.jobs);
    else if (m.type === 'reconcilePorts') engine.reconcilePorts(m.jobs);
    else if (m.type === 'stop') {
      clearInterval(healthTimer);
      void engine.stop().then(() => {
        if (pending()) flush();
        post({ type: 'health', health: engine.health() });
        post({ type: 'stopped' });
        port.close();
      });
    }
  });
  post({ type: 'ready', status: engine.status });
}

void main();
