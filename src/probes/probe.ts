// The one interface every peer probe kind (udp, icmp, tcp: src/probes/registry.ts) implements.
// A probe measures; it never discovers targets and never exports metrics. run() always resolves
// to a typed ProbeResult and never rejects. The other probe families (DNS lookups, port connects)
// don't implement it: what every family implements is the scheduler's Executor, declared in its
// family file (src/mesh/families/), and Probe is only the peer family's per-kind part.

import type { ProbeKind, ProbeResult, ProbeTarget } from '../core/types.ts';
import type { TimestampInfo } from '../native/timestamping.ts';

/** Re-exported so layers above probes (metrics, store) need not reach into native for it. */
export type { TimestampInfo } from '../native/timestamping.ts';

export interface Probe {
  readonly kind: ProbeKind;
  /** Where this probe's RTT timestamps come from (exported as podmesh_timestamp_source). */
  readonly timestamps: TimestampInfo;
  /** Sends one probe to the target and resolves once answered or after timeoutMs. */
  run(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult>;
  /** Drops any per-peer state (sequence numbers, sessions) for a peer that left. */
  forget(peerId: string): void;
  close(): Promise<void>;
}

/** Maps a Node system error code onto the closed failure-reason set. */
export function reasonFromErrno(
  code: string | undefined,
): 'refused' | 'unreachable' | 'permission' | 'timeout' | 'error' {
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
    case 'EADDRNOTAVAIL':
      return 'unreachable';
    case 'EACCES':
    case 'EPERM':
      return 'permission';
    case 'ETIMEDOUT':
      return 'timeout';
    default:
      return 'error';
  }
}

export function errnoOf(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = err.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
