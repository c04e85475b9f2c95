// A UDP socket that tells when each datagram really left and arrived: the STAMP sender and
// reflector both use it. Two implementations behind one interface:
//
//   kernel     the timestamping addon (src/native): receive times from the kernel as the
//              datagram came off the device, transmit times from the driver's send path, all
//              on CLOCK_REALTIME. What the process was doing meanwhile doesn't count.
//   userspace  Node's dgram, stamped with the injected clock when JavaScript sees the datagram
//              (the fallback when the addon can't load, or when asked for).
//
// Times are bigint nanoseconds on the socket's own clock (`now()`); only differences between
// two times of one socket, and `unixNs()` for the NTP fields, mean anything.
//
// If libuv stops polling the addon's socket (a poll error: it takes a bare POLLERR for a dead
// descriptor), the socket would go deaf with nothing to show for it. Instead it is closed and
// opened again on the same address and port (the reflector's fixed port, retried with backoff
// while the old descriptor still holds it; a new ephemeral one for the sender), counted in the thread's socketReopens (the engine exports and logs it), and the owner
// is told, so the sender ends what is in flight as its own error rather than as path loss.

import dgram from 'node:dgram';
import type { Clock, TimerHandle } from '../core/clock.ts';
import {
  EventType,
  SocketKind,
  Stamps,
  loadTimestamping,
  nativeErrno,
  type AddonLoad,
  type NativeEventHandler,
  type NativeSocket,
  type TimestampInfo,
  type TimestampSource,
} from '../native/timestamping.ts';
import { socketReopens, type SocketKindName } from './probe.ts';

export interface DatagramInfo {
  readonly address: string;
  readonly port: number;
  /** Arrival on this socket's clock. */
  readonly rxTime: bigint;
  /** The IP TTL it arrived with, when the socket can read it. */
  readonly ttl: number | undefined;
}

export interface TimestampedUdpSocket {
  readonly source: TimestampSource;
  readonly timestamps: TimestampInfo;
  /** The bound port (after a reopen on port 0, the new one). */
  readonly port: number;
  /** This socket's clock, ns. */
  now(): bigint;
  /** One of this socket's times as Unix nanoseconds (wall clock). */
  unixNs(time: bigint): bigint;
  /**
   * Sends one datagram. Throws synchronously for what is refused at once; `onError` reports
   * what fails later. Returns a ticket for txTime().
   */
  send(packet: Buffer, port: number, address: string, onError: (err: Error) => void): number;
  /** When the datagram of `ticket` left, if known (kernel transmit timestamp). */
  txTime(ticket: number): bigint | undefined;
  close(): Promise<void>;
}

export type TimestampMode = 'auto' | 'userspace';

export interface OpenOptions {
  readonly clock: Clock;
  readonly address: string;
  readonly port: number;
  /** Ask the kernel for transmit timestamps too (the sender needs them, the reflector not). */
  readonly transmitStamps: boolean;
  /** 'userspace' skips the addon, as if it could not load. */
  readonly timestamps?: TimestampMode | undefined;
  /** For tests: what loadTimestamping() would have returned. */
  readonly addon?: AddonLoad | undefined;
  readonly onMessage: (msg: Buffer, info: DatagramInfo) => void;
  /**
   * The socket failed and is being reopened: nothing sent before will be answered on it. Only
   * the addon's socket fails this way (dgram keeps polling through errors).
   */
  readonly onFailed?: ((why: string) => void) | undefined;
  /** What the socket is, for the reopen count; default by transmitStamps (sender or reflector). */
  readonly kind?: SocketKindName | undefined;
}

/** First wait before trying again to reopen a failed socket, and the longest. */
const REOPEN_RETRY_FIRST_MS = 10;
const REOPEN_RETRY_MAX_MS = 5000;

const BIND_ERRORS = new Set(['EADDRINUSE', 'EADDRNOTAVAIL', 'EACCES', 'EINVAL']);

/** Opens the best socket available; rejects only if binding fails. */
export async function openTimestampedUdp(opts: OpenOptions): Promise<TimestampedUdpSocket> {
  const load: AddonLoad =
    opts.timestamps === 'userspace'
      ? { ok: false, reason: 'user-space timestamps requested' }
      : (opts.addon ?? loadTimestamping());
  if (load.ok) {
    const stamps = opts.transmitStamps ? Stamps.both : Stamps.receive;
    const addon = load.addon;
    const openNative = (onEvent: NativeEventHandler): NativeSocket =>
      new addon.Socket(SocketKind.udp, opts.address, opts.port, stamps, onEvent);
    let udp: KernelUdp;
    try {
      udp = new KernelUdp(openNative, addon.realtimeNs, opts);
    } catch (err) {
      // The constructor binds: its bind errors are the caller's, as dgram's would be. Anything
      // else (the addon can't poll on this thread, out of descriptors) falls back to dgram.
      const code = nativeErrno(err);
      if (code === undefined || BIND_ERRORS.has(code)) throw err;
      return UserspaceUdp.open(
        opts,
        `the timestamping addon could not open a UDP socket (${(err as Error).message})`,
      );
    }
    if (udp.complete(opts.transmitStamps)) return udp;
    // The kernel refused the socket option: a plain dgram socket does as well, with less code.
    await udp.close();
    return UserspaceUdp.open(opts, 'the kernel refused SO_TIMESTAMPING on a UDP socket');
  }
  return UserspaceUdp.open(opts, load.reason);
}

