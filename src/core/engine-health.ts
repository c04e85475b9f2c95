// What a probe engine reports about itself (pushed every second from a worker thread, read on
// demand from a main-thread engine): cumulative counts the metrics turn into counter increments,
// and its event-loop delay. Declared in core because the engine (src/mesh) produces it and the
// metrics (src/metrics) consume it, and neither may import the other.

/** The reflector's packets by outcome (each received packet counted once), and its sessions. */
export interface ReflectorCounts {
  readonly reflected: number;
  readonly malformed: number;
  readonly authFailed: number;
  /** A reflected packet: from a reflector port, or carrying a reflector's fields. */
  readonly loop: number;
  /** Over the reply budget (of its source address, or in total). */
  readonly rateLimited: number;
  /** Authenticated mode: over the HMAC-check budget, so not checked. */
  readonly verifyLimited: number;
  /** Authenticated mode: timestamp outside the window. */
  readonly stale: number;
  /** Authenticated mode: a test packet answered before. */
  readonly replayed: number;
  readonly sessions: number;
}

/** Sockets that are reopened when their poll fails, as the metric's `kind` label. */
export const SOCKET_KINDS = ['stamp_sender', 'stamp_reflector', 'icmp'] as const;
export type SocketKindName = (typeof SOCKET_KINDS)[number];

export interface EngineHealth {
  readonly reflector?: ReflectorCounts;
  readonly tcpAccepted?: number;
  readonly skipped?: number;
  /** Times a worker engine thread died and was restarted. */
  readonly restarts?: number;
  /** DNS answers the DNS probe threw away: not DNS (malformed) or for no query in flight. */
  readonly dns?: { readonly malformed: number; readonly mismatched: number };
  /** Sockets of the engine's thread that failed and were reopened, cumulative, by kind. */
  readonly socketReopens?: Readonly<Record<SocketKindName, number>>;
  /** Event-loop delay quantiles of the engine thread, seconds. */
  readonly loopDelay?: { readonly p50: number; readonly p90: number; readonly p99: number };
}
