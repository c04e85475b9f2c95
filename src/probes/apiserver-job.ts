// The apiserver family's job and result: one way to the Kubernetes API server (the `kubernetes`
// Service VIP, or one endpoint asked directly) and what one check of it saw. Plain data declared
// here, below the engine that runs them (src/mesh), the window store and the metrics that keep
// them (src/store, src/metrics).

import type { ApiServerOutcome } from '../core/outcomes.ts';

/** service: the `kubernetes` Service VIP; endpoint: one API server address asked directly. */
export const APISERVER_TARGET_KINDS = ['service', 'endpoint'] as const;
export type ApiServerTargetKind = (typeof APISERVER_TARGET_KINDS)[number];

export interface ApiServerJob {
  /** `service`, or the endpoint's `address:port`. */
  readonly key: string;
  readonly kind: ApiServerTargetKind;
  readonly address: string;
  readonly port: number;
  /** Also GET /readyz (unauthenticated) once the handshake is done. */
  readonly readyz: boolean;
}

export interface ApiServerJobResult {
  readonly key: string;
  readonly outcome: ApiServerOutcome;
  /** TCP connect time, seconds; null when the connect did not complete. */
  readonly connectSeconds: number | null;
  /** TLS handshake time after the connect, seconds; null when it did not complete. */
  readonly tlsSeconds: number | null;
  /** The /readyz answer's HTTP status; null when not asked or not answered. */
  readonly readyz: number | null;
  readonly sentAtMs: number;
  readonly detail?: string;
}

/** The job's key: `service` for the VIP, `address:port` for an endpoint. */
export function apiServerKey(kind: ApiServerTargetKind, address: string, port: number): string {
  return kind === 'service' ? 'service' : `${address}:${port}`;
}
