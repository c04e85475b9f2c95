// asymmetric-path: needs a failing link (small probes, not taken) whose reverse on the same
// kind of path works (loses significantly and at least `contrast` less: stats.ts compare), or a
// failing link whose udp STAMP split puts the loss one way (that direction's loss rate
// significantly higher and at least directionShare of both: pairs.ts mostlyOneWay).
// Then traffic one way is dropped (a stateful rule, one-way filter, or asymmetric routing): a
// node at the sending or receiving end of most of its peers' one-way failures is the cause,
// else each one-way pair is its own finding.

import { capList, draft, linkEvidence, type Ranked } from '../drafts.ts';
import { explainLinks, reverseOf, smallTally, tally, usable, windowOf } from '../links.ts';
import { cmp, pairKey, type Ctx, type Draft, type Link, type Rule } from '../model.ts';
import { asymmetricSteps } from '../next-steps/ip-paths.ts';
import { bonferroni, compare } from '../stats.ts';
import { mostlyOneWay, stampDirections } from './pairs.ts';

interface OneWay {
  readonly from: string;
  readonly to: string;
  readonly links: Link[];
  readonly evidence: Ranked[];
  stamp: boolean;
}

/** The one-way failures by `from->to`, from the two directions' cells or STAMP's split. */
function oneWays(ctx: Ctx): Map<string, OneWay> {
  const dirs = new Map<string, OneWay>();
  const note = (from: string, to: string, links: Link[], ev: Ranked[], stamp: boolean): void => {
    const k = `${from}->${to}`;
    const d = dirs.get(k) ?? { from, to, links: [], evidence: [], stamp: false };
    for (const l of links) if (!d.links.includes(l)) d.links.push(l);
    d.evidence.push(...ev);
    d.stamp ||= stamp;
    dirs.set(k, d);
  };
  const open = [...ctx.links.values()].filter(
    (l) => l.cls !== 'local' && !ctx.explainedLinks.has(l.key),
  );
  // One comparison per failing link: the family is held at `confidence`.
  const conf = bonferroni(
    ctx.opts.confidence,
    open.filter((l) => smallTally(ctx, l).status === 'failing').length,
  );
  for (const l of open) {
    const t = smallTally(ctx, l);
    if (t.status !== 'failing') continue;
    const r = reverseOf(ctx, l);
    const rt = r !== undefined && !ctx.explainedLinks.has(r.key) ? smallTally(ctx, r) : undefined;
    // Only a reverse on the same kind of path compares: host-to-pod goes out over the overlay
    // but its reverse, pod-to-host, is masqueraded onto the node network.
    if (
      r !== undefined &&
      r.cls === l.cls &&
      rt?.status === 'ok' &&
      compare(t, windowOf(rt), ctx.opts.contrast, conf).material
    ) {
      note(
        l.sourceNode,
        l.targetNode,
        [l],
        [linkEvidence(l, t), { ...linkEvidence(r, rt), rank: -1 }],
        false,
      );
      continue;
    }
    // STAMP: which way were the lost packets going? Only known when some answers came back.
    const udp = l.cells.filter((c) => c.protocol === 'udp' && c.size === 'small' && usable(ctx, c));
    const ut = tally(ctx, udp);
    if (!ut.known) continue;
    const { ab: out, ba: back } = stampDirections(ctx, [l], l.sourceNode);
    if (out.lost + back.lost === 0 || out.lost + back.lost < 0.5 * ut.lost) continue;
    const links = r !== undefined && !ctx.explainedLinks.has(r.key) ? [l, r] : [l];
    const ev = (): Ranked => ({
      text: `${l.sourceNode} → ${l.targetNode} ${l.path} udp small: ${Math.round(ut.lost)} of ${ut.sent} lost; STAMP: ${Math.round(out.lost)} of ${Math.round(out.sent)} lost on the way out, ${Math.round(back.lost)} of ${Math.round(back.sent)} on the way back`,
      sourceNode: l.sourceNode,
      targetNode: l.targetNode,
      path: l.path,
      protocol: 'udp',
      value: ut.ratio,
    });
    if (mostlyOneWay(ctx, out, back, conf)) note(l.sourceNode, l.targetNode, links, [ev()], true);
    else if (mostlyOneWay(ctx, back, out, conf))
      note(l.targetNode, l.sourceNode, links, [ev()], true);
  }
  return dirs;
}

interface Candidate {
  readonly node: string;
  /** Whether the node is the sending end of its one-way failures (else the receiving end). */
  readonly out: boolean;
  readonly ds: OneWay[];
}

