// What the icmp probe needs of a socket, whichever of the three carries the echoes (see the
// header of icmp.ts): send an echo request and say when it left, hand back what arrives parsed,
// and say when the socket broke. Each socket lives in its own file (icmp-addon.ts for the
// timestamping addon's ping and raw sockets, icmp-raw-socket.ts for the raw-socket package);
// the socket options they share are set here.

import {
  ICMP_DEST_UNREACHABLE,
  ICMP_ECHO_REPLY,
  ICMP_TIME_EXCEEDED,
  type IcmpParse,
} from './icmp-packet.ts';

/** Which socket carries the echoes: see the header of icmp.ts. */
export type IcmpSocketMode = 'ping' | 'raw' | 'raw-socket';

/** What a send reports, in this order; after send() threw, nothing. */
export interface IcmpSendEvents {
  /** Just before the packet leaves, on the transport's clock: T1 unless the kernel's comes. */
  readonly stamped: (sentNs: bigint) => void;
  /** The packet left; `ticket` is what txTime() files its transmit time under, if anything. */
  readonly sent: (ticket: number | undefined) => void;
  /** The send failed after send() had returned. */
  readonly failed: (err: unknown) => void;
}

/** Where a transport delivers, once attached. */
export interface IcmpSink {
  /** A packet that arrived, parsed; receivedNs is on the transport's clock. */
  readonly packet: (receivedNs: bigint, parsed: IcmpParse) => void;
  /** Handling a packet threw; the packet is dropped. */
  readonly handlerFailed: (err: unknown) => void;
  /** The socket is unusable and already closed. */
  readonly failed: (why: string) => void;
}

export interface IcmpTransport {
  readonly mode: IcmpSocketMode;
  /** A ping socket's echo identifier (the kernel's, its "port"); undefined where the probe picks. */
  readonly kernelIdentifier: number | undefined;
  /** An echo request of `total` IP bytes to `address`, in the form this socket sends. */
  packet(address: string, total: number, ident: number, seq: number): Buffer;
  /** Sends `packet`; throws when the send fails at once. */
  send(packet: Buffer, address: string, events: IcmpSendEvents): void;
  /** The kernel's transmit time of the send filed under `ticket`, if it has one. */
  txTime(ticket: number): bigint | undefined;
  /** Starts delivering to `sink`; until then nothing has been sent to answer. */
  attach(sink: IcmpSink): void;
  close(): void;
}

/** What a transport is opened with. */
export interface IcmpTransportOptions {
  readonly bindAddress: string | undefined;
  readonly log: (msg: string) => void;
}

/** The setOption() both addons' sockets have. */
interface OptionSocket {
  setOption(level: number, option: number, value: number): void;
}

// Linux values; raw-socket does not export them.
export const IPPROTO_IP_LEVEL = 0;
const IP_MTU_DISCOVER = 10;
const IP_PMTUDISC_DO = 2;
const SOL_SOCKET_LEVEL = 1;
/** Raw ICMP sockets only: a bitmask of ICMP types the kernel should NOT deliver (linux/icmp.h). */
const SOL_RAW_LEVEL = 255;
const ICMP_FILTER = 1;
/**
 * Everything but echo replies, destination unreachable and time exceeded. A raw ICMP socket
 * otherwise gets a copy of every ICMP packet the node handles, other probers' echo requests
 * included; on a busy node those fill its receive buffer and crowd out our own replies.
 */
// Unsigned: raw-socket's setOption takes only a uint32 (the addon's takes the same 32 bits).
const ICMP_FILTER_MASK =
  ~((1 << ICMP_ECHO_REPLY) | (1 << ICMP_DEST_UNREACHABLE) | (1 << ICMP_TIME_EXCEEDED)) >>> 0;
const SO_RCVBUF = 8;
const SOCKET_RCVBUF_BYTES = 1 << 20;

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function enlargeReceiveBuffer(socket: OptionSocket, log: (msg: string) => void): void {
  try {
    socket.setOption(SOL_SOCKET_LEVEL, SO_RCVBUF, SOCKET_RCVBUF_BYTES);
  } catch (err) {
    log(`icmp: cannot enlarge the receive buffer, replies may drop under load: ${messageOf(err)}`);
  }
}

/** Asks the kernel to keep from a raw socket the ICMP types a prober never reads. */
export function filterIcmpTypes(socket: OptionSocket, log: (msg: string) => void): void {
  try {
    socket.setOption(SOL_RAW_LEVEL, ICMP_FILTER, ICMP_FILTER_MASK);
  } catch (err) {
    log(`icmp: cannot filter ICMP types, other traffic may crowd out replies: ${messageOf(err)}`);
  }
}

/**
 * Don't-Fragment, so an mtu-sized probe is lost (or refused locally) on a smaller path instead
 * of being silently fragmented.
 */
export function setDontFragment(socket: OptionSocket, log: (msg: string) => void): void {
  try {
    socket.setOption(IPPROTO_IP_LEVEL, IP_MTU_DISCOVER, IP_PMTUDISC_DO);
  } catch (err) {
    log(`icmp: cannot set Don't-Fragment, mtu probes may be fragmented: ${messageOf(err)}`);
  }
}
