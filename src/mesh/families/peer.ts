// The peer family: probes from this agent to every selected peer, one job per (peer, probe kind,
// size). Which kinds exist, how each opens and which sizes it sends come from the probe kind
// registry (src/probes/registry.ts); this file plans the jobs, runs each through its kind's
// probe, and opens the engine's probes. Its results travel from a worker packed
// (result-batch.ts), the one family whose volume (1,000 a second) asks for it.

import type { Clock } from '../../core/clock.ts';
import { pairKey } from '../../core/pair-key.ts';
import type { Peer, ProbeKind, ProbeResult } from '../../core/types.ts';
import type { PeerJob } from '../../probes/peer-job.ts';
import type { Probe } from '../../probes/probe.ts';
import { PROBE_REGISTRY, type SizeOptions } from '../../probes/registry.ts';
import type { Family, KindState } from '../family.ts';
import { laneTarget, nextVisitSlot, slotAt, type Rotation } from '../rotation.ts';
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

/**
 * The rotating lanes' jobs: per lane, one job per kind at its small size (a visit measures every
 * path and kind; MTU mismatches are node-wide, and the core set's watchers see them). Keyed by
 * lane and kind, not by peer, so a lane is one loop for as long as the schedule keeps it.
 */
export function planLaneJobs(rotation: Rotation<Peer>, slotMs: number, o: PlanOptions): PeerJob[] {
  const jobs: PeerJob[] = [];
  const kinds = Object.entries(PROBE_REGISTRY).filter(([kind]) => o.kinds.has(kind as ProbeKind));
  rotation.lanes.forEach((peers, i) => {
    if (peers.length === 0) return;
    for (const [k, entry] of kinds) {
      const kind = k as ProbeKind;
      const small = entry.sizes(o).find(([size]) => size === 'small');
      if (small === undefined) continue;
      jobs.push({
        key: laneKey(i, kind),
        kind,
        target: { peer: peers[0]!, size: 'small', bytes: small[1] },
        lane: { peers, slotMs },
      });
    }
  });
  return jobs;
}

/** A lane job's key: never a pairKey, since node names (DNS subdomains) never hold a '#'. */
export function laneKey(lane: number, kind: ProbeKind): string {
  return `#lane${lane}|${kind}|small`;
}

/**
 * The executor for peer probes: runs each job through the probe of its kind; a lane job probes
 * the peer its schedule names for the slot this run visits (`clock`: the wall clock slots are
 * counted on, the same in every process).
 */
export function probeExecutor(
  probes: ReadonlyMap<ProbeKind, Probe>,
  clock?: Pick<Clock, 'nowMs'>,
): Executor<PeerJob, ProbeResult> {
  /** Each lane job's latest visit: its slot, and its peer (a run cut off is that peer's). */
  const visited = new Map<string, { readonly slot: number; readonly peer: Peer }>();
  const targetOf = (job: PeerJob): PeerJob['target'] => {
    if (job.lane === undefined || clock === undefined) return job.target;
    const slot = nextVisitSlot(visited.get(job.key)?.slot, slotAt(clock.nowMs(), job.lane.slotMs));
    const peer = laneTarget(job.lane.peers, slot) ?? job.target.peer;
    visited.set(job.key, { slot, peer });
    return { ...job.target, peer };
  };
  const failure = (job: PeerJob, startMs: number, detail: string): ProbeResult => ({
    ok: false,
    peerId:
      (job.lane !== undefined ? visited.get(job.key)?.peer : undefined)?.id ?? job.target.peer.id,
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
      return probe.run(targetOf(job), timeoutMs);
    },
    overran: failure,
    changed: (a, b) => !sameTarget(a, b),
    accepts: (job) => probes.has(job.kind),
  };
}

function samePeer(pa: Peer, pb: Peer): boolean {
  return (
    pa.id === pb.id &&
    pa.address === pb.address &&
    pa.stampPort === pb.stampPort &&
    pa.tcpPort === pb.tcpPort &&
    pa.zone === pb.zone
  );
}

function sameTarget(a: PeerJob, b: PeerJob): boolean {
  if (a.target.bytes !== b.target.bytes || !samePeer(a.target.peer, b.target.peer)) return false;
  const la = a.lane;
  const lb = b.lane;
  if (la === undefined || lb === undefined) return la === lb;
  return (
    la.slotMs === lb.slotMs &&
    la.peers.length === lb.peers.length &&
    la.peers.every((p, i) => samePeer(p, lb.peers[i]!))
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
      executor: probeExecutor(probes, ctx.clock),
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