class KernelUdp implements TimestampedUdpSocket {
  readonly source = 'kernel' as const;
  readonly timestamps: TimestampInfo;
  private native: NativeSocket;
  private readonly kind: SocketKindName;
  private closed = false;
  /** Which native socket is current: events of one already replaced are dropped. */
  private generation = 0;
  private retry: TimerHandle | undefined;
  private retryMs = REOPEN_RETRY_FIRST_MS;

  constructor(
    private readonly openNative: (onEvent: NativeEventHandler) => NativeSocket,
    private readonly realtimeNs: () => bigint,
    private readonly opts: OpenOptions,
  ) {
    this.kind = opts.kind ?? (opts.transmitStamps ? 'stamp_sender' : 'stamp_reflector');
    this.native = this.openCurrent();
    this.timestamps = {
      source: 'kernel',
      detail: `kernel software timestamps (${this.native.txKernel ? 'receive and transmit' : 'receive'})`,
    };
  }

  /** Whether the kernel gave the timestamps asked for. */
  complete(transmitStamps: boolean): boolean {
    return this.native.rxKernel && (this.native.txKernel || !transmitStamps);
  }

  get port(): number {
    return this.native.port;
  }

  now(): bigint {
    return this.realtimeNs();
  }

  unixNs(time: bigint): bigint {
    return time;
  }

  send(packet: Buffer, port: number, address: string): number {
    return this.native.send(packet, address, port);
  }

  txTime(ticket: number): bigint | undefined {
    return this.closed ? undefined : this.native.txTime(ticket);
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      if (this.retry !== undefined) this.opts.clock.clearTimeout(this.retry);
      this.retry = undefined;
      this.native.close();
    }
    return Promise.resolve();
  }

  /** Opens a native socket that delivers here for as long as it is the current one. */
  private openCurrent(): NativeSocket {
    const generation = ++this.generation;
    return this.openNative((type, a, b, c, d, e) => {
      if (generation !== this.generation || this.closed) return;
      if (type === EventType.message) {
        const rx = typeof d === 'bigint' ? d : this.realtimeNs();
        const ttl = typeof e === 'number' && e >= 0 ? e : undefined;
        this.opts.onMessage(a as Buffer, {
          address: b as string,
          port: c as number,
          rxTime: rx,
          ttl,
        });
      } else if (type === EventType.pollError) {
        this.failed(`${String(a)}: ${String(b)}`);
      }
    });
  }

  /** libuv stopped polling the socket: close it, count it, tell the owner, open a new one. */
  private failed(why: string): void {
    this.generation++;
    try {
      this.native.close();
    } catch {
      // already closed
    }
    socketReopens.note(this.kind, why);
    this.opts.onFailed?.(why);
    this.reopen();
  }

  private reopen(): void {
    if (this.closed) return;
    try {
      this.native = this.openCurrent();
      this.retryMs = REOPEN_RETRY_FIRST_MS;
    } catch {
      // A fixed port (the reflector's) stays bound until libuv has closed the old descriptor, at
      // the end of this turn of the loop; anything else that fails may pass later too.
      this.retry = this.opts.clock.setTimeout(() => {
        this.retry = undefined;
        this.reopen();
      }, this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, REOPEN_RETRY_MAX_MS);
    }
  }
}

class UserspaceUdp implements TimestampedUdpSocket {
  readonly source = 'userspace' as const;
  readonly timestamps: TimestampInfo;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly clock: Clock,
    readonly port: number,
    why: string,
  ) {
    this.timestamps = { source: 'userspace', detail: `user-space timestamps: ${why}` };
  }

  static async open(opts: OpenOptions, why: string): Promise<UserspaceUdp> {
    const socket = dgram.createSocket({ type: 'udp4' });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ address: opts.address, port: opts.port }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      throw err;
    }
    const clock = opts.clock;
    socket.on('message', (msg, rinfo) => {
      // The arrival time first, before any other work.
      const rxTime = clock.monoNs();
      opts.onMessage(msg, { address: rinfo.address, port: rinfo.port, rxTime, ttl: undefined });
    });
    // Asynchronous socket errors (ICMP errors surfaced by the kernel) must not crash the agent.
    socket.on('error', () => undefined);
    return new UserspaceUdp(socket, clock, socket.address().port, why);
  }

  now(): bigint {
    return this.clock.monoNs();
  }

  unixNs(time: bigint): bigint {
    const nowUnixNs = BigInt(Math.round(this.clock.nowMs() * 1e6));
    return nowUnixNs - (this.clock.monoNs() - time);
  }

  send(packet: Buffer, port: number, address: string, onError: (err: Error) => void): number {
    // dgram keeps a reference to the Buffer until the kernel has taken the bytes: callers pass a
    // fresh one per send.
    this.socket.send(packet, port, address, (err) => {
      if (err) onError(err);
    });
    return 0;
  }

  txTime(): undefined {
    return undefined;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}
