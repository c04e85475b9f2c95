// The peer probe kinds, one line each: how an engine opens a kind's probe and which sizes it
// sends every peer. Adding a kind is a probe file (implementing Probe), its name in PROBE_KINDS
// (src/core/types.ts) and an entry here; the mapped type below makes a missing entry a type
// error. The engine opens the kinds its spec lists through this map (src/mesh/families/peer.ts)
// and the plan asks it for sizes, so neither has an if-chain over kinds.

import type { Clock } from '../core/clock.ts';
import type { ProbeKind, SizeClass } from '../core/types.ts';
import { IcmpProbe } from './icmp.ts';
import type { Probe } from './probe.ts';
import { TcpProbe } from './tcp.ts';
import { SizedUdpProbe } from './udp.ts';

/** What an engine hands a kind's factory. */
export interface KindContext {
  /** The engine's timeout clock (slotted, rounded late: a probe's timeout is never shortened). */
  readonly clock: Clock;
  readonly bindAddress: string;
  /** The STAMP key, when authenticated mode is on. */
  readonly authKey: Buffer | undefined;
  readonly log: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

/** A kind's probe, open; or why the kind is off on this machine (e.g. no ICMP permission). */
export type KindOpened =
  | { readonly probe: Probe; readonly detail?: string }
  | { readonly probe: undefined; readonly reason: 'permission' | 'error'; readonly detail: string };

/** What the plan knows about packet sizes (from the config and the interface MTU). */
export interface SizeOptions {
  readonly mtu: boolean;
  /** IP packet size of mtu probes. */
  readonly mtuBytes: number;
  /** IP packet size of a small STAMP probe (44-byte unauthenticated or 112-byte authenticated payload + headers). */
  readonly udpSmallBytes: number;
}

export interface ProbeKindEntry {
  /** Opens the probe; throws only when a bind fails (the engine then fails to start). */
  open(ctx: KindContext): Promise<KindOpened>;
  /** The (size class, IP packet bytes) this kind sends to every peer. */
  sizes(o: SizeOptions): readonly (readonly [SizeClass, number])[];
  /**
   * Without the timestamping addon, this kind's fallback only works on the main thread, so the
   * agent runs it in a main-thread engine instead of the worker (src/agent/engines.ts).
   */
  readonly mainThreadWithoutAddon?: boolean;
}

/** ping's default: 56 bytes of payload, 64 bytes of ICMP, 84 bytes of IP packet. */
export const ICMP_SMALL_BYTES = 84;
export const TCP_SYN_BYTES = 60;

/** A small probe, plus an MTU-sized one when mtu probing is on and the MTU is bigger. */
function smallAndMtu(small: number, o: SizeOptions): (readonly [SizeClass, number])[] {
  return o.mtu && o.mtuBytes > small
    ? [
        ['small', small],
        ['mtu', o.mtuBytes],
      ]
    : [['small', small]];
}

export const PROBE_REGISTRY: { readonly [K in ProbeKind]: ProbeKindEntry } = {
  udp: {
    open: async (ctx) => ({
      probe: await SizedUdpProbe.open({
        clock: ctx.clock,
        bindAddress: ctx.bindAddress,
        authKey: ctx.authKey,
      }),
    }),
    sizes: (o) => smallAndMtu(o.udpSmallBytes, o),
  },
  icmp: {
    open: async (ctx) => {
      const opened = await IcmpProbe.open({ clock: ctx.clock, log: (m) => ctx.log('info', m) });
      if (opened instanceof IcmpProbe)
        return {
          probe: opened,
          detail:
            opened.mode === 'ping'
              ? 'unprivileged ICMP ping socket open'
              : `raw ICMP socket open (${opened.mode})`,
        };
      ctx.log('warn', `ICMP probes are off: ${opened.detail}`, { reason: opened.reason });
      return { probe: undefined, reason: opened.reason, detail: opened.detail };
    },
    sizes: (o) => smallAndMtu(ICMP_SMALL_BYTES, o),
    // raw-socket polls on the main thread's event loop and can't live in a worker.
    mainThreadWithoutAddon: true,
  },
  tcp: {
    open: (ctx) =>
      Promise.resolve({ probe: new TcpProbe({ clock: ctx.clock, bindAddress: ctx.bindAddress }) }),
    sizes: () => [['small', TCP_SYN_BYTES]],
  },
};
