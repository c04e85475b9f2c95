// Port target rules: an expected-open target whose connects fail significantly at or above
// portFailRatio (the interval of the failed share at `confidence` lies there), told apart by how
// they end: refused (a TCP reset: nothing listening), rejected (an ICMP unreachable: a REJECT
// rule or no route; the outcome `unreachable`), dropped (a timeout: a DROP policy or a black
// hole); and an expected-closed one that accepts. Sources whose IP paths fail are held back:
// their connects say nothing about the port.

import {
  addExplains,
  draft,
  isFindingId,
  lossFigures,
  outcomeCounts,
  pct,
  type Ranked,
} from './drafts.ts';
import { cellView } from './fresh.ts';
import { ipHeldBack, smallTally } from './links.ts';
import { agentKey, cmp, finite, linkKeyOf, uniqSorted, type Ctx, type Draft } from './model.ts';
import { portSteps, type PortOutcome } from './next-steps/ports.ts';
import { atLeast, pool } from './stats.ts';
import type { PortCell } from './types.ts';

function valid(c: unknown): c is PortCell {
  if (c === null || typeof c !== 'object') return false;
  const p = c as Partial<PortCell>;
  return (
    typeof p.target === 'string' &&
    typeof p.sourceNode === 'string' &&
    (p.sourceNetwork === 'pod' || p.sourceNetwork === 'host') &&
    (p.expected === 'open' || p.expected === 'closed') &&
    typeof p.sent === 'number'
  );
}

function count(o: Readonly<Record<string, number>> | undefined, k: string): number {
  const v = o !== undefined && o !== null && typeof o === 'object' ? o[k] : undefined;
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}

function evidence(c: PortCell, ratio: number): Ranked {
  const outcomes = outcomeCounts(c.outcomes).join(', ');
  return {
    text: `${c.sourceNode}/${c.sourceNetwork} → ${c.target} (${c.address}:${c.port}, expected ${c.expected}): ${pct(ratio)} open over ${c.sent} connects${outcomes !== '' ? ` (${outcomes})` : ''}`,
    sourceNode: c.sourceNode,
    target: c.target,
    value: ratio,
    rank: c.expected === 'open' ? 1 - ratio : ratio,
  };
}

/** The failed connects of a cell (sent × (1 - open ratio)). */
function failedCounts(sent: number, ratio: number): { sent: number; lost: number } {
  return { sent, lost: sent * (1 - ratio) };
}

/**
 * Expected open: the failed share is significantly at or above portFailRatio (12 of 12 failed
 * is, 8 of 12 is not). Expected closed: any accepted connect above closedOpenRatio counts (one
 * accepted connect is a fact, not a sample).
 */
function isBad(ctx: Ctx, c: PortCell, sent: number, ratio: number): boolean {
  return c.expected === 'open'
    ? atLeast(failedCounts(sent, ratio), ctx.opts.portFailRatio, ctx.opts.confidence)
    : ratio > ctx.opts.closedOpenRatio;
}

/**
 * How many connects a port cell is judged on when the newest ones prove it healed (fresh.ts):
 * accepted again after failures for an expected-open target, refused or dropped again after
 * accepting for an expected-closed one. undefined: judged on its window.
 */
function healedPort(c: PortCell): number | undefined {
  const sent = finite(c.sent);
  const open = finite(c.open);
  const r = c.run;
  const view =
    c.expected === 'open'
      ? cellView(sent, sent - open, r)
      : cellView(sent, open, r === undefined || r === null ? r : { ...r, ok: !r.ok });
  return view.fresh === 'healed' ? view.sent : undefined;
}

/** One port target as one expectation (open or closed), with the cells that judge it. */
interface Group {
  readonly target: string;
  readonly expected: 'open' | 'closed';
  /** Every judged cell, held back or not: held-back ones still tell where the target is. */
  readonly all: { c: PortCell; bad: boolean }[];
  readonly cells: { c: PortCell; sent: number; ratio: number }[];
}

/**
 * Judged cells grouped by target and expectation. Cells from a source whose IP paths fail are
 * held back (credited to that IP finding): their connects say nothing about the port.
 */
