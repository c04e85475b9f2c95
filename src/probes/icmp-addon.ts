// The icmp probe's sockets from podmesh's timestamping addon (src/native): an unprivileged ICMP
// ping socket (SOCK_DGRAM, IPPROTO_ICMP), allowed where net.ipv4.ping_group_range includes the
// process's group, or a raw ICMP socket (CAP_NET_RAW). T1 and T4 are the kernel's transmit and
// receive times, and the addon polls on the current thread's loop, so these work on a worker
// thread too. A ping socket gets only our replies (the kernel picks the identifier and matches
// it) as bare ICMP messages; a raw socket gets whole IP packets, ours and others'. Either
// reports ICMP errors about what it sent on the socket error queue.

import { readFileSync } from 'node:fs';
import {
  EventType,
  SocketKind,
  Stamps,
  type NativeEventHandler,
  type NativeSocket,
  type TimestampingAddon,
} from '../native/timestamping.ts';
import {
  ICMP_DEST_UNREACHABLE,
  ICMP_ECHO_REQUEST,
  ICMP_HEADER_BYTES,
  echoRequestPacket,
  parseIcmpPacketSafely,
  parsePingReply,
} from './icmp-packet.ts';
import {
  enlargeReceiveBuffer,
  filterIcmpTypes,
  setDontFragment,
  type IcmpSendEvents,
  type IcmpSink,
  type IcmpTransport,
  type IcmpTransportOptions,
} from './icmp-transport.ts';

/** A ping socket or a raw socket of the addon. Throws when the socket can't be opened. */
export function openAddonTransport(
  mode: 'ping' | 'raw',
  addon: TimestampingAddon,
  options: IcmpTransportOptions,
): IcmpTransport {
  return new AddonTransport(mode, addon, options);
}

class AddonTransport implements IcmpTransport {
  private readonly socket: NativeSocket;
  private readonly realtimeNs: () => bigint;
  private readonly bindAddress: string | undefined;
  /** The socket's event callback forwards here; attach() points it at the probe. */
  private handler: NativeEventHandler = () => undefined;
  /** Closed, by the probe or after a poll error: later events are dropped. */
  private closed = false;

  constructor(
    readonly mode: 'ping' | 'raw',
    addon: TimestampingAddon,
    options: IcmpTransportOptions,
  ) {
    this.realtimeNs = addon.realtimeNs;
    this.bindAddress = options.bindAddress;
    const kind = mode === 'ping' ? SocketKind.icmpDgram : SocketKind.icmpRaw;
    this.socket = new addon.Socket(
      kind,
      options.bindAddress ?? '0.0.0.0',
      0,
      Stamps.both,
      (type, a, b, c, d, e, f) => this.handler(type, a, b, c, d, e, f),
    );
    enlargeReceiveBuffer(this.socket, options.log);
    if (mode === 'raw') filterIcmpTypes(this.socket, options.log);
    // The socket is bound, so no IP_HDRINCL needed.
    setDontFragment(this.socket, options.log);
  }

  get kernelIdentifier(): number | undefined {
    return this.mode === 'ping' ? this.socket.port : undefined;
  }

  packet(_address: string, total: number, ident: number, seq: number): Buffer {
    // Bound, so the kernel writes the IP header; a ping socket writes its own identifier over
    // ours (and the checksum with it).
    return echoRequestPacket(total, ident, seq);
  }

  send(packet: Buffer, address: string, events: IcmpSendEvents): void {
    events.stamped(this.realtimeNs());
    const ticket = this.socket.send(packet, address, 0);
    events.sent(ticket);
  }

  txTime(ticket: number): bigint | undefined {
    return this.socket.txTime(ticket);
  }

  attach(sink: IcmpSink): void {
    this.handler = (type, a, b, c, d, e, f) => {
      try {
        this.onEvent(sink, type, a, b, c, d, e, f);
      } catch (err) {
        // Nothing here should throw for any packet; if it does, the packet is dropped.
        sink.handlerFailed(err);
      }
    };
  }

  close(): void {
    this.closed = true;
    this.socket.close();
  }

  private onEvent(
    sink: IcmpSink,
    type: number,
    a: unknown,
    b: unknown,
    c: unknown,
    d: unknown,
    e: unknown,
    f: unknown,
  ): void {
    if (this.closed) return;
    if (type === EventType.message) {
      const rx = typeof d === 'bigint' ? d : this.realtimeNs();
      const parsed =
        this.mode === 'raw'
          ? parseIcmpPacketSafely(a as Buffer)
          : parsePingReply(a as Buffer, b as string, this.bindAddress);
      sink.packet(rx, parsed);
      return;
    }
    if (type === EventType.icmpError) {
      const sent = a as Buffer;
      if (sent.length < ICMP_HEADER_BYTES || sent[0] !== ICMP_ECHO_REQUEST) {
        sink.packet(this.realtimeNs(), { kind: 'ignore', why: 'error about a non-echo packet' });
        return;
      }
      const icmpType = d as number;
      const icmpCode = e as number;
      const info = f as number;
      const fragNeeded = icmpType === ICMP_DEST_UNREACHABLE && icmpCode === 4 && info > 0;
      sink.packet(this.realtimeNs(), {
        kind: 'error',
        source: c as string,
        destination: this.bindAddress ?? '',
        icmpType,
        icmpCode,
        quotedDestination: b as string,
        id: sent.readUInt16BE(4),
        seq: sent.readUInt16BE(6),
        ...(fragNeeded ? { nextHopMtu: info } : {}),
      });
      return;
    }
    if (type === EventType.pollError) {
      this.closed = true;
      try {
        this.socket.close();
      } catch {
        // already closed
      }
      sink.failed(`${String(a)}: ${String(b)}`);
    }
  }
}

/** Why unprivileged ICMP was refused, for the log: the sysctl and this process's group. */
export function pingGroupRangeText(): string {
  let range = 'unknown';
  try {
    range = readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8').trim().replace(/\s+/, ' ');
  } catch {
    // not Linux, or /proc not mounted
  }
  return `net.ipv4.ping_group_range is "${range}", this process's group is ${process.getgid?.() ?? '?'}`;
}
