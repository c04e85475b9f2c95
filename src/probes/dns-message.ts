// The DNS message side of the dns probe, pure: the outcome vocabulary, a query's shape and its
// wire form, the check of a received message against the query it should answer (see the
// header of dns.ts for what counts as an answer), and the result a lookup comes to. No sockets
// here: dns-udp.ts and dns-tcp.ts carry the messages, dns.ts runs the lookups.

import dnsPacket from 'dns-packet';
import type { DecodedPacket, Packet, RecordType } from 'dns-packet';

// The outcome vocabulary is core's (src/core/outcomes.ts): the store and metrics count by it too.
export { DNS_OUTCOMES, type DnsOutcome, type DnsTransport } from '../core/outcomes.ts';
import type { DnsOutcome, DnsTransport } from '../core/outcomes.ts';
export type DnsRecordType = RecordType;

export interface DnsQuery {
  /** IPv4 literal of the server. */
  readonly server: string;
  /** Default 53. */
  readonly port?: number;
  /** Absolute name, with or without the trailing dot. */
  readonly name: string;
  readonly type: DnsRecordType;
  readonly transport: DnsTransport;
  /**
   * Send this UDP query from a socket of its own (a new source port), the way a Pod's stub
   * resolver does. Through a Service VIP each lookup is then its own conntrack flow, DNAT'ed
   * afresh, so lookups spread over the replicas as a Pod's do instead of sticking to one.
   */
  readonly freshSocket?: boolean;
}

export interface DnsResult {
  /** The server answered with a well-formed response to this query, whatever its rcode. */
  readonly ok: boolean;
  readonly outcome: DnsOutcome;
  /** The answer's rcode as dns-packet names it ('NOERROR', 'NXDOMAIN'...), when there is one. */
  readonly rcode?: string;
  /** Records of the asked type in the answer section. */
  readonly answers: number;
  /** A/AAAA data of those records (at most 32), for logs and the demo. */
  readonly addresses: readonly string[];
  /** The UDP answer was truncated and the query was repeated over TCP. */
  readonly truncatedRetried: boolean;
  /** Time from sending the query to the final answer (or to the failure being known). */
  readonly seconds: number;
  /** Wall-clock time the query was sent, ms since the epoch. */
  readonly sentAtMs: number;
  /** The transport of the final leg: 'tcp' after a truncation retry. */
  readonly transport: DnsTransport;
  /** The answer had AA set (the server is authoritative for the name). */
  readonly authoritative?: boolean;
  /** Human-readable detail for logs; never a label value. */
  readonly detail?: string;
}

/** How a query's last leg went, whatever its outcome. */
export interface LegFacts {
  readonly truncatedRetried: boolean;
  readonly seconds: number;
  readonly sentAtMs: number;
  readonly transport: DnsTransport;
}

const MAX_ADDRESSES = 32;
const MAX_NAME = 253;

/** What a response must match; `id` is the query's id. */
export interface ExpectedAnswer {
  readonly id: number;
  /** Name without the trailing dot ('.' for the root). */
  readonly name: string;
  readonly type: DnsRecordType;
}

export type ResponseCheck =
  | {
      readonly kind: 'answer';
      readonly rcode: string;
      readonly truncated: boolean;
      readonly authoritative: boolean;
      readonly answers: number;
      readonly addresses: readonly string[];
    }
  | { readonly kind: 'malformed'; readonly detail: string }
  | { readonly kind: 'mismatched'; readonly detail: string };

/**
 * Checks one received message against the query it should answer. Pure; never throws.
 * 'malformed' means it cannot be a DNS response; 'mismatched' means it is one, for another query.
 */
export function checkResponse(
  expected: ExpectedAnswer,
  message: Buffer,
  maxBytes: number,
): ResponseCheck {
  if (message.length > maxBytes)
    return { kind: 'malformed', detail: `oversized: ${message.length} bytes > ${maxBytes}` };
  if (message.length < 12)
    return { kind: 'malformed', detail: `short: ${message.length} bytes, no DNS header` };
  const flags = message.readUInt16BE(2);
  if ((flags & 0x8000) === 0) return { kind: 'malformed', detail: 'not a response (QR clear)' };
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== 0) return { kind: 'malformed', detail: `opcode ${opcode}, not QUERY` };
  const rcodeNum = flags & 0xf;
  const qdcount = message.readUInt16BE(4);
  // FORMERR and NOTIMP answers may leave the question out; anything else must repeat exactly it.
  // Checked before decoding so a crafted header can't make us parse thousands of questions.
  if (qdcount !== 1 && !(qdcount === 0 && (rcodeNum === 1 || rcodeNum === 4))) {
    const id = message.readUInt16BE(0);
    return id === expected.id
      ? { kind: 'mismatched', detail: `${qdcount} questions in the answer` }
      : { kind: 'mismatched', detail: `id ${id}, expected ${expected.id}` };
  }
  let packet: DecodedPacket;
  try {
    packet = dnsPacket.decode(message);
  } catch (err) {
    return { kind: 'malformed', detail: `undecodable: ${errorText(err)}` };
  }
  if (packet.id !== expected.id)
    return { kind: 'mismatched', detail: `id ${String(packet.id)}, expected ${expected.id}` };
  const rcode = (packet as { rcode?: unknown }).rcode;
  const rcodeText = typeof rcode === 'string' ? rcode : `RCODE_${rcodeNum}`;
  const q = packet.questions?.[0];
  if (q !== undefined) {
    const name = q.name === '' ? '.' : q.name;
    if (name.toLowerCase() !== expected.name.toLowerCase())
      return { kind: 'mismatched', detail: `question name ${name}, expected ${expected.name}` };
    if (q.type !== expected.type)
      return { kind: 'mismatched', detail: `question type ${q.type}, expected ${expected.type}` };
    if ((q.class ?? 'IN') !== 'IN')
      return { kind: 'mismatched', detail: `question class ${String(q.class)}, expected IN` };
  }
  let answers = 0;
  const addresses: string[] = [];
  for (const a of packet.answers ?? []) {
    if (a.type !== expected.type) continue;
    answers++;
    if ((a.type === 'A' || a.type === 'AAAA') && addresses.length < MAX_ADDRESSES)
      addresses.push(a.data);
  }
  return {
    kind: 'answer',
    rcode: rcodeText,
    truncated: packet.flag_tc,
    authoritative: packet.flag_aa,
    answers,
    addresses,
  };
}

