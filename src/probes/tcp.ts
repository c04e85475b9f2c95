// TCP connect probe: a fresh connection per probe, timed from connect() to the handshake.
//
// Two ways to connect, one result. With the timestamping addon (docs/timestamps.md, "TCP") the
// connect is the addon's TcpConnect: a few syscalls and one callback instead of Node's
// net.Socket machinery (~400 µs of CPU per probe at the bench's rate, most of the tcp kind's
// cost), and the kernel's own handshake RTT (TCP_INFO tcpi_rtt) for the peer probe. Without the
// addon, or with PODMESH_TIMESTAMPS=userspace, or for an address that isn't IPv4, net.Socket.
//
// An open connection is always closed with a reset (SO_LINGER 0 natively, resetAndDestroy on
// net.Socket), never a FIN: measured on the dev machine, closing with destroy() left ~10,000
// sockets in TIME_WAIT after 35 s at 1,000 probes/s; resetting left none. The peer's listener
// expects the reset.

import { setMaxListeners } from 'node:events';
import net from 'node:net';
import type { Clock } from '../core/clock.ts';
import type { ProbeResult, ProbeTarget } from '../core/types.ts';
import {
  loadTimestamping,
  type NativeTcpConnect,
  type TimestampInfo,
  type TimestampingAddon,
} from '../native/timestamping.ts';
import { errnoOf, reasonFromErrno } from './probe.ts';
import type { Probe } from './probe.ts';
import type { TimestampMode } from './timestamped-udp.ts';

export type { TcpOutcome } from '../core/outcomes.ts';
import type { TcpOutcome } from '../core/outcomes.ts';

export interface TcpPortResult {
  readonly outcome: TcpOutcome;
  /** Connect time for 'open'; time until the failure was known otherwise. */
  readonly seconds: number;
  /**
   * 'open' on the native path only: the kernel's RTT sample of the handshake (SYN sent to
   * SYN-ACK processed, TCP_INFO tcpi_rtt), which leaves out this process's wake-up.
   */
  readonly handshakeRttSeconds?: number;
  /**
   * 'open' on the native path only: SYNs the kernel sent again (TCP_INFO tcpi_total_retrans)
   * because the first SYN or its SYN-ACK was lost. The port was reached, but the probe's
   * packets weren't all answered: the peer probe counts it as lost (TcpProbe).
   */
  readonly synRetransmits?: number;
  readonly detail?: string;
}

type TcpConnectClass = NonNullable<TimestampingAddon['TcpConnect']>;

export type NativeTcpLoad =
  | { readonly ok: true; readonly TcpConnect: TcpConnectClass }
  | { readonly ok: false; readonly reason: string };

/** The addon's TcpConnect, or why the net.Socket path is used. Never throws. */
export function nativeTcp(timestamps: TimestampMode = 'auto'): NativeTcpLoad {
  if (timestamps === 'userspace') return { ok: false, reason: 'user-space timestamps requested' };
  const load = loadTimestamping();
  if (!load.ok) return load;
  const TcpConnect = load.addon.TcpConnect;
  if (typeof TcpConnect !== 'function')
    return {
      ok: false,
      reason: `${load.path} predates TcpConnect; run \`npm run build:native\``,
    };
  return { ok: true, TcpConnect };
}

/**
 * A connect that completed, judged by its own times: late when the kernel's handshake RTT (or,
 * without one, the time until it was seen) is past the timeout. Seen late only because the event
 * loop was held is not late; answered late is, however soon it was seen.
 */
function opened(
  seconds: number,
  handshakeRttSeconds: number | undefined,
  timeoutMs: number,
  synRetransmits?: number,
): TcpPortResult {
  const took = handshakeRttSeconds ?? seconds;
  if (took * 1000 > timeoutMs)
    return {
      outcome: 'timeout',
      seconds,
      detail: `answered after ${(took * 1000).toFixed(1)} ms, past the ${timeoutMs} ms timeout`,
    };
  return {
    outcome: 'open',
    seconds,
    ...(handshakeRttSeconds === undefined ? {} : { handshakeRttSeconds }),
    ...(synRetransmits === undefined ? {} : { synRetransmits }),
  };
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
  timestamps: TimestampMode = 'auto',
): Promise<TcpPortResult> {
  const native = nativeTcp(timestamps);
  if (native.ok && net.isIPv4(address) && (bindAddress === undefined || net.isIPv4(bindAddress)))
    return probeNative(native.TcpConnect, address, port, timeoutMs, clock, bindAddress, signal);
  return probeSocket(address, port, timeoutMs, clock, bindAddress, signal);
}

