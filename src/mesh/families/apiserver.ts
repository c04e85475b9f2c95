// The apiserver family: one check (TCP connect, TLS handshake, optionally an anonymous GET
// /readyz: src/probes/apiserver.ts) of each way to the Kubernetes API server, the `kubernetes`
// Service VIP and each endpoint asked directly, every apiserver.intervalMs. On its own scheduler
// like the port family, so a slow API server never holds back the matrix; it opens nothing up
// front and keeps nothing open: each check is a fresh connection, reset when done.

import type { Clock } from '../../core/clock.ts';
import { checkApiServer } from '../../probes/apiserver.ts';
import {
  apiServerKey,
  type ApiServerJob,
  type ApiServerJobResult,
} from '../../probes/apiserver-job.ts';
import type { Family } from '../family.ts';
import type { Executor } from '../scheduler.ts';

/** An address and port of the API server. */
export interface ApiServerAddress {
  readonly address: string;
  readonly port: number;
}

/**
 * The jobs: the VIP (if known) and each endpoint, endpoints sorted and deduplicated, so the same
 * endpoints in another order plan the same jobs.
 */
export function planApiServerJobs(
  service: ApiServerAddress | undefined,
  endpoints: readonly ApiServerAddress[],
  readyz: boolean,
): ApiServerJob[] {
  const jobs: ApiServerJob[] = [];
  if (service !== undefined) jobs.push({ key: 'service', kind: 'service', ...service, readyz });
  const seen = new Set<string>();
  for (const e of [...endpoints].sort(
    (a, b) => a.address.localeCompare(b.address) || a.port - b.port,
  )) {
    const key = apiServerKey('endpoint', e.address, e.port);
    if (seen.has(key)) continue;
    seen.add(key);
    jobs.push({ key, kind: 'endpoint', address: e.address, port: e.port, readyz });
  }
  return jobs;
}

export function apiServerExecutor(
  clock: Clock,
  bindAddress?: string,
): Executor<ApiServerJob, ApiServerJobResult> {
  return {
    execute: async (job, timeoutMs) => {
      const sentAtMs = clock.nowMs();
      const r = await checkApiServer(
        { address: job.address, port: job.port, timeoutMs, readyz: job.readyz, bindAddress },
        clock,
      );
      return { key: job.key, sentAtMs, ...r };
    },
    overran: (job, startMs, detail) => ({
      key: job.key,
      outcome: 'error',
      connectSeconds: null,
      tlsSeconds: null,
      readyz: null,
      sentAtMs: startMs,
      detail,
    }),
    changed: (a, b) => a.address !== b.address || a.port !== b.port || a.readyz !== b.readyz,
  };
}

export const apiServerFamily: Family<'apiserver'> = {
  name: 'apiserver',
  open(ctx) {
    const { spec, timeouts } = ctx;
    if (spec.apiserver === undefined) return Promise.resolve(undefined);
    return Promise.resolve({
      executor: apiServerExecutor(
        timeouts,
        spec.bindAddress !== '0.0.0.0' ? spec.bindAddress : undefined,
      ),
      intervalMs: spec.apiserver.intervalMs,
      timeoutMs: spec.apiserver.timeoutMs,
      close: () => Promise.resolve(),
    });
  },
};
