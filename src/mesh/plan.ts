// Which probes go to which selected peer: a pure function from peers and settings to jobs.

import type { Peer, ProbeKind, SizeClass } from '../core/types.ts';
import { pairKey } from '../core/pair-key.ts';
import type { Job } from './scheduler.ts';

export interface PlanOptions {
  readonly kinds: ReadonlySet<ProbeKind>;
  readonly mtu: boolean;
  /** IP packet size of mtu probes. */
  readonly mtuBytes: number;
  /** IP packet size of a small STAMP probe (44-byte unauthenticated or 112-byte authenticated payload + headers). */
  readonly udpSmallBytes: number;
}

/** ping's default: 56 bytes of payload, 64 bytes of ICMP, 84 bytes of IP packet. */
export const ICMP_SMALL_BYTES = 84;
export const TCP_SYN_BYTES = 60;

export function planJobs(peers: readonly Peer[], o: PlanOptions): Job[] {
  const jobs: Job[] = [];
  const add = (peer: Peer, kind: ProbeKind, size: SizeClass, bytes: number): void => {
    jobs.push({ key: pairKey(peer.id, kind, size), kind, target: { peer, size, bytes } });
  };
  for (const peer of peers) {
    if (o.kinds.has('udp')) {
      add(peer, 'udp', 'small', o.udpSmallBytes);
      if (o.mtu && o.mtuBytes > o.udpSmallBytes) add(peer, 'udp', 'mtu', o.mtuBytes);
    }
    if (o.kinds.has('icmp')) {
      add(peer, 'icmp', 'small', ICMP_SMALL_BYTES);
      if (o.mtu && o.mtuBytes > ICMP_SMALL_BYTES) add(peer, 'icmp', 'mtu', o.mtuBytes);
    }
    if (o.kinds.has('tcp')) add(peer, 'tcp', 'small', TCP_SYN_BYTES);
  }
  return jobs;
}
