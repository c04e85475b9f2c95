// The ICMP packet codec of the icmp probe, pure and total over all inputs (hostile packets must
// never throw): echo requests built (with the IPv4 header too, where the sender writes its own),
// the Internet checksum, and what a raw socket or a ping socket delivers read back as an echo
// reply, an ICMP error quoting one of our requests, or something to ignore.

export const IP_HEADER_BYTES = 20;
export const ICMP_HEADER_BYTES = 8;
/** The smallest packet we can send: an IP header plus a bare echo header. */
export const ICMP_MIN_PACKET_BYTES = IP_HEADER_BYTES + ICMP_HEADER_BYTES;
/** The largest IPv4 packet (the total-length field is 16 bits). */
export const ICMP_MAX_PACKET_BYTES = 65_535;

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const IPPROTO_ICMP = 1;

export type IcmpParse =
  | {
      readonly kind: 'echo-reply';
      readonly source: string;
      readonly destination: string;
      readonly id: number;
      readonly seq: number;
    }
  | {
      readonly kind: 'error';
      /** The router (or host) that reported the error. */
      readonly source: string;
      readonly destination: string;
      readonly icmpType: number;
      readonly icmpCode: number;
      /** Destination of the echo request quoted inside the error. */
      readonly quotedDestination: string;
      readonly id: number;
      readonly seq: number;
      /** Next-hop MTU from a "fragmentation needed" error (RFC 1191), when given. */
      readonly nextHopMtu?: number;
    }
  | { readonly kind: 'ignore'; readonly why: string }
  | { readonly kind: 'malformed'; readonly why: string };

function ipv4At(p: Uint8Array, offset: number): string {
  return `${p[offset]}.${p[offset + 1]}.${p[offset + 2]}.${p[offset + 3]}`;
}

function u16At(p: Uint8Array, offset: number): number {
  return ((p[offset] ?? 0) << 8) | (p[offset + 1] ?? 0);
}

