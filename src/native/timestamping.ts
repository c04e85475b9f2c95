// Loads podmesh's timestamping addon (timestamping.c, built by node-gyp at `npm ci`) and types
// its API. Loading never throws: on another platform, without a built addon, or when
// PODMESH_TIMESTAMPS=userspace forces it, loadTimestamping() says why, and the probes fall back
// to user-space timestamps (Node's dgram and the process clock). docs/timestamps.md explains
// the whole mechanism. The addon also carries the tcp probe's connect (TcpConnect: a cheap
// native connect and the kernel's handshake RTT; docs/timestamps.md, "TCP").
//
// Every timestamp from the addon is CLOCK_REALTIME in nanoseconds: the kernel stamps packets
// with that clock, and realtimeNs() reads it, so user-space readings compare with kernel ones.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Where a probe kind's packet times come from; exported as a metric label. */
export type TimestampSource = 'kernel' | 'userspace';

export interface TimestampInfo {
  readonly source: TimestampSource;
  /** One line for the log: what is used and, for userspace, why. */
  readonly detail: string;
}

/** Set to `userspace` to behave as if the addon could not be loaded (tests, troubleshooting). */
export const TIMESTAMPS_ENV = 'PODMESH_TIMESTAMPS';
export const ADDON_FILE = 'podmesh_timestamping.node';

export const SocketKind = { udp: 0, icmpDgram: 1, icmpRaw: 2 } as const;
export type SocketKind = (typeof SocketKind)[keyof typeof SocketKind];

/** What the kernel should stamp: nothing, received datagrams, or both directions. */
export const Stamps = { none: 0, receive: 1, both: 2 } as const;
export type Stamps = (typeof Stamps)[keyof typeof Stamps];

export const EventType = { message: 0, icmpError: 1, pollError: 2 } as const;

/**
 * The addon's event callback. Arguments by type:
 *   message:   (0, buffer, address, port, rxNs | undefined, ttl)    ttl -1 when unknown
 *   icmpError: (1, buffer, destination, offender, type, code, info) buffer: what we sent
 *   pollError: (2, errnoName, message)
 */
export type NativeEventHandler = (
  type: number,
  a: unknown,
  b: unknown,
  c: unknown,
  d: unknown,
  e: unknown,
  f: unknown,
) => void;

export interface NativeSocket {
  /** Sends one datagram now (a synchronous sendmsg); returns the id its TX time is filed under. */
  send(buffer: Buffer, address: string, port: number): number;
  /** The kernel's transmit time of send `id`, once it has been read off the error queue. */
  txTime(id: number): bigint | undefined;
  setOption(level: number, name: number, value: number): void;
  close(): void;
  /** Bound port; for an ICMP ping socket, the echo identifier the kernel assigned. */
  readonly port: number;
  readonly address: string;
  /** The kernel stamps received datagrams (SO_TIMESTAMPING or SO_TIMESTAMPNS). */
  readonly rxKernel: boolean;
  /** The kernel stamps sent datagrams (SO_TIMESTAMPING TX_SOFTWARE). */
  readonly txKernel: boolean;
}

/**
 * How a TcpConnect ended: `error` is the errno name (ECONNREFUSED...) or null when connected;
 * `elapsedNs` is CLOCK_MONOTONIC ns from just before connect() to the poll event; `rttUs` is the
 * kernel's handshake RTT (TCP_INFO tcpi_rtt) on success, undefined when it has no sample;
 * `synRetransmits` (TCP_INFO tcpi_total_retrans on success, else 0) the SYNs sent again because
 * the first or its SYN-ACK was lost. An addon built before it passes undefined.
 */
export type TcpConnectDone = (
  error: string | null,
  elapsedNs: number,
  rttUs: number | undefined,
  synRetransmits?: number,
) => void;

export interface NativeTcpConnect {
  /** Stops waiting and closes the socket; onDone is not called after it. Safe to repeat. */
  cancel(): void;
}

export interface TimestampingAddon {
  /**
   * One non-blocking IPv4 connect, closed with a RST once it is known how it went. A failure
   * before the handshake (bind, ENETUNREACH...) calls onDone synchronously, inside `new`; bad
   * arguments throw. Absent from addons built before it existed.
   */
  readonly TcpConnect?: new (
    address: string,
    port: number,
    bindAddress: string,
    onDone: TcpConnectDone,
  ) => NativeTcpConnect;
  readonly Socket: new (
    kind: SocketKind,
    bindAddress: string,
    port: number,
    stamps: Stamps,
    onEvent: NativeEventHandler,
  ) => NativeSocket;
  /** clock_gettime(CLOCK_REALTIME), ns: the kernel timestamps' clock. */
  readonly realtimeNs: (this: void) => bigint;
}

export type AddonLoad =
  | { readonly ok: true; readonly addon: TimestampingAddon; readonly path: string }
  | { readonly ok: false; readonly reason: string };

/** Places the built addon may be, relative to this module (source tree or compiled dist/). */
export function addonCandidates(moduleUrl: string = import.meta.url): string[] {
  const here = (rel: string): string => fileURLToPath(new URL(rel, moduleUrl));
  return [
    // Running from source: node-gyp's output next to this file.
    here(`./build/Release/${ADDON_FILE}`),
    // The bundle (dist/bundle/, src/bundle.ts copies the addon there) or a compiled build
    // that had it copied next to timestamping.js.
    here(`./${ADDON_FILE}`),
    // dist/src/native/timestamping.js in a checkout where `npm ci` built src/native.
    here(`../../../src/native/build/Release/${ADDON_FILE}`),
  ];
}

let cached: AddonLoad | undefined;

/**
 * Loads the addon once per thread. Never throws; `reason` says why it is not available.
 * `env` and `candidates` are for tests.
 */
export function loadTimestamping(
  env: NodeJS.ProcessEnv = process.env,
  candidates?: readonly string[],
): AddonLoad {
  const useCache = candidates === undefined && env === process.env;
  if (useCache && cached !== undefined) return cached;
  const result = tryLoad(env, candidates ?? addonCandidates());
  if (useCache) cached = result;
  return result;
}

function tryLoad(env: NodeJS.ProcessEnv, candidates: readonly string[]): AddonLoad {
  const forced = env[TIMESTAMPS_ENV];
  if (forced === 'userspace')
    return { ok: false, reason: `${TIMESTAMPS_ENV}=userspace forces user-space timestamps` };
  if (forced !== undefined && forced !== '' && forced !== 'auto' && forced !== 'kernel')
    return {
      ok: false,
      reason: `${TIMESTAMPS_ENV}=${forced} is not one of auto, kernel, userspace; using user-space timestamps`,
    };
  if (process.platform !== 'linux')
    return { ok: false, reason: `kernel timestamps need Linux (this is ${process.platform})` };
  const path = candidates.find((p) => existsSync(p));
  if (path === undefined)
    return {
      ok: false,
      reason: `the timestamping addon was not built (looked for ${candidates.join(', ')}); run \`npm run build:native\``,
    };
  try {
    const addon = createRequire(import.meta.url)(path) as TimestampingAddon;
    if (typeof addon.Socket !== 'function' || typeof addon.realtimeNs !== 'function')
      return { ok: false, reason: `${path} is not podmesh's timestamping addon` };
    return { ok: true, addon, path };
  } catch (err) {
    return {
      ok: false,
      reason: `cannot load ${path}: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
}

/** The errno name on an error thrown by the addon (or by Node), if any. */
export function nativeErrno(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = err.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
