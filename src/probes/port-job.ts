// The port family's job and result: one configured target (ports.targets[]) and what one connect
// to it saw. Plain data declared here, below both the engine that runs them (src/mesh) and the
// window store and metrics that keep them (src/store, src/metrics).

import type { TcpOutcome } from '../core/outcomes.ts';

export type PortExpectation = 'open' | 'closed';

export interface PortJob {
  /** The target's name: unique within ports.targets. */
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly expected: PortExpectation;
}

export interface PortJobResult {
  readonly key: string;
  readonly outcome: TcpOutcome;
  /** Connect time when open; time until the failure was known otherwise. */
  readonly seconds: number;
  readonly sentAtMs: number;
  readonly detail?: string;
}

/** The outcome that matches what is expected of the target. */
export function asExpected(expected: PortExpectation, outcome: TcpOutcome): boolean {
  return expected === 'open' ? outcome === 'open' : outcome !== 'open';
}