/** RFC 1071 Internet checksum of p[offset, offset+length). */
export function internetChecksum(p: Uint8Array, offset = 0, length = p.length - offset): number {
  let sum = 0;
  const end = offset + length;
  let i = offset;
  for (; i + 1 < end; i += 2) sum += ((p[i] ?? 0) << 8) | (p[i + 1] ?? 0);
  if (i < end) sum += (p[i] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Echo request bodies by ICMP length, identifier and sequence 0, with their one's-complement sum. */
const echoTemplates = new Map<number, { readonly bytes: Buffer; readonly sum: number }>();
const MAX_ECHO_TEMPLATES = 16;

/**
 * Writes an ICMP echo request (header and a ping-like byte pattern) filling `packet` from
 * `offset` to its end. The pattern and its checksum are worked out once per size: at hundreds
 * of echoes a second, most of them MTU-sized, filling and summing every byte each time was the
 * probe's largest cost in JavaScript. Only the identifier and sequence number change, and they
 * are added to the stored sum (RFC 1071 one's-complement addition is associative).
 */
export function echoRequestInto(packet: Buffer, offset: number, ident: number, seq: number): void {
  const length = packet.length - offset;
  let t = echoTemplates.get(length);
  if (t === undefined) {
    const bytes = Buffer.alloc(length);
    bytes[0] = ICMP_ECHO_REQUEST;
    // A recognisable pattern, like ping's, so captures are easy to read.
    for (let i = ICMP_HEADER_BYTES; i < length; i++) bytes[i] = i & 0xff;
    t = { bytes, sum: ~internetChecksum(bytes) & 0xffff };
    if (echoTemplates.size >= MAX_ECHO_TEMPLATES) echoTemplates.clear();
    echoTemplates.set(length, t);
  }
  t.bytes.copy(packet, offset);
  packet.writeUInt16BE(ident & 0xffff, offset + 4);
  packet.writeUInt16BE(seq & 0xffff, offset + 6);
  let sum = t.sum + (ident & 0xffff) + (seq & 0xffff);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  packet.writeUInt16BE(~sum & 0xffff, offset + 2);
}

/**
 * An echo request of `total` IP bytes, in a fresh buffer (raw-socket queues it until the socket
 * is writable): the ICMP message alone, or with `ip` the whole packet behind an IPv4 header of
 * ours, for a sender that cannot bind (IP_HDRINCL).
 */
export function echoRequestPacket(
  total: number,
  ident: number,
  seq: number,
  ip?: { readonly source: string; readonly destination: string },
): Buffer {
  const withHeader = ip !== undefined;
  const packet = Buffer.allocUnsafe(withHeader ? total : total - IP_HEADER_BYTES);
  if (withHeader) {
    packet.fill(0, 0, IP_HEADER_BYTES);
    packet[0] = 0x45;
    packet.writeUInt16BE(total, 2);
    packet.writeUInt16BE(0x4000, 6); // Don't-Fragment; the kernel fills id and checksum.
    packet[8] = 64;
    packet[9] = IPPROTO_ICMP;
    writeIpv4(packet, 12, ip.source);
    writeIpv4(packet, 16, ip.destination);
  }
  // A ping socket writes its own identifier over ours (and the checksum with it).
  echoRequestInto(packet, withHeader ? IP_HEADER_BYTES : 0, ident, seq);
  return packet;
}

/**
 * Reads an IPv4 packet as delivered by a Linux raw ICMP socket (IP header included). Never
 * throws: anything that is not a well-formed echo reply or a well-formed error quoting an
 * echo request comes back as 'ignore' (valid but not for a prober) or 'malformed'.
 */
export function parseIcmpPacket(packet: Uint8Array): IcmpParse {
  if (packet.length < IP_HEADER_BYTES)
    return { kind: 'malformed', why: 'shorter than an IP header' };
  const b0 = packet[0] ?? 0;
  if (b0 >> 4 !== 4) return { kind: 'malformed', why: 'not IPv4' };
  const ihl = (b0 & 0x0f) * 4;
  if (ihl < IP_HEADER_BYTES) return { kind: 'malformed', why: 'IP header length below 20' };
  if (packet.length < ihl + ICMP_HEADER_BYTES)
    return { kind: 'malformed', why: 'truncated ICMP header' };
  if (packet[9] !== IPPROTO_ICMP) return { kind: 'malformed', why: 'not ICMP' };
  const source = ipv4At(packet, 12);
  const destination = ipv4At(packet, 16);
  const type = packet[ihl] ?? 0;
  const code = packet[ihl + 1] ?? 0;

  if (type === ICMP_ECHO_REPLY) {
    if (internetChecksum(packet, ihl) !== 0) return { kind: 'malformed', why: 'bad ICMP checksum' };
    return {
      kind: 'echo-reply',
      source,
      destination,
      id: u16At(packet, ihl + 4),
      seq: u16At(packet, ihl + 6),
    };
  }
  if (type !== ICMP_DEST_UNREACHABLE && type !== ICMP_TIME_EXCEEDED) {
    return { kind: 'ignore', why: `ICMP type ${type}` };
  }

  // An error quotes the offending IP header plus at least the first 8 bytes of its payload.
  const inner = ihl + ICMP_HEADER_BYTES;
  if (packet.length < inner + IP_HEADER_BYTES)
    return { kind: 'malformed', why: 'error without quoted header' };
  const ib0 = packet[inner] ?? 0;
  if (ib0 >> 4 !== 4) return { kind: 'malformed', why: 'quoted packet not IPv4' };
  const innerIhl = (ib0 & 0x0f) * 4;
  if (innerIhl < IP_HEADER_BYTES)
    return { kind: 'malformed', why: 'quoted IP header length below 20' };
  if (packet.length < inner + innerIhl + ICMP_HEADER_BYTES) {
    return { kind: 'malformed', why: 'quoted payload shorter than 8 bytes' };
  }
  if (packet[inner + 9] !== IPPROTO_ICMP)
    return { kind: 'ignore', why: 'error quotes a non-ICMP packet' };
  const quoted = inner + innerIhl;
  if (packet[quoted] !== ICMP_ECHO_REQUEST)
    return { kind: 'ignore', why: 'error quotes a non-echo packet' };
  const mtu = u16At(packet, ihl + 6);
  const fragNeeded = type === ICMP_DEST_UNREACHABLE && code === 4 && mtu > 0;
  return {
    kind: 'error',
    source,
    destination,
    icmpType: type,
    icmpCode: code,
    quotedDestination: ipv4At(packet, inner + 16),
    id: u16At(packet, quoted + 4),
    seq: u16At(packet, quoted + 6),
    ...(fragNeeded ? { nextHopMtu: mtu } : {}),
  };
}

/** parseIcmpPacket that cannot throw even if it had a bug: the packet is then malformed. */
export function parseIcmpPacketSafely(packet: Uint8Array): IcmpParse {
  try {
    return parseIcmpPacket(packet);
  } catch {
    return { kind: 'malformed', why: 'parser failed' };
  }
}

/**
 * An echo reply as a ping socket delivers it: the ICMP message alone (the kernel already
 * checked the checksum and that the identifier is this socket's).
 */
export function parsePingReply(
  message: Uint8Array,
  source: string,
  boundAddress: string | undefined,
): IcmpParse {
  if (message.length < ICMP_HEADER_BYTES)
    return { kind: 'malformed', why: 'shorter than an ICMP header' };
  if (message[0] !== ICMP_ECHO_REPLY) return { kind: 'ignore', why: `ICMP type ${message[0]}` };
  return {
    kind: 'echo-reply',
    source,
    // The socket only receives what is addressed to its bound address.
    destination: boundAddress ?? '',
    id: u16At(message, 4),
    seq: u16At(message, 6),
  };
}

const UNREACHABLE_CODES: Record<number, string> = {
  0: 'network unreachable',
  1: 'host unreachable',
  2: 'protocol unreachable',
  3: 'port unreachable',
  4: 'fragmentation needed',
  9: 'network administratively prohibited',
  10: 'host administratively prohibited',
  13: 'communication administratively prohibited',
};

/** The log detail of an ICMP error, e.g. "ICMP destination unreachable (host unreachable) from …". */
export function describeIcmpError(e: Extract<IcmpParse, { kind: 'error' }>): string {
  if (e.icmpType === ICMP_TIME_EXCEEDED)
    return `ICMP time exceeded (code ${e.icmpCode}) from ${e.source}`;
  const what = UNREACHABLE_CODES[e.icmpCode] ?? `code ${e.icmpCode}`;
  const mtu = e.nextHopMtu === undefined ? '' : `, next-hop MTU ${e.nextHopMtu}`;
  return `ICMP destination unreachable (${what}${mtu}) from ${e.source}`;
}

function writeIpv4(buffer: Buffer, offset: number, address: string): void {
  const parts = address.split('.');
  for (let i = 0; i < 4; i++) buffer[offset + i] = Number(parts[i] ?? 0) & 0xff;
}