function probeNative(
  TcpConnect: TcpConnectClass,
  address: string,
  port: number,
  timeoutMs: number,
  clock: Clock,
  bindAddress: string | undefined,
  signal: AbortSignal | undefined,
): Promise<TcpPortResult> {
  return new Promise<TcpPortResult>((resolve) => {
    if (signal?.aborted === true) {
      resolve({ outcome: 'error', seconds: 0, detail: 'aborted' });
      return;
    }
    const startNs = clock.monoNs();
    const sinceStart = (): number => Number(clock.monoNs() - startNs) / 1e9;
    // The addon answers inside `new` when the kernel already knows (loopback, pods of one node,
    // a bind or route failure): then no timer and no abort listener are needed at all.
    let answer: TcpPortResult | undefined;
    let settle = (r: TcpPortResult): void => {
      answer = r;
    };
    let conn: NativeTcpConnect;
    try {
      conn = new TcpConnect(
        address,
        port,
        bindAddress ?? '',
        (error, elapsedNs, rttUs, synRetransmits) => {
          const seconds = elapsedNs / 1e9;
          if (error !== null) settle({ outcome: outcomeFromErrno(error), seconds, detail: error });
          else
            settle(
              opened(
                seconds,
                rttUs === undefined ? undefined : rttUs / 1e6,
                timeoutMs,
                synRetransmits,
              ),
            );
        },
      );
    } catch (err) {
      // Bad arguments (a port out of range) or no poll handle: the addon throws.
      const detail = `cannot connect: ${err instanceof Error ? err.message : String(err)}`;
      resolve({ outcome: 'error', seconds: sinceStart(), detail });
      return;
    }
    if (answer !== undefined) {
      resolve(answer);
      return;
    }

    // Still connecting: the addon, the timeout or the abort, whichever comes first.
    let done = false;
    const finish = (r: TcpPortResult): void => {
      if (done) return;
      done = true;
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      // A no-op once the addon has answered; otherwise stops the handshake and frees the fd.
      conn.cancel();
      resolve(r);
    };
    const onAbort = (): void =>
      finish({ outcome: 'error', seconds: sinceStart(), detail: 'aborted' });
    const timer = clock.setTimeout(
      // After a held event loop the timer runs before the socket is polled: look once the poll
      // phase has run, so a handshake done in time is not called lost.
      () =>
        setImmediate(() =>
          finish({
            outcome: 'timeout',
            seconds: sinceStart(),
            detail: `no answer within ${timeoutMs} ms`,
          }),
        ),
      timeoutMs,
    );
    signal?.addEventListener('abort', onAbort);
    settle = finish;
  });
}

function probeSocket(
  address: string,
  port: number,
  timeoutMs: number,
  clock: Clock,
  bindAddress: string | undefined,
  signal: AbortSignal | undefined,
): Promise<TcpPortResult> {
  return new Promise<TcpPortResult>((resolve) => {
    const startNs = clock.monoNs();
    let done = false;
    let socket: net.Socket | undefined;
    const elapsed = (endNs: bigint): number => Number(endNs - startNs) / 1e9;
    const onAbort = (): void => finish('error', clock.monoNs(), 'aborted');
    const timer = clock.setTimeout(
      // After the poll phase, as in probeNative: a connect seen late is judged by its time.
      () =>
        setImmediate(() => finish('timeout', clock.monoNs(), `no answer within ${timeoutMs} ms`)),
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
      if (outcome === 'open') resolve(opened(elapsed(endNs), undefined, timeoutMs));
      else
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
  /** 'userspace': connect through net.Socket and time it in JavaScript, as without the addon. */
  readonly timestamps?: TimestampMode;
}

/** The peer-to-peer TCP probe: connects to the peer agent's TcpListener. */
export class TcpProbe implements Probe {
  readonly kind = 'tcp' as const;
  readonly timestamps: TimestampInfo;
  private readonly clock: Clock;
  private readonly bindAddress: string | undefined;
  private readonly mode: TimestampMode;
  private readonly abort = new AbortController();

  constructor(options: TcpProbeOptions) {
    this.clock = options.clock;
    this.bindAddress = options.bindAddress;
    this.mode = options.timestamps ?? 'auto';
    const native = nativeTcp(this.mode);
    // The kernel has no timestamp for "connect completed", but it does time the handshake
    // (SYN to SYN-ACK) for its RTT estimator; without the addon the connect time is read on
    // this thread around connect(), which is why tcp is never the latency reference.
    this.timestamps = native.ok
      ? { source: 'kernel', detail: 'handshake RTT from TCP_INFO (tcpi_rtt), native connect' }
      : {
          source: 'userspace',
          detail: `connect time read around connect() on the engine thread: ${native.reason}`,
        };
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
        this.mode,
      );
      // A handshake the kernel completed only by sending the SYN again lost a packet (the SYN
      // or its SYN-ACK), like an unanswered udp or icmp probe, and its RTT sample is not the
      // path's: 1 ms (the echoed TCP timestamp's resolution) when the SYN was lost, about the
      // initial RTO (1 s) when the SYN-ACK was. Counted as answered, a lossy pair's tcp RTT
      // quantiles rose with its loss and loss alone raised latency alerts.
      if (r.outcome === 'open' && (r.synRetransmits ?? 0) > 0)
        return {
          ...base,
          ok: false,
          reason: 'timeout',
          detail: `answered only after ${r.synRetransmits} retransmitted SYN(s): the first SYN or its SYN-ACK was lost`,
        };
      if (r.outcome === 'open')
        return { ...base, ok: true, rttSeconds: r.handshakeRttSeconds ?? r.seconds };
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
