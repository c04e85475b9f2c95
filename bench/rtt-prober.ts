// The probing side of the lab RTT measurement (bench/rtt-lab.ts), run inside a network
// namespace: podmesh's probe engines as the agent runs them, probing one reflector with udp
// (STAMP) and icmp, while on command the main thread renders a /metrics of at least 5 MB
// (prom-client, the catalogue's series) once a second.
//
//   ip netns exec <ns> node --import tsx bench/rtt-prober.ts '<json ProberSpec>'
//
// phase "kernel": udp and icmp on one worker-thread engine, with the timestamping addon.
// phase "userspace": run with PODMESH_TIMESTAMPS=userspace, as podmesh ran before the addon: udp
// on a worker-thread engine, icmp (raw-socket) on a main-thread engine.
//
// Prints {"type":"ready",...} with the timestamp source each kind uses; reads "busy on" /
// "busy off" and "dump" (answers {"type":"samples",...}) on stdin; exits when stdin closes.

import { SystemClock } from '../src/core/clock.ts';
import type { ProbeResult } from '../src/core/types.ts';
import { peerFromStatic } from '../src/discovery/peer-source.ts';
import { LocalEngine, RemoteEngine, type EngineHandle } from '../src/mesh/engine-client.ts';
import type { LogSink } from '../src/mesh/family.ts';
import { planJobs } from '../src/mesh/families/peer.ts';
import { IcmpProbe } from '../src/probes/icmp.ts';
import { baseLength } from '../src/probes/stamp-codec.ts';
import { UdpStampProbe } from '../src/probes/udp.ts';
import { registryOfAtLeast } from './big-registry.ts';
import { exitWhenParentGoes, send } from './lib.ts';

export interface ProberSpec {
  /** This namespace's own address (the engines bind to it). */
  readonly address: string;
  readonly target: { readonly address: string; readonly stampPort: number };
  readonly intervalMs: number;
  readonly phase: 'kernel' | 'userspace';
  /** Which kinds get jobs (both unless said): icmp alone shows what the udp probes change. */
  readonly probeKinds?: readonly ('udp' | 'icmp')[];
}

export interface Sample {
  readonly kind: string;
  readonly sentAtMs: number;
  /** Seconds; null when the probe failed. */
  readonly rtt: number | null;
}

const RENDER_BYTES = 5_000_000;
const spec = JSON.parse(process.argv[2] ?? '{}') as ProberSpec;
const log: LogSink = (level, msg) => {
  if (level !== 'info') process.stderr.write(`[engine ${level}] ${msg}\n`);
};

async function main(): Promise<void> {
  const peer = peerFromStatic({
    node: 'reflector',
    network: 'pod',
    zone: 'zone-b',
    address: spec.target.address,
    stampPort: spec.target.stampPort,
    tcpPort: 1,
    httpPort: 1,
  });
  const jobs = planJobs([peer], {
    kinds: new Set(spec.probeKinds ?? ['udp', 'icmp']),
    mtu: false,
    mtuBytes: 1500,
    udpSmallBytes: baseLength(undefined) + 28,
  });
  // What each kind's probes use, from probes opened the same way in this same process.
  const clock = new SystemClock();
  const udpProbe = await UdpStampProbe.open({ clock, bindAddress: spec.address });
  const icmpProbe = await IcmpProbe.open({ clock });
  const sources = {
    udp: udpProbe.timestamps,
    icmp:
      icmpProbe instanceof IcmpProbe
        ? { ...icmpProbe.timestamps, mode: icmpProbe.mode }
        : { source: 'none', detail: icmpProbe.detail },
  };
  await udpProbe.close();
  if (icmpProbe instanceof IcmpProbe) await icmpProbe.close();

  const samples: Sample[] = [];
  const onResult = (r: ProbeResult): void => {
    samples.push({ kind: r.kind, sentAtMs: r.sentAtMs, rtt: r.ok ? r.rttSeconds : null });
  };
  const base = {
    bindAddress: spec.address,
    intervalMs: spec.intervalMs,
    timeoutMs: 1000,
    jitter: 0.1,
    concurrency: 16,
  };
  const engines: EngineHandle[] = [];
  if (spec.phase === 'kernel') {
    engines.push(
      await RemoteEngine.start({ ...base, kinds: ['udp', 'icmp'] }, { peer: onResult }, log),
    );
  } else {
    engines.push(await RemoteEngine.start({ ...base, kinds: ['udp'] }, { peer: onResult }, log));
    engines.push(
      await LocalEngine.start({ ...base, kinds: ['icmp'] }, clock, { peer: onResult }, log),
    );
  }
  const where = {
    udp: 'worker thread',
    icmp: spec.phase === 'kernel' ? 'worker thread' : 'main thread',
  };
  const kinds = engines.flatMap((e) => e.status.kinds);
  const { registry, bytes } = await registryOfAtLeast(RENDER_BYTES);
  const renderMs: number[] = [];
  let busy: NodeJS.Timeout | undefined;
  exitWhenParentGoes(
    (line) => {
      if (line === 'busy on' && busy === undefined) {
        busy = setInterval(() => {
          const t0 = performance.now();
          void registry.metrics().then(() => renderMs.push(performance.now() - t0));
        }, 1000);
      } else if (line === 'busy off') {
        clearInterval(busy);
        busy = undefined;
      } else if (line === 'dump') {
        send({ type: 'samples', samples, renderMs });
      }
    },
    async () => {
      clearInterval(busy);
      await Promise.all(engines.map((e) => e.stop()));
    },
  );
  for (const e of engines) e.reconcile('peer', jobs);
  send({ type: 'ready', sources, where, kinds, renderBytes: bytes });
}

main().catch((e: unknown) => {
  process.stderr.write(`rtt-prober: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
