// Port target rules: an expected-open target that times out (dropped: policy or firewall) or
// is refused (nothing listening, or a reject rule), and an expected-closed one that accepts.
// Sources whose IP paths fail are held back: their connects say nothing about the port.

import type { PortCell } from '../api/matrix.ts';
import {
  addExplains,
  agentKey,
  cmp,
  draft,
  ipHeldBack,
  isFindingId,
  linkKeyOf,
  pct,
  smallTally,
  type Ctx,
  type Draft,
  type Ranked,
} from './model.ts';
import { portSteps } from './next-steps.ts';

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
  const outcomes = Object.entries(c.outcomes ?? {})
    .filter(([, n]) => typeof n === 'number' && n > 0)
    .sort((a, b) => b[1] - a[1] || cmp(a[0], b[0]))
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return {
    text: `${c.sourceNode}/${c.sourceNetwork} → ${c.target} (${c.address}:${c.port}, expected ${c.expected}): ${pct(ratio)} open over ${c.sent} connects${outcomes !== '' ? ` (${outcomes})` : ''}`,
    sourceNode: c.sourceNode,
    target: c.target,
    value: ratio,
    rank: c.expected === 'open' ? 1 - ratio : ratio,
  };
}

export function portFindings(ctx: Ctx): Draft[] {
  const opts = ctx.opts;
  const raw: readonly unknown[] = Array.isArray(ctx.snapshot.matrix?.ports)
    ? ctx.snapshot.matrix.ports
    : [];
  interface Group {
    readonly target: string;
    readonly expected: 'open' | 'closed';
    /** Every judged cell, held back or not: held-back ones still tell where the target is. */
    readonly all: { c: PortCell; bad: boolean }[];
    readonly cells: { c: PortCell; ratio: number }[];
  }
  const groups = new Map<string, Group>();
  for (const c of raw) {
    if (!valid(c)) continue;
    const ratio =
      typeof c.openRatio === 'number' && Number.isFinite(c.openRatio)
        ? Math.min(1, Math.max(0, c.openRatio))
        : null;
    if (ratio === null || !(c.sent >= opts.minPortChecks)) continue;
    const bad =
      c.expected === 'open' ? 1 - ratio >= opts.portFailRatio : ratio > opts.closedOpenRatio;
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
    g.cells.push({ c, ratio });
  }
  const out: Draft[] = [];
  for (const g of [...groups.values()].sort(
    (a, b) => cmp(a.target, b.target) || cmp(a.expected, b.expected),
  )) {
    const bad = g.cells.filter(({ ratio }) =>
      g.expected === 'open' ? 1 - ratio >= opts.portFailRatio : ratio > opts.closedOpenRatio,
    );
    if (bad.length === 0) continue;
    if (g.expected === 'open') {
      const why = behindBrokenPath(ctx, g.all);
      if (why !== undefined) {
        addExplains(ctx, why, `port checks to ${g.target} (it sits behind the failing paths)`);
        continue;
      }
    }
    const first = bad[0]!.c;
    const sources = uniq(bad.map(({ c }) => agentKey(c.sourceNode, c.sourceNetwork)));
    const everywhere = bad.length === g.cells.length;
    const fromWhere = everywhere
      ? `from all ${g.cells.length} sources`
      : `from ${sources.join(', ')} only (${g.cells.length - bad.length} other source${g.cells.length - bad.length === 1 ? '' : 's'} connect fine: look at those sources' egress)`;
    const nodes = bad.map(({ c }) => c.sourceNode);
    const ev = bad.map(({ c, ratio }) => evidence(c, ratio));
    const from = nodes[0];
    if (g.expected === 'closed') {
      out.push(
        draft(ctx, {
          kind: 'port-unexpectedly-open',
          subject: g.target,
          severity: 'warning',
          nodes,
          targets: [g.target],
          title: `${g.target} accepts connections it should refuse`,
          summary: `${g.target} (${first.address}:${first.port}) is expected closed but accepts connects ${fromWhere}: the NetworkPolicy or firewall rule meant to keep it closed does not hold (not applied, selectors that miss, or a CNI that does not enforce policy).`,
          evidence: ev,
          confidence: 0.9,
          nextSteps: portSteps(g.target, first.address, first.port, 'open', from),
        }),
      );
      continue;
    }
    let refused = 0;
    let dropped = 0;
    for (const { c } of bad) {
      refused += count(c.outcomes, 'refused');
      dropped +=
        count(c.outcomes, 'timeout') +
        count(c.outcomes, 'unreachable') +
        count(c.outcomes, 'error');
    }
    const isRefused = refused > dropped;
    out.push(
      draft(ctx, {
        kind: isRefused ? 'port-refused' : 'port-blocked',
        subject: g.target,
        severity: 'warning',
        nodes,
        targets: [g.target],
        title: isRefused
          ? `${g.target} refuses connections`
          : `${g.target} is blocked (connects time out)`,
        summary: isRefused
          ? `Connects to ${g.target} (${first.address}:${first.port}) are refused ${fromWhere} while the IP paths work: nothing listens on the port (the process is down or bound elsewhere, a Service without endpoints), or a rule rejects with a reset.`
          : `Connects to ${g.target} (${first.address}:${first.port}) get no answer ${fromWhere} while the IP paths work: a NetworkPolicy or a firewall silently drops them.`,
        evidence: ev,
        confidence: everywhere ? 0.85 : 0.75,
        nextSteps: portSteps(
          g.target,
          first.address,
          first.port,
          isRefused ? 'refused' : 'blocked',
          from,
        ),
      }),
    );
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

function uniq(xs: readonly string[]): string[] {
  return [...new Set(xs)].sort(cmp);
}
