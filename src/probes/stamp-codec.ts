// STAMP (RFC 8762) wire format: the four base test-packet layouts of section 4, the RFC 4656
// Error Estimate field, NTP 64-bit timestamps, and the HMAC of authenticated mode. Pure and
// allocation-per-call so both the session-sender (udp.ts) and the reflector (stamp-reflector.ts)
// share one definition of every offset; nothing here touches sockets or clocks.
//
// Layouts (offsets in octets; every MBZ span is written as zero and ignored on receipt, so that
// RFC 8972 senders, which reuse part of it for a session id, still interoperate):
//
//   unauthenticated sender, 44:    0 seq(4)  4 timestamp(8)  12 error estimate(2)  14 MBZ(30)
//   unauthenticated reflector, 44: 0 seq(4)  4 timestamp(8)  12 error estimate(2)  14 MBZ(2)
//                                  16 receive timestamp(8)  24 sender seq(4)  28 sender timestamp(8)
//                                  36 sender error estimate(2)  38 MBZ(2)  40 sender TTL(1)  41 MBZ(3)
//   authenticated sender, 112:     0 seq(4)  4 MBZ(12)  16 timestamp(8)  24 error estimate(2)
//                                  26 MBZ(70)  96 HMAC(16)
//   authenticated reflector, 112:  0 seq(4)  4 MBZ(12)  16 timestamp(8)  24 error estimate(2)
//                                  26 MBZ(6)  32 receive timestamp(8)  40 MBZ(8)  48 sender seq(4)
//                                  52 MBZ(12)  64 sender timestamp(8)  72 sender error estimate(2)
//                                  74 MBZ(6)  80 sender TTL(1)  81 MBZ(15)  96 HMAC(16)
//
// The HMAC is HMAC-SHA-256 truncated to 128 bits over the 96 octets before it (all of the base
// packet but the HMAC); padding after the base packet is not covered. Longer packets (padding,
// used by MTU probes) decode fine; shorter ones are rejected as 'short'.
//
// The HMAC is bound to the direction (docs/stamp.md): each direction signs with its own key,
// derived from the shared key (directionKey), so a reflector's reply never verifies as a
// sender's request at another reflector (it would otherwise: same key, same covered octets),
// which is what let one spoofed packet start a loop between two reflectors. The covered octets
// are the RFC's; only the key differs, and RFC 8762 leaves keys to the operator. Both ends of
// podmesh derive the same keys, so agents of this version interoperate with each other, not
// with an agent from before this change or another vendor's authenticated STAMP.

import { createHmac, timingSafeEqual } from 'node:crypto';

/** IANA's well-known STAMP port; agents use their own configured port. */
export const STAMP_WELL_KNOWN_PORT = 862;
export const UNAUTH_BASE_LENGTH = 44;
export const AUTH_BASE_LENGTH = 112;
export const HMAC_LENGTH = 16;
/** Octets covered by the HMAC (everything in the base packet before the HMAC itself). */
export const HMAC_COVERED_LENGTH = AUTH_BASE_LENGTH - HMAC_LENGTH;

/** Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01). */
export const NTP_UNIX_OFFSET_SECONDS = 2_208_988_800;

/** Base (minimum) packet length for a mode: authenticated iff a key is given. */
export function baseLength(authKey: Buffer | undefined): number {
  return authKey === undefined ? UNAUTH_BASE_LENGTH : AUTH_BASE_LENGTH;
}

// ---------------------------------------------------------------------------------------------
// NTP 64-bit timestamps: high 32 bits seconds since 1900, low 32 bits binary fraction. Kept as
// a bigint so arithmetic on them is exact; one fraction unit is 2^-32 s (about 0.23 ns).

/** NTP 64-bit timestamp as an unsigned bigint (seconds << 32 | fraction). */
export type NtpTimestamp = bigint;

const TWO32 = 1n << 32n;
const NS_PER_S = 1_000_000_000n;
const OFFSET_NS = BigInt(NTP_UNIX_OFFSET_SECONDS) * NS_PER_S;

/** Splits a timestamp into its two 32-bit halves. */
export function ntpParts(ntp: NtpTimestamp): { seconds: number; fraction: number } {
  const v = BigInt.asUintN(64, ntp);
  return { seconds: Number(v >> 32n), fraction: Number(v & (TWO32 - 1n)) };
}

export function ntpFromParts(seconds: number, fraction: number): NtpTimestamp {
  return (BigInt(seconds >>> 0) << 32n) | BigInt(fraction >>> 0);
}

/** Unix nanoseconds -> NTP, rounded to the nearest fraction unit; wraps into NTP era 1 after 2036. */
export function ntpFromUnixNs(unixNs: bigint): NtpTimestamp {
  const sinceNtpEpoch = unixNs + OFFSET_NS;
  const units = divRound(sinceNtpEpoch * TWO32, NS_PER_S);
  return BigInt.asUintN(64, units);
}

