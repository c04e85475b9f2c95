// The icmp probe's fallback socket: a raw ICMP socket from the `raw-socket` package (needs
// CAP_NET_RAW), for when the timestamping addon can't load. raw-socket is a legacy nan addon
// that polls on uv_default_loop(): loaded or used off the main thread it hangs the process or
// crashes it at exit. So it is required only when asked for (requireRawSocket(), which the probe
// calls only on the main thread), and its times are user-space readings. It cannot bind, so
// with a bind address the probe writes the IP header itself (IP_HDRINCL).

import { createRequire } from 'node:module';
import type { Clock } from '../core/clock.ts';
import { IPPROTO_ICMP, echoRequestPacket, parseIcmpPacketSafely } from './icmp-packet.ts';
import {
  IPPROTO_IP_LEVEL,
  enlargeReceiveBuffer,
  filterIcmpTypes,
  messageOf,
  setDontFragment,
  type IcmpSendEvents,
  type IcmpSink,
  type IcmpTransport,
  type IcmpTransportOptions,
} from './icmp-transport.ts';

// The parts of raw-socket we use. Typed here because the package ships no types.

export interface RawSocket {
  on(event: 'message', listener: (buffer: Buffer, source: string) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  send(
    buffer: Buffer,
    offset: number,
    length: number,
    address: string,
    beforeCallback: () => void,
    afterCallback: (error: Error | null, bytes: number) => void,
  ): unknown;
  setOption(level: number, option: number, value: number): void;
  close(): unknown;
}

export interface RawSocketModule {
  createSocket(options: { protocol: number; bufferSize?: number }): RawSocket;
}

/** Big enough for any IPv4 packet, so large (mtu) replies are never truncated on receive. */
const RECV_BUFFER_BYTES = 65_536;
const IP_HDRINCL = 3;

/** Loads raw-socket now; throws if it can't. Main thread only (see the header). */
export function requireRawSocket(): RawSocketModule {
  return createRequire(import.meta.url)('raw-socket') as RawSocketModule;
}

// raw-socket throws plain Errors carrying strerror() text and no code.
const STRERROR_TO_CODE: Record<string, string> = {
  'Operation not permitted': 'EPERM',
  'Permission denied': 'EACCES',
  'Message too long': 'EMSGSIZE',
  'Network is unreachable': 'ENETUNREACH',
  'No route to host': 'EHOSTUNREACH',
  'Host is down': 'EHOSTDOWN',
  'Network is down': 'ENETDOWN',
  'Cannot assign requested address': 'EADDRNOTAVAIL',
  'No buffer space available': 'ENOBUFS',
  'Invalid argument': 'EINVAL',
  'Protocol not supported': 'EPROTONOSUPPORT',
  'Address family not supported by protocol': 'EAFNOSUPPORT',
};

/** The errno name behind an error from raw-socket (or from Node, which sets `code`). */
export function rawSocketErrno(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const message = (err as { message?: unknown }).message;
    if (typeof message === 'string') return STRERROR_TO_CODE[message.trim()];
  }
  return undefined;
}

/** A raw ICMP socket from `module`. Throws when the socket can't be opened. */
export function openRawSocketTransport(
  module: RawSocketModule,
  options: IcmpTransportOptions & { readonly clock: Clock },
): IcmpTransport {
  return new RawSocketTransport(module, options);
}

class RawSocketTransport implements IcmpTransport {
  readonly mode = 'raw-socket' as const;
  readonly kernelIdentifier = undefined;
  private readonly socket: RawSocket;
  private readonly clock: Clock;
  private readonly bindAddress: string | undefined;

  constructor(module: RawSocketModule, options: IcmpTransportOptions & { readonly clock: Clock }) {
    this.clock = options.clock;
    this.bindAddress = options.bindAddress;
    const socket = module.createSocket({ protocol: IPPROTO_ICMP, bufferSize: RECV_BUFFER_BYTES });
    enlargeReceiveBuffer(socket, options.log);
    filterIcmpTypes(socket, options.log);
    if (options.bindAddress !== undefined) {
      try {
        socket.setOption(IPPROTO_IP_LEVEL, IP_HDRINCL, 1);
      } catch (err) {
        socket.close();
        throw err;
      }
    } else {
      setDontFragment(socket, options.log);
    }
    this.socket = socket;
  }

  packet(address: string, total: number, ident: number, seq: number): Buffer {
    return this.bindAddress === undefined
      ? echoRequestPacket(total, ident, seq)
      : echoRequestPacket(total, ident, seq, { source: this.bindAddress, destination: address });
  }

  send(packet: Buffer, address: string, events: IcmpSendEvents): void {
    this.socket.send(
      packet,
      0,
      packet.length,
      address,
      () => events.stamped(this.clock.monoNs()),
      (err) => {
        if (err) events.failed(err);
        else events.sent(undefined);
      },
    );
  }

  txTime(): bigint | undefined {
    return undefined;
  }

  attach(sink: IcmpSink): void {
    const socket = this.socket;
    socket.on('message', (buffer, _source) =>
      sink.packet(this.clock.monoNs(), parseIcmpPacketSafely(buffer)),
    );
    // raw-socket closes the socket itself after emitting 'error'.
    socket.on('error', (err) => sink.failed(messageOf(err)));
    socket.on('close', () => {});
  }

  close(): void {
    this.socket.close();
  }
}
