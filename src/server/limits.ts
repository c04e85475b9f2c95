// Connection and time limits for podmesh's HTTP servers, so that a flood of idle sockets or of
// slow scrapers can neither exhaust the process's file descriptors nor starve the kubelet's
// probes: a server whose /healthz stops answering is restarted, and one whose /readyz stops
// answering drops out of its Service, exactly when someone is leaning on it.
//
// The design, kept to one counter and one ordered map:
//   - at most `maxConnections` connections are open; a new one beyond that evicts the least
//     recently used connection that has no request in flight (an idle keep-alive socket, a socket
//     that never sent a request, a slow-drip header), or is refused when every one is busy;
//   - requests other than the probe paths may hold at most maxConnections - reserve connections
//     busy (the reserve is an eighth of the cap, at least 1); beyond that they are answered 503
//     at once, so there is always an idle connection to evict for a probe's new connection;
//   - Node's own timers close connections whose headers (headersTimeoutMs) or whole request
//     (requestTimeoutMs) take too long, and keep-alive sockets idle for keepAliveTimeoutMs.
// A probe connection sends its request as soon as it connects and is answered at once, so it is
// busy for a moment and never the least recently used idle one.

import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import https from 'node:https';

export interface HttpLimits {
  /** Most open connections; beyond it the least recently used idle one is closed. */
  readonly maxConnections: number;
  /** A request's headers must be complete within this time (idle and slow-drip sockets). */
  readonly headersTimeoutMs: number;
  /** A whole request must be received within this time; also the socket inactivity limit. */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long without a new request. */
  readonly keepAliveTimeoutMs: number;
}

/** The settings' defaults (src/config/settings.ts, http.*), for callers that pass none. */
export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxConnections: 256,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
};

/** The paths the kubelet probes: always served, never shed. */
export const PROBE_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

/** Connections kept for the probes: non-probe requests may hold the rest busy. */
export function probeReserve(maxConnections: number): number {
  return Math.max(1, Math.floor(maxConnections / 8));
}

/** Node's server options for these limits (pass them to createServer). */
export function serverOptions(l: HttpLimits): ServerOptions {
  return {
    headersTimeout: l.headersTimeoutMs,
    requestTimeout: l.requestTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    // Node checks the header and request deadlines on this period (30 s by default, which
    // would let a slow-drip socket live for up to 30 s past its deadline).
    connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(l.headersTimeoutMs / 4))),
  };
}

/** What the guard did since the server started; for tests and troubleshooting. */
export interface ConnectionStats {
  readonly open: number;
  /** Idle connections closed to make room for a new one. */
  readonly evicted: number;
  /** New connections closed at once because every open one was busy. */
  readonly refused: number;
  /** Non-probe requests answered 503 because the non-probe share was busy. */
  readonly shed: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const stats = new WeakMap<Server, () => ConnectionStats>();

/** The guard's counters of a server set up by limitConnections, or undefined. */
export function connectionStats(server: Server): ConnectionStats | undefined {
  return stats.get(server)?.();
}

/**
 * Installs the connection cap and the probe reserve on a server created without a request
 * listener, with `handler` (the express app) behind it.
 */
export function limitConnections(
  server: Server,
  handler: Handler,
  limits: HttpLimits,
  probePaths: ReadonlySet<string> = PROBE_PATHS,
): void {
  const max = limits.maxConnections;
  const nonProbeMax = Math.max(1, max - probeReserve(max));
  // Insertion order is recency: a connection moves to the end when its request ends.
  const conns = new Map<Socket, { inFlight: number }>();
  let nonProbeInFlight = 0;
  let evicted = 0;
  let refused = 0;
  let shed = 0;
  stats.set(server, () => ({ open: conns.size, evicted, refused, shed }));

  // Socket inactivity in any phase (a client that stops reading a response, too).
  server.setTimeout(limits.requestTimeoutMs);
  // Behind TLS a request's socket is the TLS socket, not the TCP one 'connection' names: count
  // connections once their handshake is done (an unfinished handshake is bounded by the
  // server's handshakeTimeout, web-security.ts).
  const opened = server instanceof https.Server ? 'secureConnection' : 'connection';
  server.on(opened, (socket: Socket) => {
    if (conns.size >= max) {
      let victim: Socket | undefined;
      for (const [s, c] of conns)
        if (c.inFlight === 0) {
          victim = s;
          break;
        }
      if (victim === undefined) {
        refused++;
        socket.destroy();
        return;
      }
      evicted++;
      conns.delete(victim);
      victim.destroy();
    }
    conns.set(socket, { inFlight: 0 });
    socket.once('close', () => conns.delete(socket));
  });

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const probe = probePaths.has(pathOf(req.url));
    if (!probe && nonProbeInFlight >= nonProbeMax) {
      shed++;
      res.writeHead(503, {
        'Content-Type': 'text/plain; charset=utf-8',
        'Retry-After': '1',
        Connection: 'close',
      });
      res.end('busy: too many requests in flight; try again shortly\n');
      return;
    }
    const socket = req.socket;
    const conn = conns.get(socket);
    if (conn !== undefined) conn.inFlight++;
    if (!probe) nonProbeInFlight++;
    res.once('close', () => {
      if (!probe) nonProbeInFlight--;
      if (conn === undefined) return;
      conn.inFlight--;
      // Most recently used now: the last an incoming connection would evict.
      if (conns.delete(socket)) conns.set(socket, conn);
    });
    handler(req, res);
  });
}

function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q === -1 ? u : u.slice(0, q);
}