function groupsOf(ctx: Ctx): Group[] {
  const opts = ctx.opts;
  const raw: readonly unknown[] = Array.isArray(ctx.snapshot.matrix?.ports)
    ? ctx.snapshot.matrix.ports
    : [];
  const groups = new Map<string, Group>();
  for (const c of raw) {
    if (!valid(c)) continue;
    const fresh = healedPort(c);
    const stated =
      typeof c.openRatio === 'number' && Number.isFinite(c.openRatio)
        ? Math.min(1, Math.max(0, c.openRatio))
        : null;
    const ratio = fresh !== undefined ? (c.expected === 'open' ? 1 : 0) : stated;
    const sent = fresh ?? c.sent;
    if (ratio === null || !(sent >= opts.minPortChecks)) continue;
    const bad = isBad(ctx, c, sent, ratio);
    const k = `${c.expected}|${c.target}`;
    const g = groups.get(k) ?? { target: c.target, expected: c.expected, all: [], cells: [] };
    groups.set(k, g);
    g.all.push({ c, bad });
    const held = ipHeldBack(ctx, c.sourceNode, c.sourceNetwork);
    if (held !== undefined) {
      if (bad && isFindingId(held))
        addExplains(
          ctx,
          held,
          `port checks from ${agentKey(c.sourceNode, c.sourceNetwork)} (held back)`,
        );
      continue;
    }
    g.cells.push({ c, sent, ratio });
  }
  return [...groups.values()].sort(
    (a, b) => cmp(a.target, b.target) || cmp(a.expected, b.expected),
  );
}

/** What every port finding says about the failing cells of one group. */
interface Failing {
  readonly bad: readonly { c: PortCell; sent: number; ratio: number }[];
  readonly first: PortCell;
  readonly fromWhere: string;
  readonly everywhere: boolean;
  readonly nodes: readonly string[];
  readonly evidence: readonly Ranked[];
}

function failingOf(
  g: Group,
  bad: readonly { c: PortCell; sent: number; ratio: number }[],
): Failing {
  const sources = uniqSorted(bad.map(({ c }) => agentKey(c.sourceNode, c.sourceNetwork)));
  const everywhere = bad.length === g.cells.length;
  const fromWhere = everywhere
    ? `from all ${g.cells.length} sources`
    : `from ${sources.join(', ')} only (${g.cells.length - bad.length} other source${g.cells.length - bad.length === 1 ? '' : 's'} connect fine: look at those sources' egress)`;
  return {
    bad,
    first: bad[0]!.c,
    fromWhere,
    everywhere,
    nodes: bad.map(({ c }) => c.sourceNode),
    evidence: bad.map(({ c, ratio }) => evidence(c, ratio)),
  };
}

// port-unexpectedly-open needs an expected-closed target's connects that succeed: the policy
// meant to keep it closed does not hold.
function unexpectedlyOpen(ctx: Ctx, g: Group, f: Failing): Draft {
  return draft(ctx, {
    kind: 'port-unexpectedly-open',
    subject: g.target,
    severity: 'warning',
    nodes: f.nodes,
    targets: [g.target],
    title: `${g.target} accepts connections it should refuse`,
    summary: `${g.target} (${f.first.address}:${f.first.port}) is expected closed but accepts connects ${f.fromWhere}: the NetworkPolicy or firewall rule meant to keep it closed does not hold (not applied, selectors that miss, or a CNI that does not enforce policy).`,
    evidence: f.evidence,
    confidence: 0.9,
    nextSteps: portSteps(g.target, f.first.address, f.first.port, 'open', f.nodes[0]),
  });
}

// port-refused / port-rejected / port-blocked need an expected-open target's failing connects,
// told apart by how most of the failed connects ended: a reset (refused), an ICMP unreachable
// (rejected: Linux reports admin-prohibited, host-prohibited and host-unreachable alike as
// EHOSTUNREACH), or nothing (timeout, and the odd error: dropped).
const OUTCOME_TEXT: Readonly<
  Record<PortOutcome, { kind: Draft['kind']; title: string; why: string }>
> = {
  refused: {
    kind: 'port-refused',
    title: 'refuses connections',
    why: 'are refused (a TCP reset)',
  },
  rejected: {
    kind: 'port-rejected',
    title: 'rejects connections (ICMP unreachable)',
    why: 'are rejected at once with an ICMP unreachable',
  },
  blocked: {
    kind: 'port-blocked',
    title: 'is blocked (connects time out)',
    why: 'get no answer at all',
  },
};

function causeOf(outcome: PortOutcome): string {
  return outcome === 'refused'
    ? "nothing listens on the port (the process is down or bound elsewhere, a Service without endpoints), or a rule rejects with a reset (iptables' default REJECT, icmp port-unreachable, looks the same)"
    : outcome === 'rejected'
      ? 'a firewall rule or NetworkPolicy engine rejects them (REJECT with icmp admin-prohibited, host-prohibited or host-unreachable), or a router on the way has no route: a REJECT policy, not a silent drop and not a missing listener'
      : 'a NetworkPolicy or a firewall silently drops them (a DROP policy), or they vanish in a black hole';
}

/** Share of the failed connects ICMP unreachables must answer to call the port rejected. */
const REJECTED_SHARE = 0.1;

