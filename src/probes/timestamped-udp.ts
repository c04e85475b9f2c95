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

import dgram from 'node:dgram';
import type { Clock } from '../core/clock.ts';
import {
  EventType,
  SocketKind,
  Stamps,
  loadTimestamping,
  nativeErrno,
  type AddonLoad,
  type NativeSocket,
  type TimestampInfo,
  type TimestampSource,
} from '../native/timestamping.ts';

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
}

const BIND_ERRORS = new Set(['EADDRINUSE', 'EADDRNOTAVAIL', 'EACCES', 'EINVAL']);

/** Opens the best socket available; rejects only if binding fails. */
export async function openTimestampedUdp(opts: OpenOptions): Promise<TimestampedUdpSocket> {
  const load: AddonLoad =
    opts.timestamps === 'userspace'
      ? { ok: false, reason: 'user-space timestamps requested' }
      : (opts.addon ?? loadTimestamping());
  if (load.ok) {
    const stamps = opts.transmitStamps ? Stamps.both : Stamps.receive;
    const handler = new NativeHandler(opts.onMessage, load.addon.realtimeNs);
    let native: NativeSocket;
    try {
      native = new load.addon.Socket(
        SocketKind.udp,
        opts.address,
        opts.port,
        stamps,
        handler.onEvent,
      );
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
    const complete = native.rxKernel && (native.txKernel || !opts.transmitStamps);
    if (complete) return new KernelUdp(native, load.addon.realtimeNs);
    // The kernel refused the socket option: a plain dgram socket does as well, with less code.
    native.close();
    return UserspaceUdp.open(opts, 'the kernel refused SO_TIMESTAMPING on a UDP socket');
  }
  return UserspaceUdp.open(opts, load.reason);
}

class NativeHandler {
  constructor(
    private readonly onMessage: OpenOptions['onMessage'],
    private readonly realtimeNs: () => bigint,
  ) {}

  readonly onEvent = (type: number, a: unknown, b: unknown, c: unknown, d: unknown, e: unknown) => {
    if (type !== EventType.message) return;
    const rx = typeof d === 'bigint' ? d : this.realtimeNs();
    const ttl = typeof e === 'number' && e >= 0 ? e : undefined;
    this.onMessage(a as Buffer, { address: b as string, port: c as number, rxTime: rx, ttl });
  };
}

class KernelUdp implements TimestampedUdpSocket {
  readonly source = 'kernel' as const;
  readonly timestamps: TimestampInfo;
  readonly port: number;
  private closed = false;

  constructor(
    private readonly native: NativeSocket,
    private readonly realtimeNs: () => bigint,
  ) {
    this.port = native.port;
    this.timestamps = {
      source: 'kernel',
      detail: `kernel software timestamps (${native.txKernel ? 'receive and transmit' : 'receive'})`,
    };
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
      this.native.close();
    }
    return Promise.resolve();
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
