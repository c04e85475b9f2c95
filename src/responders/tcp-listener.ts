// The TCP responder every agent runs so peers can time a handshake against it.
//
// It accepts and never writes. Probes close with a reset, so the listener never closes first
// on the normal path and keeps no TIME_WAIT state; connections left idle are reset too, and
// the number of open connections is capped so a flood cannot exhaust file descriptors.

import net from 'node:net';

const DEFAULT_IDLE_MS = 5_000;
const MAX_CONNECTIONS = 1024;

export interface TcpListenerOptions {
  readonly address: string;
  /** 0 picks a free port; read it back from `port`. */
  readonly port: number;
  /** Connections quiet for this long are reset. */
  readonly idleMs?: number;
  readonly log?: (msg: string) => void;
}

export interface TcpListenerStats {
  readonly accepted: number;
}

export class TcpListener {
  readonly address: string;
  private readonly server: net.Server;
  private readonly idleMs: number;
  private readonly sockets = new Set<net.Socket>();
  private accepted = 0;
  private closing: Promise<void> | undefined;
  private boundPort = 0;

  private constructor(options: TcpListenerOptions) {
    this.address = options.address;
    this.idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
    this.server = net.createServer((socket) => this.accept(socket));
    this.server.maxConnections = MAX_CONNECTIONS;
  }

  /** Listens on address:port. Rejects if the address cannot be bound (e.g. EADDRINUSE). */
  static async start(options: TcpListenerOptions): Promise<TcpListener> {
    const log = options.log ?? (() => {});
    const listener = new TcpListener(options);
    const server = listener.server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: options.address, port: options.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Accept failures (EMFILE and the like) are emitted here; they must not crash the agent.
    server.on('error', (err) => log(`tcp listener: ${err.message}`));
    const bound = server.address();
    listener.boundPort = typeof bound === 'object' && bound !== null ? bound.port : options.port;
    return listener;
  }

  /** The bound port (the kernel's choice when started with port 0). */
  get port(): number {
    return this.boundPort;
  }

  stats(): TcpListenerStats {
    return { accepted: this.accepted };
  }

  private accept(socket: net.Socket): void {
    this.accepted++;
    this.sockets.add(socket);
    // ECONNRESET is how every probe ends; nothing to report.
    socket.on('error', () => {});
    socket.on('close', () => this.sockets.delete(socket));
    socket.setTimeout(this.idleMs, () => resetQuietly(socket));
    // Drain anything a client sends so the kernel buffer never fills and the reset is seen.
    socket.resume();
    if (this.closing !== undefined) resetQuietly(socket);
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) resetQuietly(s);
    });
    return this.closing;
  }
}

function resetQuietly(socket: net.Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
