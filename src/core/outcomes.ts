// Closed outcome vocabularies of the DNS and port checks: the label values of their metrics, the
// keys of their windows' outcome counts. Declared in core, like FAILURE_REASONS, because the
// probes that produce them, the window store that counts them and the metrics that label by
// them all need the same list, and none of those layers may import another's code.

export const DNS_OUTCOMES = [
  'noerror',
  'nodata',
  'nxdomain',
  'servfail',
  'refused',
  'other-rcode',
  'timeout',
  'unreachable',
  'malformed',
  'error',
] as const;
/**
 * noerror: NOERROR with at least one record of the asked type. nodata: NOERROR without one.
 * nxdomain, servfail, refused: those rcodes. other-rcode: any other rcode (FORMERR, NOTIMP...).
 * timeout: no acceptable answer in time. unreachable: the kernel said the server can't be
 * reached (TCP refused, no route, send blocked). malformed: the server answered with something
 * that is not a valid answer to the query. error: anything else (bad query, probe closed...).
 */
export type DnsOutcome = (typeof DNS_OUTCOMES)[number];
export type DnsTransport = 'udp' | 'tcp';

/** The server sent a well-formed response (any rcode), so the lookup's time means something. */
export function serverResponded(outcome: DnsOutcome): boolean {
  return (
    outcome !== 'timeout' &&
    outcome !== 'unreachable' &&
    outcome !== 'error' &&
    outcome !== 'malformed'
  );
}

/** Every outcome a connect can have (the `result` label values of podmesh_port_checks_total). */
export const PORT_OUTCOMES = ['open', 'refused', 'timeout', 'unreachable', 'error'] as const;
export type TcpOutcome = (typeof PORT_OUTCOMES)[number];

/**
 * Every outcome of one API server check (the `result` label values of
 * podmesh_apiserver_checks_total). ok: TCP connect and TLS handshake done (and /readyz answered,
 * any status, when asked: 401/403 mean reachable but not allowed, which is reachable). refused,
 * timeout, unreachable: the connect's, or the handshake's or /readyz's timeout. tls-error: the
 * connect worked but the TLS handshake failed (an alert, a reset, something that doesn't speak
 * TLS). error: anything else.
 */
export const APISERVER_OUTCOMES = [
  'ok',
  'refused',
  'timeout',
  'unreachable',
  'tls-error',
  'error',
] as const;
export type ApiServerOutcome = (typeof APISERVER_OUTCOMES)[number];