/** The server answered correctly: a name that exists, exists without that type, or doesn't. */
export function answeredCorrectly(outcome: DnsOutcome): boolean {
  return outcome === 'noerror' || outcome === 'nodata' || outcome === 'nxdomain';
}

/** The outcome of a well-formed answer, from its rcode and how many records of the asked type. */
function outcomeOfRcode(rcode: string, answers: number): DnsOutcome {
  switch (rcode) {
    case 'NOERROR':
      return answers > 0 ? 'noerror' : 'nodata';
    case 'NXDOMAIN':
      return 'nxdomain';
    case 'SERVFAIL':
      return 'servfail';
    case 'REFUSED':
      return 'refused';
    default:
      return 'other-rcode';
  }
}

/** Normalises a query name (no trailing dot, '.' for the root) or says why it can't be sent. */
export function normaliseName(
  name: string,
): { ok: true; name: string } | { ok: false; why: string } {
  if (typeof name !== 'string' || name === '') return { ok: false, why: 'empty name' };
  if (name === '.') return { ok: true, name: '.' };
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  if (bare.length > MAX_NAME) return { ok: false, why: `name longer than ${MAX_NAME}` };
  for (const label of bare.split('.')) {
    if (label === '') return { ok: false, why: 'empty label' };
    if (Buffer.byteLength(label) > 63) return { ok: false, why: 'label longer than 63 bytes' };
  }
  return { ok: true, name: bare };
}

/** The result of a valid answer (a TC answer can only end a query over TCP, and says so). */
export function answerResult(
  check: Extract<ResponseCheck, { kind: 'answer' }>,
  leg: LegFacts,
): DnsResult {
  const base = {
    ok: true,
    outcome: outcomeOfRcode(check.rcode, check.answers),
    rcode: check.rcode,
    answers: check.answers,
    addresses: check.addresses,
    truncatedRetried: leg.truncatedRetried,
    seconds: leg.seconds,
    sentAtMs: leg.sentAtMs,
    transport: leg.transport,
    authoritative: check.authoritative,
  };
  return check.truncated ? { ...base, detail: 'truncated answer over TCP' } : base;
}

/** The result of a query that got no valid answer. */
export function failedResult(outcome: DnsOutcome, detail: string, leg: LegFacts): DnsResult {
  return {
    ok: false,
    outcome,
    answers: 0,
    addresses: [],
    truncatedRetried: leg.truncatedRetried,
    seconds: leg.seconds,
    sentAtMs: leg.sentAtMs,
    transport: leg.transport,
    detail,
  };
}

/**
 * A query's wire form (RD set; an EDNS0 OPT record advertising `ednsUdpSize` over UDP), or
 * undefined when dns-packet can't encode it. A fresh Buffer per query, checked to round-trip so
 * an unknown type can't go out as type 0.
 */
export function encodeQuery(
  id: number,
  q: Pick<DnsQuery, 'name' | 'type' | 'transport'>,
  ednsUdpSize: number | undefined,
): Buffer | undefined {
  try {
    const packet: Packet = {
      type: 'query',
      id,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: q.type, name: q.name === '.' ? '.' : q.name, class: 'IN' }],
    };
    if (ednsUdpSize !== undefined && q.transport === 'udp') {
      packet.additionals = [
        {
          type: 'OPT',
          name: '.',
          udpPayloadSize: ednsUdpSize,
          extendedRcode: 0,
          ednsVersion: 0,
          flags: 0,
          flag_do: false,
          options: [],
        },
      ];
    }
    const wire = dnsPacket.encode(packet);
    const back = dnsPacket.decode(wire).questions?.[0];
    if (back?.type !== q.type) return undefined;
    return wire;
  } catch {
    return undefined;
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