/**
 * NTP -> Unix nanoseconds, rounded to the nearest ns. A seconds field with its top bit clear is
 * read as era 1 (2036-2104), so the result is right for any time between 1968 and 2104.
 */
export function unixNsFromNtp(ntp: NtpTimestamp): bigint {
  let units = BigInt.asUintN(64, ntp);
  if (units >> 63n === 0n) units += 1n << 64n;
  return divRound(units * NS_PER_S, TWO32) - OFFSET_NS;
}

/** Wall-clock milliseconds (Clock.nowMs(), sub-ms precision kept) -> NTP. */
export function ntpFromUnixMs(ms: number): NtpTimestamp {
  const whole = Math.floor(ms);
  const subNs = Math.round((ms - whole) * 1e6);
  return ntpFromUnixNs(BigInt(whole) * 1_000_000n + BigInt(subNs));
}

/** NTP -> wall-clock milliseconds (float). */
export function unixMsFromNtp(ntp: NtpTimestamp): number {
  const ns = unixNsFromNtp(ntp);
  const ms = ns / 1_000_000n;
  return Number(ms) + Number(ns - ms * 1_000_000n) / 1e6;
}

/**
 * Adds a nanosecond span to a timestamp. Used to derive T3 from T2 plus a monotonic-clock
 * interval, so T3 - T2 is exactly the measured dwell (to well under 1 ns) rather than the
 * difference of two float wall-clock readings.
 */
export function ntpAddNs(ntp: NtpTimestamp, ns: bigint): NtpTimestamp {
  return BigInt.asUintN(64, BigInt.asUintN(64, ntp) + divRound(ns * TWO32, NS_PER_S));
}

/** later - earlier in nanoseconds (signed, rounded); correct across the 2036 era rollover. */
export function ntpDiffNs(later: NtpTimestamp, earlier: NtpTimestamp): bigint {
  const units = BigInt.asIntN(64, BigInt.asUintN(64, later) - BigInt.asUintN(64, earlier));
  return divRound(units * NS_PER_S, TWO32);
}

/** Integer division rounding half away from zero (BigInt division truncates). */
function divRound(n: bigint, d: bigint): bigint {
  const q = n / d;
  const r = n - q * d;
  if (2n * (r < 0n ? -r : r) >= d) return n < 0n ? q - 1n : q + 1n;
  return q;
}

// ---------------------------------------------------------------------------------------------
// Error Estimate (RFC 4656 section 4.1.2): S (clock synchronised to UTC externally), Z (RFC 8186:
// 0 = NTP format, which is all this code writes), 6-bit Scale, 8-bit Multiplier; the estimate
// is Multiplier * 2^(Scale - 32) seconds and the Multiplier must never be zero.

export interface ErrorEstimate {
  readonly synchronized: boolean;
  /** Z bit: true means the timestamps are PTP truncated format. Always false when we encode. */
  readonly ptp: boolean;
  readonly scale: number;
  readonly multiplier: number;
}

export function encodeErrorEstimate(e: Omit<ErrorEstimate, 'ptp'> & { ptp?: boolean }): number {
  const scale = Math.min(63, Math.max(0, Math.trunc(e.scale)));
  const multiplier = Math.min(255, Math.max(1, Math.trunc(e.multiplier)));
  return (
    ((e.synchronized ? 0x8000 : 0) | (e.ptp === true ? 0x4000 : 0) | (scale << 8) | multiplier) >>>
    0
  );
}

/**
 * Reads the field as sent. A zero multiplier (invalid per RFC 4656, but sent by some STAMP
 * Light implementations) is returned as is; deciding whether to trust it is the caller's job.
 */
export function decodeErrorEstimate(field: number): ErrorEstimate {
  return {
    synchronized: (field & 0x8000) !== 0,
    ptp: (field & 0x4000) !== 0,
    scale: (field >> 8) & 0x3f,
    multiplier: field & 0xff,
  };
}

export function errorEstimateSeconds(e: ErrorEstimate): number {
  return e.multiplier * 2 ** (e.scale - 32);
}

/** The smallest encodable estimate that is at least `seconds` (so the claim is never optimistic). */
export function errorEstimateFromSeconds(seconds: number, synchronized: boolean): ErrorEstimate {
  const target = Math.max(0, seconds);
  for (let scale = 0; scale <= 63; scale++) {
    const multiplier = Math.max(1, Math.ceil(target * 2 ** (32 - scale)));
    if (multiplier <= 255) return { synchronized, ptp: false, scale, multiplier };
  }
  return { synchronized, ptp: false, scale: 63, multiplier: 255 };
}

