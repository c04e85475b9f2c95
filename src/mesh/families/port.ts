// The port family: port targets (ports.targets), one TCP connect per target every
// ports.intervalMs, to learn whether a port that should accept does (a Service backend, the API
// server) and whether a port that must not, doesn't (a NetworkPolicy that has to hold). Jobs and
// the scheduler executor; the engine runs them on their own scheduler, apart from the peer
// probes, so a slow or dropped target never holds back the matrix. It opens nothing up front: a
// connect is a fresh socket.

import type { Clock } from '../../core/clock.ts';
import type { PortExpectation, PortJob, PortJobResult } from '../../probes/port-job.ts';
import { probeTcpPort } from '../../probes/tcp.ts';
import type { Family } from '../family.ts';
import type { Executor } from '../scheduler.ts';

/** One port target as configured (ports.targets[]). */
export interface PortTargetSpec {
  /** Label value (`target`); never an address. */
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly expect: PortExpectation;
}

export function planPortJobs(targets: readonly PortTargetSpec[]): PortJob[] {
  return targets.map((t) => ({
    key: t.name,
    address: t.address,
    port: t.port,
    expected: t.expect,
  }));
}

/** The scheduler executor for port jobs: a fresh connect, closed with a reset. */
export function portExecutor(clock: Clock, bindAddress?: string): Executor<PortJob, PortJobResult> {
  return {
    execute: async (job, timeoutMs) => {
      const sentAtMs = clock.nowMs();
      const r = await probeTcpPort(job.address, job.port, timeoutMs, clock, bindAddress);
      return {
        key: job.key,
        outcome: r.outcome,
        seconds: r.seconds,
        sentAtMs,
        ...(r.detail !== undefined ? { detail: r.detail } : {}),
      };
    },
    overran: (job, startMs, detail) => ({
      key: job.key,
      outcome: 'error',
      seconds: 0,
      sentAtMs: startMs,
      detail,
    }),
    changed: (a, b) => a.address !== b.address || a.port !== b.port || a.expected !== b.expected,
  };
}

export const portFamily: Family<'port'> = {
  name: 'port',
  open(ctx) {
    const { spec, timeouts } = ctx;
    if (spec.ports === undefined) return Promise.resolve(undefined);
    return Promise.resolve({
      executor: portExecutor(
        timeouts,
        spec.bindAddress !== '0.0.0.0' ? spec.bindAddress : undefined,
      ),
      intervalMs: spec.ports.intervalMs,
      timeoutMs: spec.ports.timeoutMs,
      close: () => Promise.resolve(),
    });
  },
};
