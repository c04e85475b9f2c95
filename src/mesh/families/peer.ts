// The peer family: probes from this agent to every selected peer, one job per (peer, probe kind,
// size). Which kinds exist, how each opens and which sizes it sends come from the probe kind
// registry (src/probes/registry.ts); this file plans the jobs, runs each through its kind's
// probe, and opens the engine's probes. Its results travel from a worker packed
// (result-batch.ts), the one family whose volume (1,000 a second) asks for it.

import { pairKey } from '../../core/pair-key.ts';
import type { Peer, ProbeKind, ProbeResult } from '../../core/types.ts';
import type { PeerJob } from '../../probes/peer-job.ts';
import type { Probe } from '../../probes/probe.ts';
import { PROBE_REGISTRY, type SizeOptions } from '../../probes/registry.ts';
import type { Family, KindState } from '../family.ts';
import type { Executor } from '../scheduler.ts';

export { ICMP_SMALL_BYTES, TCP_SYN_BYTES } from '../../probes/registry.ts';

export interface PlanOptions extends SizeOptions {
  /** The kinds the engines run (a kind that failed to open is left out). */
  readonly kinds: ReadonlySet<ProbeKind>;
}

/** Which probes go to which selected peer: a pure function from peers and settings to jobs. */
export function planJobs(peers: readonly Peer[], o: PlanOptions): PeerJob[] {
  const jobs: PeerJob[] = [];
  // In registry order (udp, icmp, tcp), each kind's sizes worked out once for every peer.
  const kinds = Object.entries(PROBE_REGISTRY)
    .filter(([kind]) => o.kinds.has(kind as ProbeKind))
    .map(([kind, entry]) => [kind as ProbeKind, entry.sizes(o)] as const);
  for (const peer of peers)
    for (const [kind, sizes] of kinds)
      for (const [size, bytes] of sizes)
        jobs.push({ key: pairKey(peer.id, kind, size), kind, target: { peer, size, bytes } });
  return jobs;
}

/** The executor for peer probes: runs each job through the probe of its kind. */
export function probeExecutor(
  probes: ReadonlyMap<ProbeKind, Probe>,
): Executor<PeerJob, ProbeResult> {
  const failure = (job: PeerJob, startMs: number, detail: string): ProbeResult => ({
    ok: false,
    peerId: job.target.peer.id,
    kind: job.kind,
    size: job.target.size,
    sentAtMs: startMs,
    reason: 'error',
    detail,
  });
  return {
    execute: (job, timeoutMs) => {
      const probe = probes.get(job.kind);
      if (probe === undefined) return Promise.reject(new Error(`no ${job.kind} probe`));
      return probe.run(job.target, timeoutMs);
    },
    overran: failure,
    changed: (a, b) => !sameTarget(a, b),
    accepts: (job) => probes.has(job.kind),
  };
}

function sameTarget(a: PeerJob, b: PeerJob): boolean {
  const pa = a.target.peer;
  const pb = b.target.peer;
  return (
    a.target.bytes === b.target.bytes &&
    pa.address === pb.address &&
    pa.stampPort === pb.stampPort &&
    pa.tcpPort === pb.tcpPort &&
    pa.zone === pb.zone
  );
}

export const peerFamily: Family<'peer'> = {
  name: 'peer',
  async open(ctx) {
    const { spec, timeouts, authKey, log } = ctx;
    const probes = new Map<ProbeKind, Probe>();
    const states: Partial<Record<ProbeKind, KindState>> = {};
    const kindCtx = { clock: timeouts, bindAddress: spec.bindAddress, authKey, log };
    try {
      for (const kind of spec.kinds) {
        const opened = await PROBE_REGISTRY[kind].open(kindCtx);
        if (opened.probe !== undefined) {
          probes.set(kind, opened.probe);
          if (opened.detail !== undefined)
            states[kind] = { enabled: true, reason: 'ok', detail: opened.detail };
        } else states[kind] = { enabled: false, reason: opened.reason, detail: opened.detail };
      }
    } catch (e) {
      await Promise.all([...probes.values()].map((p) => p.close()));
      throw e;
    }
    return {
      executor: probeExecutor(probes),
      intervalMs: spec.intervalMs,
      timeoutMs: spec.timeoutMs,
      status: {
        kinds: [...probes.keys()],
        timestamps: Object.fromEntries([...probes].map(([k, p]) => [k, p.timestamps])),
        ...(states.icmp !== undefined ? { icmp: states.icmp } : {}),
      },
      forget: (departed) => {
        for (const id of departed) for (const p of probes.values()) p.forget(id);
      },
      close: () => Promise.all([...probes.values()].map((p) => p.close())).then(() => undefined),
    };
  },
};
