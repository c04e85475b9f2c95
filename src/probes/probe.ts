// The one interface every peer probe kind (udp, icmp, tcp: src/probes/registry.ts) implements.
// A probe measures; it never discovers targets and never exports metrics. run() always resolves
// to a typed ProbeResult and never rejects. The other probe families (DNS lookups, port connects)
// don't implement it: what every family implements is the scheduler's Executor, declared in its
// family file (src/mesh/families/), and Probe is only the peer family's per-kind part.
// Also here, shared by the probes' sockets: the judge that calls a probe lost only once its
// socket has been read dry (TimeoutJudge), and the thread's tally of sockets that failed and
// were reopened (socketReopens), which the engine reports as a metric.

import type { SocketKindName } from '../core/engine-health.ts';
import type { ProbeKind, ProbeResult, ProbeTarget } from '../core/types.ts';
import type { TimestampInfo } from '../native/timestamping.ts';

/** Re-exported so layers above probes (metrics, store) need not reach into native for it. */
export type { TimestampInfo } from '../native/timestamping.ts';
export type { SocketKindName } from '../core/engine-health.ts';

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

/** Event-loop turns a timeout verdict may wait for its socket to go quiet (see TimeoutJudge). */
const MAX_JUDGE_TURNS = 32;

/**
 * Judges timeouts only after the socket's waiting answers have been read. When the event loop
 * was held past a probe's timeout (a long GC, a busy thread), libuv runs the expired timers
 * before it polls the sockets, so an answer that arrived in time (its kernel receive stamp says
 * so) would sit unread while its probe was called lost. A verdict deferred here runs after the
 * poll phase (setImmediate), and again after the next one for as long as the socket keeps
 * delivering (the addon reads at most 256 datagrams per wake-up, so a backlog takes several
 * turns), up to MAX_JUDGE_TURNS. Whether an answer was in time is then judged by its own
 * times, not by when JavaScript got to it.
 */
export class TimeoutJudge {
  private reads = 0;
  private mark = 0;
  private turns = 0;
  private queue: (() => void)[] = [];
  private scheduled = false;

  /** The socket delivered something (an answer, an error, anything). */
  noteRead(): void {
    this.reads++;
  }

  /** Runs `verdict` once the socket has had its chance to deliver what waits in it. */
  defer(verdict: () => void): void {
    this.queue.push(verdict);
    if (this.scheduled) return;
    this.scheduled = true;
    this.mark = this.reads;
    this.turns = 0;
    setImmediate(this.check);
  }

  private readonly check = (): void => {
    if (this.reads !== this.mark && this.turns < MAX_JUDGE_TURNS) {
      // The poll phase just read from the socket: there may be more behind it.
      this.mark = this.reads;
      this.turns++;
      setImmediate(this.check);
      return;
    }
    this.scheduled = false;
    const due = this.queue;
    this.queue = [];
    for (const verdict of due) verdict();
  };
}

/**
 * This thread's sockets that failed (libuv stopped polling them, or the socket reported an
 * error) and were reopened, by kind, with the last reason. Per thread because sockets poll on
 * their thread's loop and each engine thread reports its own (ProbeEngine.health()).
 */
class SocketReopens {
  private readonly counts: Record<SocketKindName, number> = {
    stamp_sender: 0,
    stamp_reflector: 0,
    icmp: 0,
  };
  private last: string | undefined;

  note(kind: SocketKindName, why: string): void {
    this.counts[kind]++;
    this.last = `${kind}: ${why}`;
  }

  totals(): Readonly<Record<SocketKindName, number>> {
    return { ...this.counts };
  }

  /** What the last failure was, for a log line. */
  lastFailure(): string | undefined {
    return this.last;
  }
}

export const socketReopens = new SocketReopens();