/** Nodes at the sending or receiving end of most of their peers' one-way failures, most first. */
function hubCandidates(ctx: Ctx, dirs: ReadonlyMap<string, OneWay>): Candidate[] {
  // A node at the sending or receiving end of most of its peers' one-way failures is the cause.
  const peersOf = (x: string): number =>
    ctx.nodes.filter(
      (y) =>
        y !== x && (ctx.pairLinks.get(pairKey(x, y)) ?? []).some((l) => smallTally(ctx, l).known),
    ).length;
  const candidates: Candidate[] = [];
  for (const x of ctx.nodes) {
    const outs = [...dirs.values()].filter((d) => d.from === x);
    const ins = [...dirs.values()].filter((d) => d.to === x);
    const k = peersOf(x);
    if (outs.length >= 2 && outs.length >= ctx.opts.hubShare * k)
      candidates.push({ node: x, out: true, ds: outs });
    if (ins.length >= 2 && ins.length >= ctx.opts.hubShare * k)
      candidates.push({ node: x, out: false, ds: ins });
  }
  return candidates.sort((a, b) => b.ds.length - a.ds.length || cmp(a.node, b.node));
}

/** One finding per node that is the common end; the one-way pairs it takes go into `used`. */
function hubOneWays(ctx: Ctx, dirs: ReadonlyMap<string, OneWay>, used: Set<string>): Draft[] {
  const out: Draft[] = [];
  for (const c of hubCandidates(ctx, dirs)) {
    const ds = c.ds.filter((d) => !used.has(`${d.from}->${d.to}`));
    if (ds.length < 2) continue;
    const id = `asymmetric-path:${c.node}`;
    if (out.some((f) => f.id === id)) continue;
    for (const d of ds) {
      used.add(`${d.from}->${d.to}`);
      explainLinks(ctx, d.links, id);
    }
    const others = ds.map((d) => (c.out ? d.to : d.from));
    out.push(
      draft(ctx, {
        kind: 'asymmetric-path',
        subject: c.node,
        severity: 'warning',
        nodes: [c.node, ...others],
        title: c.out
          ? `Traffic from ${c.node} fails while traffic to it works`
          : `Traffic to ${c.node} fails while traffic from it works`,
        summary: c.out
          ? `${c.node} → ${ds.length} peers fails while the same peers reach ${c.node}: an egress rule on ${c.node}, or a stateful firewall on the way that only lets replies through, or a return route that differs from the way out.`
          : `${ds.length} peers → ${c.node} fails while ${c.node} reaches them: an ingress rule on ${c.node} (NetworkPolicy or host firewall; replies to its own traffic pass as established), or a return route that differs from the way in.`,
        evidence: ds.flatMap((d) => d.evidence),
        confidence: ds.some((d) => d.stamp) ? 0.8 : 0.7,
        nextSteps: c.out
          ? asymmetricSteps(ctx, c.node, others[0]!)
          : asymmetricSteps(ctx, others[0]!, c.node),
        explains: capList(
          ds.map((d) => `${d.from}->${d.to}`),
          20,
        ),
      }),
    );
  }
  return out;
}

/** One finding per one-way pair no node took. */
function pairOneWays(ctx: Ctx, dirs: ReadonlyMap<string, OneWay>, used: Set<string>): Draft[] {
  const out: Draft[] = [];
  for (const d of [...dirs.values()].sort((a, b) => cmp(a.from, b.from) || cmp(a.to, b.to))) {
    const k = `${d.from}->${d.to}`;
    if (used.has(k)) continue;
    const id = `asymmetric-path:${k}`;
    explainLinks(ctx, d.links, id);
    out.push(
      draft(ctx, {
        kind: 'asymmetric-path',
        subject: k,
        severity: 'warning',
        nodes: [d.from, d.to],
        title: `${d.from} → ${d.to} fails while ${d.to} → ${d.from} works`,
        summary: d.stamp
          ? `STAMP puts the loss between ${d.from} and ${d.to} on the way from ${d.from} to ${d.to}: packets in that direction are dropped (a one-way filter, a congested or faulty link in that direction, or a return route that differs).`
          : `${d.from}'s probes to ${d.to} fail while ${d.to}'s probes to ${d.from} are answered: traffic started by ${d.from} is dropped and replies to ${d.to} pass, the mark of a stateful rule (NetworkPolicy ingress on ${d.to}, a host firewall) or of asymmetric routing.`,
        evidence: d.evidence,
        confidence: d.stamp ? 0.8 : 0.7,
        nextSteps: asymmetricSteps(ctx, d.from, d.to),
      }),
    );
  }
  return out;
}

export const asymmetric: Rule = (ctx) => {
  const dirs = oneWays(ctx);
  if (dirs.size === 0) return [];
  const used = new Set<string>();
  return [...hubOneWays(ctx, dirs, used), ...pairOneWays(ctx, dirs, used)];
};
