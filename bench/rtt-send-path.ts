// Where podmesh's icmp RTT and iputils ping's part ways (bench/rtt-lab.ts): a minimal ping on
// the timestamping addon's unprivileged ICMP socket, in its own process like ping, that keeps
// both send times of every echo request:
//
//   T1user    CLOCK_REALTIME read just before sendmsg(), as ping takes its send time
//             (gettimeofday() before sendmsg())
//   T1kernel  the kernel's software transmit stamp of that packet, as podmesh's icmp probe uses
//   T4        the kernel's receive stamp of the reply, as both ping (SO_TIMESTAMP) and podmesh use
//
// so the same packets give a "like ping" RTT (T4 - T1user), a "like podmesh" RTT (T4 - T1kernel)
// and the send path between them (T1kernel - T1user: syscall, socket and IP layers, down to the
// driver). Sends 64-byte ICMP messages (ping's default size, podmesh's small icmp probe) with T1user
// written into the data as ping writes its own (a struct timeval), for rtt-far-end.ts to read.
//
//   ip netns exec <ns> node --import tsx bench/rtt-send-path.ts '<json SendPathSpec>'
//
// Prints {"type":"ready","ok":true} (or "ok":false with "why" when the addon or a ping socket
// can't be had); reads "dump" (answers {"type":"samples",...}) on stdin; exits when stdin closes.

import { SocketKind, Stamps } from '../src/native/timestamping.ts';
import { exitWhenParentGoes, openAddonSocket, send } from './lib.ts';

export interface SendPathSpec {
  /** This namespace's own address (the socket binds to it). */
  readonly address: string;
  readonly target: string;
  readonly intervalMs: number;
}

export type SendPathReady =
  { readonly ok: true; readonly id: number } | { readonly ok: false; readonly why: string };

export interface SendPathSample {
  readonly seq: number;
  /** Wall clock of the send, Unix ms (to place the sample in its window). */
  readonly sentAtMs: number;
  /** T4 - T1user, seconds: what ping would report. */
  readonly userRtt: number;
  /** T4 - T1kernel, seconds: what podmesh's icmp probe reports. */
  readonly kernelRtt: number;
}

const ICMP_ECHO_REQUEST = 8;
const ICMP_ECHO_REPLY = 0;
/** ping's default: an 8-byte header and 56 bytes of data. */
const MESSAGE_BYTES = 64;

const spec = JSON.parse(process.argv[2] ?? '{}') as SendPathSpec;

interface Pending {
  readonly sentAtMs: number;
  readonly userNs: bigint;
  readonly ticket: number;
}

function main(): void {
  const pending = new Map<number, Pending>();
  const samples: SendPathSample[] = [];
  let missingTx = 0;
  const opened = openAddonSocket(
    SocketKind.icmpDgram,
    spec.address,
    Stamps.both,
    (_addon, socket) => (type, buffer, _address, _port, rxNs) => {
      if (type !== 0 || !(buffer instanceof Uint8Array) || buffer.length < 8) return;
      if (buffer[0] !== ICMP_ECHO_REPLY || typeof rxNs !== 'bigint') return;
      const seq = (buffer[6]! << 8) | buffer[7]!;
      const p = pending.get(seq);
      if (p === undefined) return;
      pending.delete(seq);
      const txNs = socket().txTime(p.ticket);
      if (txNs === undefined) {
        missingTx++;
        return;
      }
      samples.push({
        seq,
        sentAtMs: p.sentAtMs,
        userRtt: Number(rxNs - p.userNs) / 1e9,
        kernelRtt: Number(rxNs - txNs) / 1e9,
      });
    },
  );
  if (opened === undefined) return;
  const { addon, socket } = opened;
  if (!socket.txKernel) {
    socket.close();
    send({ type: 'ready', ok: false, why: 'the kernel does not stamp transmitted ICMP packets' });
    exitWhenParentGoes();
    return;
  }
  let seq = 0;
  const timer = setInterval(() => {
    seq = (seq + 1) & 0xffff;
    // A reply that never came leaves its entry behind; the sequence space bounds the map.
    const message = Buffer.alloc(MESSAGE_BYTES);
    message[0] = ICMP_ECHO_REQUEST;
    message.writeUInt16BE(seq, 6);
    for (let i = 24; i < message.length; i++) message[i] = i & 0xff;
    // The kernel fills in the identifier and the checksum of a ping socket's messages.
    const sentAtMs = Date.now();
    const userNs = addon.realtimeNs();
    // T1 into the data as ping does (a struct timeval), so rtt-far-end.ts can read it.
    message.writeBigInt64LE(userNs / 1_000_000_000n, 8);
    message.writeBigInt64LE((userNs % 1_000_000_000n) / 1000n, 16);
    try {
      const ticket = socket.send(message, spec.target, 0);
      pending.set(seq, { sentAtMs, userNs, ticket });
    } catch {
      // a failed send is a lost sample, as for ping
    }
  }, spec.intervalMs);
  exitWhenParentGoes(
    (line) => {
      if (line === 'dump') send({ type: 'samples', samples, missingTx });
    },
    () => {
      clearInterval(timer);
      socket.close();
      return Promise.resolve();
    },
  );
  // A ping socket's port is the echo identifier the kernel gave it.
  send({ type: 'ready', ok: true, id: socket.port });
}

main();
