// The peer family's metrics: counters and histograms on every probe result (sent, lost, failure
// reasons, STAMP extras, RTT by scope and per pair, lateness), the per-pair window gauges from
// the pair window store at scrape time, and every series of a peer that departs removed.

import type { Counter, Histogram } from 'prom-client';
import { pairKey } from '../core/pair-key.ts';
import type { PeerDiff } from '../core/peer-diff.ts';
import {
  FAILURE_REASONS,
  PROBE_KINDS,
  SIZE_CLASSES,
  pathOf,
  scopeOf,
  type Peer,
  type ProbeResult,
} from '../core/types.ts';
import type { PairWindowStore } from '../store/pair-window.ts';
import { QUANTILES, type RecorderContext } from './recorder-context.ts';
import type { HistogramSlot } from './slot-histogram.ts';

type PairLabels = {
  source_node: string;
  target_node: string;
  path: string;
  protocol: string;
  size: string;
};

/** A pair's label set and metric children, made once: the hot path only looks them up. */
interface Cached {
  readonly labels: PairLabels;
  readonly sent: ReturnType<Counter<keyof PairLabels>['labels']>;
  readonly lost: ReturnType<Counter<keyof PairLabels>['labels']>;
  readonly rtt: ReturnType<
    Histogram<'source_node' | 'path' | 'protocol' | 'size' | 'scope'>['labels']
  >;
  readonly lateness: ReturnType<Histogram<'source_node' | 'network' | 'protocol'>['labels']>;
  /** The pair RTT histogram's slot: small probes only (catalogue pairRttHistogram). */
  readonly pairRtt: HistogramSlot<keyof PairLabels> | undefined;
}

export class PairRecorder {
  private readonly peers = new Map<string, Peer>();
  private readonly cache = new Map<string, Cached>();

  constructor(
    private readonly ctx: RecorderContext,
    private readonly store: PairWindowStore,
  ) {
    ctx.m.peers.set(ctx.selfLabels, 0);
  }

  /** The peers currently probed, as a change (diffPeers); departed ones lose every series. */
  setPeers(diff: PeerDiff<Peer>): void {
    for (const p of diff.departed) this.removePeer(p);
    for (const p of diff.kept) this.peers.set(p.id, p);
    for (const p of diff.arrived) this.peers.set(p.id, p);
    this.ctx.m.peers.set(this.ctx.selfLabels, diff.kept.length + diff.arrived.length);
  }

  record(r: ProbeResult, latenessMs: number): void {
    const peer = this.peers.get(r.peerId);
    if (peer === undefined) return; // a late result for a departed peer: its series are gone
    const { m, self, selfLabels } = this.ctx;
    const key = pairKey(r.peerId, r.kind, r.size);
    let c = this.cache.get(key);
    if (c === undefined) {
      const labels: PairLabels = {
        source_node: self.node,
        target_node: peer.node,
        path: pathOf(self.network, peer.network),
        protocol: r.kind,
        size: r.size,
      };
      c = {
        labels,
        sent: m.probesSent.labels(labels),
        lost: m.probesLost.labels(labels),
        rtt: m.rtt.labels({
          source_node: labels.source_node,
          path: labels.path,
          protocol: r.kind,
          size: r.size,
          scope: scopeOf(self, peer),
        }),
        lateness: m.lateness.labels({ ...selfLabels, protocol: r.kind }),
        pairRtt: r.size === 'small' ? m.pairRttHistogram.slot(key, labels) : undefined,
      };
      this.cache.set(key, c);
    }
    c.sent.inc();
    if (r.ok) {
      c.rtt.observe(r.rttSeconds);
      c.pairRtt?.observe(r.rttSeconds);
    } else {
      c.lost.inc();
      m.probeFailures.inc({ ...c.labels, reason: r.reason });
    }
    const st = r.stamp;
    if (st !== undefined) {
      if (st.forwardLost > 0)
        m.stampLost.inc({ ...c.labels, direction: 'forward' }, st.forwardLost);
      if (st.reverseLost > 0)
        m.stampLost.inc({ ...c.labels, direction: 'reverse' }, st.reverseLost);
      if (st.duplicates > 0) m.stampDuplicates.inc(c.labels, st.duplicates);
      if (st.reordered > 0) m.stampReordered.inc(c.labels, st.reordered);
    }
    c.lateness.observe(latenessMs / 1000);
  }

  /**
   * A rotating visit's result (peers.rotation, docs/scale.md): only the series without a target
   * label, the RTT histogram by scope and the lateness histogram, so every probe still counts
   * there while per-pair series stay with the core set.
   */
  recordRotating(r: ProbeResult, peer: Peer, latenessMs: number): void {
    const { m, self, selfLabels } = this.ctx;
    if (r.ok)
      m.rtt.observe(
        {
          source_node: self.node,
          path: pathOf(self.network, peer.network),
          protocol: r.kind,
          size: r.size,
          scope: scopeOf(self, peer),
        },
        r.rttSeconds,
      );
    m.lateness.observe({ ...selfLabels, protocol: r.kind }, latenessMs / 1000);
  }

  /** Fills the per-pair window gauges from the store, for one render. */
  refresh(): void {
    this.clear();
    const { pairLossRatio, pairWindowProbes, pairRtt, pairLastSuccess } = this.ctx.m;
    for (const w of this.store.all()) {
      const c = this.cache.get(w.key);
      if (c === undefined || !this.peers.has(w.peerId)) continue;
      pairWindowProbes.set(c.labels, w.sent);
      if (w.lossRatio !== null) pairLossRatio.set(c.labels, w.lossRatio);
      if (w.lastSuccessMs !== null) pairLastSuccess.set(c.labels, w.lastSuccessMs / 1000);
      if (w.rtt !== null)
        for (const [label, k] of QUANTILES) pairRtt.set({ ...c.labels, quantile: label }, w.rtt[k]);
    }
  }

  /**
   * Drops the per-pair window gauges. They live only while a scrape renders them: between
   * scrapes the window store holds their data, and keeping ~6 series per pair and probe kind in
   * prom-client (an object, a labels object and a hash string each; 6,000 at 200 peers) cost
   * 2-3 MB of heap for nothing (docs/benchmarks.md).
   */
  clear(): void {
    const { pairLossRatio, pairWindowProbes, pairRtt, pairLastSuccess } = this.ctx.m;
    for (const g of [pairLossRatio, pairWindowProbes, pairRtt, pairLastSuccess]) g.reset();
  }

  private removePeer(peer: Peer): void {
    const { m, self } = this.ctx;
    this.peers.delete(peer.id);
    const path = pathOf(self.network, peer.network);
    for (const protocol of PROBE_KINDS) {
      for (const size of SIZE_CLASSES) {
        const key = pairKey(peer.id, protocol, size);
        this.cache.delete(key);
        m.pairRttHistogram.remove(key);
        const labels = { source_node: self.node, target_node: peer.node, path, protocol, size };
        m.probesSent.remove(labels);
        m.probesLost.remove(labels);
        m.stampDuplicates.remove(labels);
        m.stampReordered.remove(labels);
        for (const reason of FAILURE_REASONS) m.probeFailures.remove({ ...labels, reason });
        for (const direction of ['forward', 'reverse'])
          m.stampLost.remove({ ...labels, direction });
      }
    }
  }
}
