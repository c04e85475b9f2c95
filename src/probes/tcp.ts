// TCP connect probe: a fresh connection per probe, timed from connect() to the handshake.
//
// An open connection is always closed with a reset (resetAndDestroy), never a FIN: measured
// on the dev machine, closing with destroy() left ~10,000 sockets in TIME_WAIT after 35 s at
// 1,000 probes/s; resetting left none. The peer's listener expects the reset.

import { setMaxListeners } from 'node:events';
import net from 'node:net';
import type { Clock } from '../core/clock.ts';
import type { ProbeResult, ProbeTarget } from '../core/types.ts';
import type { TimestampInfo } from '../native/timestamping.ts';
import { errnoOf, reasonFromErrno } from './probe.ts';
import type { Probe } from './probe.ts';

export type TcpOutcome = 'open' | 'refused' | 'timeout' | 'unreachable' | 'error';

export interface TcpPortResult {
  readonly outcome: TcpOutcome;
  /** Connect time for 'open'; time until the failure was known otherwise. */
  readonly seconds: number;
  readonly detail?: string;
}

function outcomeFromErrno(code: string | undefined): TcpOutcome {
  const reason = reasonFromErrno(code);
  // A kernel-level connect timeout (ETIMEDOUT) is still "no answer".
  if (reason === 'refused' || reason === 'unreachable' || reason === 'timeout') return reason;
  return 'error';
}

/**
 * Opens one TCP connection to address:port and reports how it went. Never rejects. Pass an IP
 * address: a host name would be resolved first and its lookup time counted as connect time.
 */
export function probeTcpPort(
  address: string,
  port: number,
  timeoutMs: number,
  clock: Clock,
  bindAddress?: string,
  signal?: AbortSignal,
): Promise<TcpPortResult> {
  return new Promise<TcpPortResult>((resolve) => {
    const startNs = clock.monoNs();
    let done = false;
    let socket: net.Socket | undefined;
    const elapsed = (endNs: bigint): number => Number(endNs - startNs) / 1e9;
    const onAbort = (): void => finish('error', clock.monoNs(), 'aborted');
    const timer = clock.setTimeout(
      () => finish('timeout', clock.monoNs(), `no answer within ${timeoutMs} ms`),
      timeoutMs,
    );

    function finish(outcome: TcpOutcome, endNs: bigint, detail?: string): void {
      if (done) return;
      done = true;
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (socket !== undefined) {
        try {
          // resetAndDestroy() on a socket still connecting waits for the handshake, which may
          // never come; only an established connection is reset.
          if (outcome === 'open') socket.resetAndDestroy();
          else socket.destroy();
        } catch {
          socket.destroy();
        }
      }
      resolve(
        detail === undefined
          ? { outcome, seconds: elapsed(endNs) }
          : { outcome, seconds: elapsed(endNs), detail },
      );
    }

    if (signal?.aborted === true) {
      finish('error', clock.monoNs(), 'aborted');
      return;
    }
    signal?.addEventListener('abort', onAbort);
    try {
      const options: net.TcpNetConnectOpts = { host: address, port };
      if (bindAddress !== undefined) options.localAddress = bindAddress;
      socket = net.connect(options);
    } catch (err) {
      finish(
        'error',
        clock.monoNs(),
        `cannot connect: ${err instanceof Error ? err.message : String(err)}`,
      );
      return;
    }
    socket.on('connect', () => finish('open', clock.monoNs()));
    // Stays attached after finish: a reset or late error must never become an uncaught one.
    socket.on('error', (err) => {
      const now = clock.monoNs();
      const code = errnoOf(err);
      finish(outcomeFromErrno(code), now, code ?? err.message);
    });
    // We never read; discard anything the far side sends so buffers cannot fill.
    socket.resume();
  });
}

export interface TcpProbeOptions {
  readonly clock: Clock;
  readonly bindAddress?: string;
}

/** The peer-to-peer TCP probe: connects to the peer agent's TcpListener. */
export class TcpProbe implements Probe {
  readonly kind = 'tcp' as const;
  // The kernel has no timestamp for "connect completed"; the connect time is read on this
  // thread around connect(), which is why tcp is never the latency reference.
  readonly timestamps: TimestampInfo = {
    source: 'userspace',
    detail: 'connect time read around connect() on the engine thread (no kernel stamp exists)',
  };
  private readonly clock: Clock;
  private readonly bindAddress: string | undefined;
  private readonly abort = new AbortController();

  constructor(options: TcpProbeOptions) {
    this.clock = options.clock;
    this.bindAddress = options.bindAddress;
    // One abort listener per in-flight probe; hundreds in flight is normal, not a leak.
    setMaxListeners(0, this.abort.signal);
  }

  async run(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    const base = {
      peerId: target.peer.id,
      kind: this.kind,
      size: target.size,
      sentAtMs: this.clock.nowMs(),
    };
    if (this.abort.signal.aborted)
      return { ...base, ok: false, reason: 'error', detail: 'probe closed' };
    try {
      const r = await probeTcpPort(
        target.peer.address,
        target.peer.tcpPort,
        timeoutMs,
        this.clock,
        this.bindAddress,
        this.abort.signal,
      );
      if (r.outcome === 'open') return { ...base, ok: true, rttSeconds: r.seconds };
      return r.detail === undefined
        ? { ...base, ok: false, reason: r.outcome }
        : { ...base, ok: false, reason: r.outcome, detail: r.detail };
    } catch (err) {
      return {
        ...base,
        ok: false,
        reason: 'error',
        detail: `unexpected: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
  }

  /** TCP probes keep no per-peer state. */
  forget(_peerId: string): void {}

  /** Ends in-flight probes at once (they resolve as 'error', detail 'aborted'). */
  close(): Promise<void> {
    this.abort.abort();
    return Promise.resolve();
  }
}
