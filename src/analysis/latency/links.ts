// Which links are slow: every link the loss and reachability rules left alone, measured by
// trusted agents at both ends, not lossy, with a baseline, judged on its pooled small-probe
// RTT (rtt.ts) against that baseline. The latency rules (rules.ts) share this view and hand
// links to each other through `taken`, broadest cause first, as the IP-path rules do.

import { linkLabel, type Ranked } from '../drafts.ts';
import { addKnown } from '../group.ts';
import { smallTally, usable } from '../links.ts';
import { agentKey, type Ctx, type Draft, type Link } from '../model.ts';
import type { RttBaseline } from '../types.ts';
import { orderedPair, type Pair } from '../reachability/pairs.ts';
import { linkRtt, ms, RTT_QUANTILES, shiftOf, times, type LinkRtt, type Shift } from './rtt.ts';

export interface SlowLink {
  readonly link: Link;
  readonly now: LinkRtt;
  /** The quantiles that shifted (p50, p99, or both), largest factor first. */
  readonly shifts: readonly Shift[];
}

export interface LatencyView {
  readonly ctx: Ctx;
  readonly slow: readonly SlowLink[];
  /** For each node, the peers whose links with it could be judged (slow or not). */
  readonly known: ReadonlyMap<string, ReadonlySet<string>>;
  /** Links a latency finding already took (link key → finding id). */
  readonly taken: Map<string, string>;
}

/** A latency rule: reads the view, takes the slow links it explains, returns its drafts. */
export type LatencyRule = (v: LatencyView) => Draft[];

/** Whether a link may be judged at all: nothing explains it, both ends trusted, no loss. */
function judgeable(ctx: Ctx, l: Link): boolean {
  if (ctx.explainedLinks.has(l.key)) return false;
  // A starved agent answers late as well as probing late: neither end's numbers are trusted.
  if (ctx.untrusted.has(agentKey(l.sourceNode, l.sourceNet))) return false;
  if (ctx.untrusted.has(agentKey(l.targetNode, l.targetNet))) return false;
  const t = smallTally(ctx, l);
  return t.known && t.status === 'ok';
}

export function latencyView(ctx: Ctx): LatencyView {
  const slow: SlowLink[] = [];
  const known = new Map<string, Set<string>>();
  const baselines = ctx.snapshot.baselines?.links;
  if (baselines !== undefined && typeof baselines.get === 'function') {
    for (const l of ctx.links.values()) {
      if (!judgeable(ctx, l)) continue;
      const base = baselines.get(l.key);
      if (base === null || typeof base !== 'object') continue;
      const now = linkRtt(
        l.cells.filter((c) => usable(ctx, c)),
        ctx.opts.minProbes,
      );
      if (now === undefined) continue;
      // A malformed baseline (a quantile missing) is no baseline: triage never throws.
      const shifts = RTT_QUANTILES.flatMap((q) => shiftOf(q, now[q], base[q], ctx.opts) ?? []);
      const judged = RTT_QUANTILES.some(
        (q) =>
          ((base[q] as RttBaseline | null | undefined)?.samples ?? 0) >= ctx.opts.latencyMinSamples,
      );
      if (!judged) continue;
      if (l.cls !== 'local') addKnown(known, l.sourceNode, l.targetNode);
      if (shifts.length > 0)
        slow.push({ link: l, now, shifts: [...shifts].sort((a, b) => b.factor - a.factor) });
    }
  }
  return { ctx, slow, known, taken: new Map() };
}

/** Slow cross-node links no latency finding took yet. */
export const openSlow = (v: LatencyView): SlowLink[] =>
  v.slow.filter((s) => s.link.cls !== 'local' && !v.taken.has(s.link.key));

/** The unordered node pairs of some slow links. */
export function slowPairs(slow: readonly SlowLink[]): Pair[] {
  const m = new Map<string, Pair>();
  for (const { link: l } of slow) {
    const p = orderedPair(l.sourceNode, l.targetNode);
    m.set(`${p[0]}<->${p[1]}`, p);
  }
  return [...m.values()];
}

/** One evidence line per slow link: the figures behind the shift (now, baseline, MAD, factor). */
export function slowEvidence(v: LatencyView, s: SlowLink): Ranked {
  const minutes = v.ctx.snapshot.baselines?.minutes;
  const parts = s.shifts.map(
    (x) =>
      `${x.quantile} ${ms(x.now)} now vs ${ms(x.base.median)} baseline (MAD ${ms(x.base.mad)}, ${x.base.samples} samples${minutes !== undefined ? ` over ${minutes} min` : ''}): ${times(x.factor)}`,
  );
  const worst = s.shifts[0]!;
  return {
    text: `${linkLabel(s.link)} rtt ${parts.join('; ')}`,
    sourceNode: s.link.sourceNode,
    targetNode: s.link.targetNode,
    path: s.link.path,
    size: 'small',
    value: Number.isFinite(worst.factor) ? worst.factor : 1e9,
  };
}

/** The loss the slow links show: none to speak of, by construction (lossy links are pair-loss's). */
export function lossLine(v: LatencyView, slow: readonly SlowLink[]): Ranked | undefined {
  let sent = 0;
  let lost = 0;
  for (const s of slow) {
    const t = smallTally(v.ctx, s.link);
    sent += t.sent;
    lost += t.lost;
  }
  if (sent === 0) return undefined;
  return {
    text: `loss on these links: ${Math.round(lost)} of ${sent} small probes (slow, not lossy)`,
    value: lost / sent,
  };
}

/** Marks links as taken by a latency finding (first one wins). */
export function take(v: LatencyView, slow: Iterable<SlowLink>, id: string): void {
  for (const s of slow) if (!v.taken.has(s.link.key)) v.taken.set(s.link.key, id);
}

/** Whether only p99 shifted on every one of these links (the tail, not the typical trip). */
export const tailOnly = (slow: readonly SlowLink[]): boolean =>
  slow.every((s) => s.shifts.every((x) => x.quantile === 'p99'));
