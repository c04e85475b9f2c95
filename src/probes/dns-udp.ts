// The UDP side of the dns probe: one shared socket for every query (or a socket of its own for
// a query that asks for one), the 16-bit ids of the queries in flight, and the sorting of each
// arriving datagram onto the query it answers. A datagram that is not a valid answer to a query
// in flight never ends one here: it is reported (see DnsUdpEvents) and the query keeps waiting,
// because a spoofed or garbled datagram must not fail a query the real answer can still satisfy.
// The probe owns the deadline, the counters, the TCP retry of a truncated answer and the result.

import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import type { Clock } from '../core/clock.ts';
import { checkResponse, type ExpectedAnswer, type ResponseCheck } from './dns-message.ts';
import { noLookup } from './dns-no-lookup.ts';

const RECV_BUFFER_BYTES = 1 << 20;

/** What the UDP side needs of a query in flight; `expected.id` is its id on the wire. */
export interface DnsUdpQuery {
  readonly query: { readonly server: string; readonly port: number; readonly freshSocket: boolean };
  readonly wire: Buffer;
  readonly expected: ExpectedAnswer;
}

export interface DnsUdpEvents<Q extends DnsUdpQuery> {
  /** A datagram arrived; reported before it is checked. */
  readonly received: () => void;
  /**
   * A datagram that is no valid answer: `counter` says whether it could be a DNS response at
   * all. `q` is the query it claimed to answer when it came from that query's server with its
   * id (the server spoke, but nonsense); undefined when it was for no query in flight.
   */
  readonly rejected: (
    counter: 'malformed' | 'mismatched',
    detail: string,
    q: Q | undefined,
  ) => void;
  /** A valid answer to q, TC set or not; q's id is free again. */
  readonly answer: (q: Q, check: Extract<ResponseCheck, { kind: 'answer' }>, endNs: bigint) => void;
  readonly sendFailed: (q: Q, err: unknown) => void;
}

/** The shared socket, bound. Rejects only if the bind address can't be bound. */
export async function bindUdpSocket(bindAddress: string | undefined): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: 'udp4', lookup: noLookup as never });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      const bind: dgram.BindOptions = { port: 0 };
      if (bindAddress !== undefined) bind.address = bindAddress;
      socket.bind(bind, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    socket.close();
    throw err;
  }
  return socket;
}

export class DnsUdp<Q extends DnsUdpQuery> {
  private readonly pending = new Map<number, Q>();
  /** Queries' own sockets, for those that asked for one. */
  private readonly own = new Map<Q, dgram.Socket>();
  private readonly clock: Clock;
  private readonly bindAddress: string | undefined;
  /** Largest answer accepted: 512, or the EDNS size advertised. */
  private readonly maxBytes: number;
  /** The local port of the shared socket. */
  readonly port: number;

  /** Takes over the shared socket from bindUdpSocket(). */
  constructor(
    private readonly socket: dgram.Socket,
    opts: { clock: Clock; bindAddress: string | undefined; maxBytes: number },
    private readonly events: DnsUdpEvents<Q>,
  ) {
    this.clock = opts.clock;
    this.bindAddress = opts.bindAddress;
    this.maxBytes = opts.maxBytes;
    this.port = socket.address().port;
    socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    socket.on('error', () => undefined);
    try {
      // Bursts of answers must not overflow the default buffer; the kernel caps this at
      // net.core.rmem_max, so it is best effort.
      socket.setRecvBufferSize(RECV_BUFFER_BYTES);
    } catch {
      // Keep the default.
    }
  }

  /** A random id no UDP query in flight uses. */
  freeId(): number | undefined {
    if (this.pending.size >= 32_768) return undefined;
    for (;;) {
      const id = randomInt(0, 65_536);
      if (!this.pending.has(id)) return id;
    }
  }

  /** Puts q in flight under its id and sends it; a failed send is reported as sendFailed. */
  send(q: Q): void {
    this.pending.set(q.expected.id, q);
    if (q.query.freshSocket) {
      this.sendFromOwnSocket(q);
      return;
    }
    try {
      this.socket.send(q.wire, q.query.port, q.query.server, (err) => {
        if (err) this.events.sendFailed(q, err);
      });
    } catch (err) {
      this.events.sendFailed(q, err);
    }
  }

  /** q is over, however it ended: its id is free and its own socket, if any, is closed. */
  end(q: Q): void {
    // The id may already belong to a newer query when q's answer came and q went on over TCP.
    if (this.pending.get(q.expected.id) === q) this.pending.delete(q.expected.id);
    const s = this.own.get(q);
    if (s !== undefined) {
      this.own.delete(q);
      try {
        s.close();
      } catch {
        // already closed
      }
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  private sendFromOwnSocket(q: Q): void {
    const s = dgram.createSocket({ type: 'udp4', lookup: noLookup as never });
    this.own.set(q, s);
    s.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    s.on('error', () => undefined);
    const bind: dgram.BindOptions = { port: 0 };
    if (this.bindAddress !== undefined) bind.address = this.bindAddress;
    try {
      s.bind(bind, () => {
        if (this.own.get(q) !== s) return; // q ended while the socket was being bound
        s.send(q.wire, q.query.port, q.query.server, (err) => {
          if (err) this.events.sendFailed(q, err);
        });
      });
    } catch (err) {
      this.events.sendFailed(q, err);
    }
  }

  private onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const endNs = this.clock.monoNs();
    this.events.received();
    const id = msg.length >= 2 ? msg.readUInt16BE(0) : undefined;
    const q = id === undefined ? undefined : this.pending.get(id);
    const fromServer =
      q !== undefined && rinfo.address === q.query.server && rinfo.port === q.query.port;
    const check = checkResponse(
      q?.expected ?? { id: -1, name: '.', type: 'A' },
      msg,
      this.maxBytes,
    );
    if (check.kind === 'malformed') {
      this.events.rejected('malformed', check.detail, fromServer ? q : undefined);
      return;
    }
    if (q === undefined || !fromServer) {
      const detail = check.kind === 'mismatched' ? check.detail : 'not from a queried server';
      this.events.rejected('mismatched', detail, undefined);
      return;
    }
    if (check.kind === 'mismatched') {
      this.events.rejected('mismatched', check.detail, q);
      return;
    }
    this.pending.delete(q.expected.id);
    this.events.answer(q, check, endNs);
  }
}
