// One DNS query over TCP, for the dns probe: a fresh connection, one 2-byte length-prefixed
// message each way, closed with a reset (resetAndDestroy) once connected so no TIME_WAIT piles
// up at high query rates. The leg reads and checks the answer and tells the probe what happened
// through DnsTcpEvents; the probe owns the deadline, the counters and the result. Over TCP an
// answer that fails the checks ends the query (there is no one else who could answer on that
// connection).

import net from 'node:net';
import type { Clock } from '../core/clock.ts';
import { checkResponse, type ExpectedAnswer, type ResponseCheck } from './dns-message.ts';
import { noLookup } from './dns-no-lookup.ts';

export interface DnsTcpQuery {
  readonly server: string;
  readonly port: number;
  /** Local address to connect from; undefined or 0.0.0.0 for any. */
  readonly bindAddress: string | undefined;
  /** The query message, without the length prefix. */
  readonly wire: Buffer;
  readonly expected: ExpectedAnswer;
  /** Largest answer accepted, bytes. */
  readonly maxBytes: number;
}

/** What the leg reports; nothing is reported after close(). */
export interface DnsTcpEvents {
  /** The query went out on the established connection. */
  readonly sent: () => void;
  /** A whole length-prefixed message arrived; reported before it is checked. */
  readonly received: () => void;
  /** A valid answer, received at endNs (clock.monoNs()). */
  readonly answer: (check: Extract<ResponseCheck, { kind: 'answer' }>, endNs: bigint) => void;
  /**
   * No valid answer on this connection; `counter` names the stat the message counts toward
   * when one came whole (or its length prefix was already too big).
   */
  readonly malformed: (detail: string, counter?: 'malformed' | 'mismatched') => void;
  /** The connection failed before any byte of an answer. */
  readonly failed: (err: unknown, stage: 'connect' | 'tcp') => void;
  /** The server closed the connection without sending anything. */
  readonly closedEmpty: () => void;
}

export class DnsTcpLeg {
  private connected = false;
  private ended = false;

  private constructor(private readonly socket: net.Socket) {}

  /** Connects and sends once connected. Throws only if the connection can't be started. */
  static connect(q: DnsTcpQuery, clock: Clock, events: DnsTcpEvents): DnsTcpLeg {
    const opts: net.TcpNetConnectOpts = {
      host: q.server,
      port: q.port,
      lookup: noLookup as never,
      noDelay: true,
    };
    if (q.bindAddress !== undefined && q.bindAddress !== '0.0.0.0')
      opts.localAddress = q.bindAddress;
    const leg = new DnsTcpLeg(net.connect(opts));
    leg.listen(q, clock, events);
    return leg;
  }

  private listen(q: DnsTcpQuery, clock: Clock, events: DnsTcpEvents): void {
    const socket = this.socket;
    const chunks: Buffer[] = [];
    let have = 0;
    let expectLen: number | undefined;
    // Stays attached after the query ends: a late reset must never become an uncaught error.
    socket.on('error', (err) => {
      if (this.ended) return;
      if (have > 0) events.malformed(`truncated: connection failed after ${have} bytes`);
      else events.failed(err, this.connected ? 'tcp' : 'connect');
    });
    socket.on('connect', () => {
      if (this.ended) return;
      this.connected = true;
      const frame = Buffer.allocUnsafe(2 + q.wire.length);
      frame.writeUInt16BE(q.wire.length, 0);
      q.wire.copy(frame, 2);
      events.sent();
      socket.write(frame);
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.ended) return;
      chunks.push(chunk);
      have += chunk.length;
      if (expectLen === undefined && have >= 2) {
        const head = Buffer.concat(chunks, have);
        expectLen = head.readUInt16BE(0);
        if (expectLen > q.maxBytes) {
          events.malformed(`oversized: ${expectLen} bytes > ${q.maxBytes}`, 'malformed');
          return;
        }
      }
      if (expectLen !== undefined && have >= 2 + expectLen) {
        const endNs = clock.monoNs();
        const all = Buffer.concat(chunks, have);
        const msg = all.subarray(2, 2 + expectLen);
        events.received();
        const check = checkResponse(q.expected, msg, q.maxBytes);
        if (check.kind === 'answer') {
          events.answer(check, endNs);
          return;
        }
        events.malformed(check.detail, check.kind);
      }
    });
    socket.on('end', () => {
      if (this.ended) return;
      if (have > 0)
        events.malformed(
          `truncated: connection closed after ${have} of ${expectLen === undefined ? '?' : expectLen + 2} bytes`,
        );
      else events.closedEmpty();
    });
  }

  /** Ends the connection; the query is over, whatever its outcome. */
  close(): void {
    this.ended = true;
    const socket = this.socket;
    try {
      // resetAndDestroy() on a socket still connecting waits for a handshake that may never
      // come; only an established connection is reset.
      if (this.connected && !socket.destroyed) socket.resetAndDestroy();
      else socket.destroy();
    } catch {
      socket.destroy();
    }
  }
}