/**
 * What podmesh claims by default: no external synchronisation, error up to 10 ms. Round-trip
 * results never depend on it (T2/T3 and T1/T4 each come from one clock); it only warns a reader
 * of one-way values not to trust them.
 */
export const DEFAULT_ERROR_ESTIMATE: ErrorEstimate = errorEstimateFromSeconds(0.01, false);

// ---------------------------------------------------------------------------------------------
// Packets. errorEstimate fields hold the raw 16-bit value so encode/decode are exact inverses.

export interface SenderPacket {
  readonly seq: number;
  readonly timestamp: NtpTimestamp;
  readonly errorEstimate: number;
}

export interface ReflectorPacket {
  /** The reflector's own sequence number (stateful mode: per session, from 0). */
  readonly seq: number;
  /** T3, when the reflector sent the reply. */
  readonly timestamp: NtpTimestamp;
  readonly errorEstimate: number;
  /** T2, when the reflector received the test packet. */
  readonly receiveTimestamp: NtpTimestamp;
  readonly senderSeq: number;
  /** T1 as the sender wrote it, copied back. */
  readonly senderTimestamp: NtpTimestamp;
  readonly senderErrorEstimate: number;
  readonly senderTtl: number;
}

export interface EncodeOptions {
  /** Total UDP payload length; anything beyond the base packet is zero padding. Never below base. */
  readonly length?: number;
  /** Present means authenticated mode: 112-octet layout and an HMAC. */
  readonly authKey?: Buffer | undefined;
}

export type DecodeFailure = 'short' | 'auth';
export type DecodeResult<T> =
  | { readonly ok: true; readonly packet: T }
  | { readonly ok: false; readonly reason: DecodeFailure };

/** Who signs: the session-sender (a test packet) or the session-reflector (its reply). */
export type HmacDirection = 'request' | 'reply';

/** What each direction's key is derived with: HMAC-SHA-256(shared key, label). */
export const DIRECTION_KEY_LABELS: Readonly<Record<HmacDirection, string>> = {
  request: 'podmesh STAMP HMAC key v1: session-sender to session-reflector',
  reply: 'podmesh STAMP HMAC key v1: session-reflector to session-sender',
};

/** Derived keys per shared key Buffer, so the derivation runs once, not once per packet. */
const derivedKeys = new WeakMap<Buffer, Readonly<Record<HmacDirection, Buffer>>>();

/** The key one direction signs with, derived from the shared key (cached per key Buffer). */
export function directionKey(authKey: Buffer, direction: HmacDirection): Buffer {
  let keys = derivedKeys.get(authKey);
  if (keys === undefined) {
    const derive = (label: string): Buffer =>
      createHmac('sha256', authKey).update(label, 'utf8').digest();
    keys = {
      request: derive(DIRECTION_KEY_LABELS.request),
      reply: derive(DIRECTION_KEY_LABELS.reply),
    };
    derivedKeys.set(authKey, keys);
  }
  return keys[direction];
}

/** HMAC-SHA-256 over the first 96 octets with one direction's key, truncated to 16. */
export function computeHmac(authKey: Buffer, packet: Buffer, direction: HmacDirection): Buffer {
  return createHmac('sha256', directionKey(authKey, direction))
    .update(packet.subarray(0, HMAC_COVERED_LENGTH))
    .digest()
    .subarray(0, HMAC_LENGTH);
}

/** Constant-time check of the HMAC in an authenticated packet of at least 112 octets. */
export function verifyHmac(authKey: Buffer, packet: Buffer, direction: HmacDirection): boolean {
  if (packet.length < AUTH_BASE_LENGTH) return false;
  const expected = computeHmac(authKey, packet, direction);
  return timingSafeEqual(expected, packet.subarray(HMAC_COVERED_LENGTH, AUTH_BASE_LENGTH));
}

/**
 * Where a reflector writes its own fields (receive timestamp, the sender's fields copied back)
 * inside the base packet; in a sender's test packet that span is MBZ (RFC 8762 section 4.2;
 * RFC 8972's Session-Sender Identifier sits just before it, at 14 or 26, and is left alone).
 * A test packet with anything there is itself a reflector's reply: see hasReflectorFields.
 */
export function reflectorFieldSpan(authKey: Buffer | undefined): {
  readonly start: number;
  readonly end: number;
} {
  return authKey === undefined
    ? { start: 16, end: UNAUTH_BASE_LENGTH }
    : { start: 28, end: HMAC_COVERED_LENGTH };
}

/**
 * True when a packet at least the base length carries non-zero octets where a reflector writes
 * its fields. Every real reply does (its receive timestamp is never zero), and every sender
 * writes zeros there, so this tells a reflected packet from a test packet without any state.
 */
export function hasReflectorFields(packet: Buffer, authKey: Buffer | undefined): boolean {
  const { start, end } = reflectorFieldSpan(authKey);
  if (packet.length < end) return false;
  for (let i = start; i < end; i++) if (packet[i] !== 0) return true;
  return false;
}

