// The DNS family's job and result: one (server, query, transport) check and what one lookup of it
// saw. Plain data (they cross to and from the engine's worker thread) declared here, below both
// the engine that runs them (src/mesh) and the window store and metrics that keep them
// (src/store, src/metrics), so neither has to import the other.

import type { DnsOutcome, DnsTransport } from '../core/outcomes.ts';

export const DNS_SERVER_KINDS = ['service', 'replica'] as const;
/** service: the resolver's nameserver from resolv.conf (the DNS Service VIP); replica: one DNS Pod. */
export type DnsServerKind = (typeof DNS_SERVER_KINDS)[number];

export const DNS_QUERY_KINDS = ['service', 'short', 'pod', 'external'] as const;
export type DnsQueryKind = (typeof DNS_QUERY_KINDS)[number];

export interface DnsJob {
  /** `${serverKind}|${server}|${query}|${transport}`. */
  readonly key: string;
  readonly serverKind: DnsServerKind;
  readonly server: string;
  readonly address: string;
  readonly port: number;
  readonly query: DnsQueryKind;
  readonly candidates: readonly string[];
  readonly transport: DnsTransport;
}

/** The outcome of one lookup (one job run); plain data for the trip back from the worker. */
export interface DnsJobResult {
  readonly key: string;
  readonly outcome: DnsOutcome;
  /** The server answered correctly: noerror, nodata or nxdomain. */
  readonly answered: boolean;
  /** Whole lookup time (every candidate tried), seconds. */
  readonly seconds: number;
  readonly sentAtMs: number;
  /** Queries sent (more than one when the search list was walked). */
  readonly tried: number;
  /** The candidate that got a noerror answer with records, if any. */
  readonly answeredBy: string | undefined;
  readonly truncatedRetried: boolean;
  readonly detail?: string;
}

export function dnsJobKey(
  serverKind: DnsServerKind,
  server: string,
  query: DnsQueryKind,
  transport: DnsTransport,
): string {
  return `${serverKind}|${server}|${query}|${transport}`;
}
