// The far end's view of the echo requests in the lab RTT measurement (bench/rtt-lab.ts), run in
// the reflector's network namespace: a raw ICMP socket (timestamping addon, needs CAP_NET_RAW;
// the kernel still answers every echo itself) that stamps each arriving echo request in the
// kernel (T2) and reads the send time its sender wrote into it. iputils ping writes the
// gettimeofday() it took just before sendmsg() into the first 16 bytes of its data (a struct
// timeval), and that same time is ping's T1; so T2 - T1 is ping's own send path plus the one-way
// hop, measured on ping's own packets, in the kernel's clock on both ends (CLOCK_REALTIME is the
// same in every network namespace). rtt-send-path.ts writes its T1 the same way, so its packets
// give the hop alone (T2 minus its kernel transmit time). podmesh's packets carry no time and are
// left out.
//
//   ip netns exec <ns> node --import tsx bench/rtt-far-end.ts '{"address":"198.18.250.2"}'
//
// Prints {"type":"ready","ok":...}; reads "dump" (answers {"type":"samples",...}) on stdin;
// exits when stdin closes.

import { SocketKind, Stamps } from '../src/native/timestamping.ts';
import { exitWhenParentGoes, openAddonSocket, send } from './lib.ts';

export interface FarEndSample {
  /** The ICMP echo identifier and sequence number of the request. */
  readonly id: number;
  readonly seq: number;
  /** The sender's T1 from the packet, Unix ms. */
  readonly sentAtMs: number;
  /** T2 - T1, seconds: the sender's send path plus the hop to here. */
  readonly oneWay: number;
}

const ICMP_ECHO_REQUEST = 8;
/** A T1 further than this from our own clock is not a time (podmesh's byte pattern, say). */
const PLAUSIBLE_NS = 10_000_000_000n;

const spec = JSON.parse(process.argv[2] ?? '{}') as { address: string };

/** T1 from a struct timeval (two little-endian 64-bit fields) at `at`, in ns; or undefined. */
function timevalNs(b: Uint8Array, at: number, nowNs: bigint): bigint | undefined {
  if (b.length < at + 16) return undefined;
  const view = new DataView(b.buffer, b.byteOffset + at, 16);
  const sec = view.getBigInt64(0, true);
  const usec = view.getBigInt64(8, true);
  if (usec < 0n || usec >= 1_000_000n) return undefined;
  const ns = sec * 1_000_000_000n + usec * 1000n;
  const d = ns - nowNs;
  return d > -PLAUSIBLE_NS && d < PLAUSIBLE_NS ? ns : undefined;
}

function main(): void {
  const samples: FarEndSample[] = [];
  const opened = openAddonSocket(
    SocketKind.icmpRaw,
    spec.address,
    Stamps.receive,
    (addon) => (type, buffer, _address, _port, rxNs) => {
      if (type !== 0 || !(buffer instanceof Uint8Array) || typeof rxNs !== 'bigint') return;
      // A raw socket hands over the whole IP packet.
      if (buffer.length < 20) return;
      const icmp = (buffer[0]! & 0x0f) * 4;
      if (buffer[icmp] !== ICMP_ECHO_REQUEST || buffer.length < icmp + 8) return;
      const t1 = timevalNs(buffer, icmp + 8, addon.realtimeNs());
      if (t1 === undefined) return;
      samples.push({
        id: (buffer[icmp + 4]! << 8) | buffer[icmp + 5]!,
        seq: (buffer[icmp + 6]! << 8) | buffer[icmp + 7]!,
        sentAtMs: Number(t1 / 1_000_000n),
        oneWay: Number(rxNs - t1) / 1e9,
      });
    },
  );
  if (opened === undefined) return;
  const { socket } = opened;
  exitWhenParentGoes(
    (line) => {
      if (line === 'dump') send({ type: 'samples', samples });
    },
    () => {
      socket.close();
      return Promise.resolve();
    },
  );
  send({ type: 'ready', ok: true });
}

main();