/**
 * Refused when resets answer most failed connects. Else rejected when ICMP unreachables answer
 * a tenth of them or more: a DROP policy never answers, while a host that rejects rate-limits
 * its ICMP errors (net.ipv4.icmp_ratelimit, one a second per peer with a small burst), so under
 * many connects most of a REJECT's answers never come and those connects time out. Else dropped.
 */
export function outcomeOf(n: Readonly<Record<PortOutcome, number>>): PortOutcome {
  const failed = n.refused + n.rejected + n.blocked;
  if (failed > 0 && n.refused >= failed / 2) return 'refused';
  if (n.rejected > 0 && n.rejected >= REJECTED_SHARE * failed) return 'rejected';
  return 'blocked';
}

function blockedOrRefused(ctx: Ctx, g: Group, f: Failing): Draft {
  const n: Record<PortOutcome, number> = { refused: 0, rejected: 0, blocked: 0 };
  for (const { c } of f.bad) {
    n.refused += count(c.outcomes, 'refused');
    n.rejected += count(c.outcomes, 'unreachable');
    n.blocked += count(c.outcomes, 'timeout') + count(c.outcomes, 'error');
  }
  const outcome = outcomeOf(n);
  const { first, fromWhere } = f;
  const text = OUTCOME_TEXT[outcome];
  const failed = pool(f.bad.map(({ sent, ratio }) => failedCounts(sent, ratio)));
  return draft(ctx, {
    kind: text.kind,
    subject: g.target,
    severity: 'warning',
    nodes: f.nodes,
    targets: [g.target],
    title: `${g.target} ${text.title}`,
    summary: `Connects to ${g.target} (${first.address}:${first.port}) ${text.why} ${fromWhere} while the IP paths work (${lossFigures(failed, ctx.opts.confidence, 'connects failed')}): ${causeOf(outcome)}.${outcome === 'rejected' && n.blocked > 0 ? ` ${n.rejected} were answered with an ICMP unreachable and ${n.blocked} timed out: a host that rejects rate-limits its ICMP errors, so many connects wait in vain.` : ''}`,
    evidence: f.evidence,
    confidence: f.everywhere ? 0.85 : 0.75,
    nextSteps: portSteps(g.target, first.address, first.port, outcome, f.nodes[0]),
  });
}

/**
 * Per target, in order: nothing failing is nothing; an expected-open target behind a failing
 * IP path is that path's symptom; else it is unexpectedly open, refused or blocked.
 */
export function portFindings(ctx: Ctx): Draft[] {
  const out: Draft[] = [];
  for (const g of groupsOf(ctx)) {
    const bad = g.cells.filter(({ c, sent, ratio }) => isBad(ctx, c, sent, ratio));
    if (bad.length === 0) continue;
    if (g.expected === 'open') {
      const why = behindBrokenPath(ctx, g.all);
      if (why !== undefined) {
        addExplains(ctx, why, `port checks to ${g.target} (it sits behind the failing paths)`);
        continue;
      }
    }
    const f = failingOf(g, bad);
    out.push(g.expected === 'closed' ? unexpectedlyOpen(ctx, g, f) : blockedOrRefused(ctx, g, f));
  }
  return out;
}

/**
 * Port targets carry no node, but the agents locate them: if the sources that fail are exactly
 * those whose path to some node's pods fails (and the rest, that node's own agents included,
 * connect), the target sits on that node and the IP finding about those paths explains it.
 */
function behindBrokenPath(
  ctx: Ctx,
  all: readonly { c: PortCell; bad: boolean }[],
): string | undefined {
  const failing = new Set<string>();
  const good = new Set<string>();
  for (const { c, bad } of all) (bad ? failing : good).add(agentKey(c.sourceNode, c.sourceNetwork));
  for (const s of failing) good.delete(s);
  if (failing.size === 0) return undefined;
  const reach = (source: string, node: string): { fails: boolean; id: string | undefined } => {
    const [sn, snet] = [
      source.slice(0, source.lastIndexOf('/')),
      source.slice(source.lastIndexOf('/') + 1),
    ];
    if (sn === node && snet === 'pod') return { fails: false, id: undefined };
    const l = ctx.links.get(linkKeyOf(sn, snet, node, 'pod'));
    if (l === undefined) return { fails: false, id: undefined };
    const failingLink = smallTally(ctx, l).status === 'failing';
    return { fails: failingLink, id: ctx.explainedLinks.get(l.key) };
  };
  for (const x of ctx.nodes) {
    let id: string | undefined;
    let all = true;
    for (const s of failing) {
      const r = reach(s, x);
      if (!r.fails) {
        all = false;
        break;
      }
      id ??= r.id;
    }
    if (!all || id === undefined) continue;
    if ([...good].some((s) => reach(s, x).fails)) continue;
    return id;
  }
  return undefined;
}
