// Shared vocabulary of podmesh: peers, probe kinds and the typed result every probe resolves to.
// Kept free of runtime code so every layer (probes, discovery, mesh, metrics) can import it
// without importing each other.

export const PROBE_KINDS = ['udp', 'icmp', 'tcp'] as const;
export type ProbeKind = (typeof PROBE_KINDS)[number];

/** "small" is the plain probe; "mtu" is padded to the interface MTU to expose black holes. */
export const SIZE_CLASSES = ['small', 'mtu'] as const;
export type SizeClass = (typeof SIZE_CLASSES)[number];

export const NETWORKS = ['pod', 'host'] as const;
/** Which network an agent sits on: the pod network, or the node's own (hostNetwork). */
export type Network = (typeof NETWORKS)[number];

export type PathKind = `${Network}-to-${Network}`;
export type Scope = 'same-node' | 'same-zone' | 'cross-zone';

/**
 * The closed set of reasons a probe can fail. Anything unexpected maps to "error" with a
 * detail string, so metrics label values stay bounded.
 */
export const FAILURE_REASONS = [
  'timeout',
  'refused',
  'unreachable',
  'permission',
  'malformed',
  'error',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** Where a peer agent can be reached. Identity is node + network, never a Pod IP or name. */
export interface Peer {
  /** Stable key: `${node}/${network}`. */
  readonly id: string;
  readonly node: string;
  readonly network: Network;
  readonly zone: string;
  readonly address: string;
  readonly stampPort: number;
  readonly tcpPort: number;
  readonly httpPort: number;
}

/** This agent's own identity, used to label what it measures. */
export interface Self {
  readonly node: string;
  readonly network: Network;
  readonly zone: string;
  readonly address: string;
}

export interface ProbeTarget {
  readonly peer: Peer;
  readonly size: SizeClass;
  /** Size of the whole IP packet to send, headers included (20-byte IPv4 header + UDP/ICMP header + payload). */
  readonly bytes: number;
}

/** STAMP extras: what the reflector's own sequence numbers and repeats tell about the path. */
export interface StampDetail {
  /** Packets lost on the way to the reflector since the previous answered probe. */
  readonly forwardLost: number;
  /** Packets the reflector answered that never came back, since the previous answered probe. */
  readonly reverseLost: number;
  /** Duplicate answers seen since the previous result for this peer. */
  readonly duplicates: number;
  /** Answers that arrived after a later-sent probe's answer, since the previous result. */
  readonly reordered: number;
  /** Time the packet spent inside the reflector (T3 - T2), already removed from the RTT. */
  readonly reflectorDwellSeconds: number;
}

interface ResultBase {
  readonly peerId: string;
  readonly kind: ProbeKind;
  readonly size: SizeClass;
  /** Wall-clock send time, milliseconds since the epoch. */
  readonly sentAtMs: number;
}

export interface ProbeSuccess extends ResultBase {
  readonly ok: true;
  readonly rttSeconds: number;
  readonly stamp?: StampDetail;
}

export interface ProbeFailure extends ResultBase {
  readonly ok: false;
  readonly reason: FailureReason;
  /** Human-readable detail for logs; never used as a label value. */
  readonly detail?: string;
  readonly stamp?: StampDetail;
}

export type ProbeResult = ProbeSuccess | ProbeFailure;

export function peerId(node: string, network: Network): string {
  return `${node}/${network}`;
}

export function pathOf(from: Network, to: Network): PathKind {
  return `${from}-to-${to}`;
}

export function scopeOf(
  self: Pick<Self, 'node' | 'zone'>,
  peer: Pick<Peer, 'node' | 'zone'>,
): Scope {
  if (self.node === peer.node) return 'same-node';
  return self.zone === peer.zone ? 'same-zone' : 'cross-zone';
}