function allocate(opts: EncodeOptions | undefined): { buf: Buffer; authKey: Buffer | undefined } {
  const authKey = opts?.authKey;
  const base = baseLength(authKey);
  // Buffer.alloc zero-fills: every MBZ span and the padding are zero without further work.
  return { buf: Buffer.alloc(Math.max(base, Math.trunc(opts?.length ?? base))), authKey };
}

function writeTs(buf: Buffer, ts: NtpTimestamp, at: number): void {
  buf.writeBigUInt64BE(BigInt.asUintN(64, ts), at);
}

export function encodeSenderPacket(p: SenderPacket, opts?: EncodeOptions): Buffer {
  const { buf, authKey } = allocate(opts);
  buf.writeUInt32BE(p.seq >>> 0, 0);
  if (authKey === undefined) {
    writeTs(buf, p.timestamp, 4);
    buf.writeUInt16BE(p.errorEstimate & 0xffff, 12);
  } else {
    writeTs(buf, p.timestamp, 16);
    buf.writeUInt16BE(p.errorEstimate & 0xffff, 24);
    computeHmac(authKey, buf, 'request').copy(buf, HMAC_COVERED_LENGTH);
  }
  return buf;
}

export function encodeReflectorPacket(p: ReflectorPacket, opts?: EncodeOptions): Buffer {
  const { buf, authKey } = allocate(opts);
  buf.writeUInt32BE(p.seq >>> 0, 0);
  if (authKey === undefined) {
    writeTs(buf, p.timestamp, 4);
    buf.writeUInt16BE(p.errorEstimate & 0xffff, 12);
    writeTs(buf, p.receiveTimestamp, 16);
    buf.writeUInt32BE(p.senderSeq >>> 0, 24);
    writeTs(buf, p.senderTimestamp, 28);
    buf.writeUInt16BE(p.senderErrorEstimate & 0xffff, 36);
    buf.writeUInt8(p.senderTtl & 0xff, 40);
  } else {
    writeTs(buf, p.timestamp, 16);
    buf.writeUInt16BE(p.errorEstimate & 0xffff, 24);
    writeTs(buf, p.receiveTimestamp, 32);
    buf.writeUInt32BE(p.senderSeq >>> 0, 48);
    writeTs(buf, p.senderTimestamp, 64);
    buf.writeUInt16BE(p.senderErrorEstimate & 0xffff, 72);
    buf.writeUInt8(p.senderTtl & 0xff, 80);
    computeHmac(authKey, buf, 'reply').copy(buf, HMAC_COVERED_LENGTH);
  }
  return buf;
}

export function decodeSenderPacket(buf: Buffer, authKey?: Buffer): DecodeResult<SenderPacket> {
  if (buf.length < baseLength(authKey)) return { ok: false, reason: 'short' };
  if (authKey === undefined) {
    return {
      ok: true,
      packet: {
        seq: buf.readUInt32BE(0),
        timestamp: buf.readBigUInt64BE(4),
        errorEstimate: buf.readUInt16BE(12),
      },
    };
  }
  if (!verifyHmac(authKey, buf, 'request')) return { ok: false, reason: 'auth' };
  return {
    ok: true,
    packet: {
      seq: buf.readUInt32BE(0),
      timestamp: buf.readBigUInt64BE(16),
      errorEstimate: buf.readUInt16BE(24),
    },
  };
}

export function decodeReflectorPacket(
  buf: Buffer,
  authKey?: Buffer,
): DecodeResult<ReflectorPacket> {
  if (buf.length < baseLength(authKey)) return { ok: false, reason: 'short' };
  if (authKey === undefined) {
    return {
      ok: true,
      packet: {
        seq: buf.readUInt32BE(0),
        timestamp: buf.readBigUInt64BE(4),
        errorEstimate: buf.readUInt16BE(12),
        receiveTimestamp: buf.readBigUInt64BE(16),
        senderSeq: buf.readUInt32BE(24),
        senderTimestamp: buf.readBigUInt64BE(28),
        senderErrorEstimate: buf.readUInt16BE(36),
        senderTtl: buf.readUInt8(40),
      },
    };
  }
  if (!verifyHmac(authKey, buf, 'reply')) return { ok: false, reason: 'auth' };
  return {
    ok: true,
    packet: {
      seq: buf.readUInt32BE(0),
      timestamp: buf.readBigUInt64BE(16),
      errorEstimate: buf.readUInt16BE(24),
      receiveTimestamp: buf.readBigUInt64BE(32),
      senderSeq: buf.readUInt32BE(48),
      senderTimestamp: buf.readBigUInt64BE(64),
      senderErrorEstimate: buf.readUInt16BE(72),
      senderTtl: buf.readUInt8(80),
    },
  };
}
