// Test helper: runs a snippet of module code on a worker thread that can import the project's
// TypeScript, and resolves with the first message it posts (rejects if the worker errors).

import { Worker } from 'node:worker_threads';

/**
 * `body` runs after `parentPort` and `workerData` are imported; it imports what it needs with
 * `await import(workerData.<url>)` and must `parentPort.postMessage(...)` once.
 */
export async function inTsWorker(
  body: string,
  workerData: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  // Node 20 doesn't carry tsx's loader into workers: register it there first (by absolute URL,
  // as a data: module has no base to resolve a package name from).
  const code = `
    import { parentPort, workerData } from 'node:worker_threads';
    import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))};
    register();
    ${body}`;
  const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), {
    workerData,
  });
  try {
    return await new Promise<Record<string, unknown>>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
  } finally {
    await w.terminate();
  }
}
