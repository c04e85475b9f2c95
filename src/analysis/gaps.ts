// Coverage gaps: nodes where podmesh has no working agent of a kind, from the controller's
// coverage (no Ready agent, with the reason) and from agents it can't read. An agent that
// can't be read because its node is cut off is the isolation finding's symptom, not a gap.

import { addExplains, draft } from './drafts.ts';
import { agentKey, cmp, type Ctx, type Draft } from './model.ts';
import { coverageSteps } from './next-steps/agents.ts';
import type { AgentCoverage, Evidence } from './types.ts';

interface Gap {
  readonly net: 'pod' | 'host';
  readonly reason: string;
  readonly detail: string;
  readonly pod: string | null;
  readonly fromCoverage: boolean;
}

/** The finding that explains why the controller can't reach this agent, if any. */
function reachExplained(ctx: Ctx, node: string, net: 'pod' | 'host'): string | undefined {
  const id = ctx.ipHubs.get(node) ?? ctx.clusterIp;
  if (id === undefined) return undefined;
  // An overlay finding explains unreachable pod agents only; host agents ride the node network.
  if (id.startsWith('overlay-broken:') && net === 'host') return undefined;
  return id;
}

/** Every gap by node: agents coverage says are missing, then agents the controller can't read. */
function gapsByNode(ctx: Ctx): Map<string, Gap[]> {
  const gaps = new Map<string, Gap[]>();
  const add = (node: string, g: Gap): void => {
    gaps.set(node, [...(gaps.get(node) ?? []), g]);
  };
  for (const [node, cov] of ctx.coverage ?? []) {
    for (const net of ['pod', 'host'] as const) {
      const c = (cov as unknown as Record<string, AgentCoverage | undefined>)[net];
      if (c === undefined || c === null || typeof c !== 'object' || c.covered !== false) continue;
      add(node, {
        net,
        reason: typeof c.reason === 'string' ? c.reason : 'unknown',
        detail: typeof c.detail === 'string' ? c.detail : '',
        pod: typeof c.pod === 'string' ? c.pod : null,
        fromCoverage: true,
      });
    }
  }
  for (const a of ctx.agents.values()) {
    if (a.state === 'ok') continue;
    if ((gaps.get(a.node) ?? []).some((g) => g.net === a.network)) continue;
    const why = reachExplained(ctx, a.node, a.network);
    if (why !== undefined && (a.state === 'unreachable' || a.state === 'timeout')) {
      addExplains(
        ctx,
        why,
        `coverage-gap:${agentKey(a.node, a.network)} (the controller can't reach it)`,
      );
      continue;
    }
    const cov = ctx.coverage?.get(a.node)?.[a.network];
    add(a.node, {
      net: a.network,
      reason: a.state,
      detail: `the controller can't read its results: ${a.state}${a.detail !== undefined ? ` (${a.detail})` : ''}${a.lastSeen !== null ? `; last read ${a.lastSeen}` : '; never read'}`,
      pod: typeof cov?.pod === 'string' ? cov.pod : null,
      fromCoverage: false,
    });
  }
  return gaps;
}

/** One node's gaps as one finding: the whole node when both agents are missing. */
function gapDraft(ctx: Ctx, node: string, gs: readonly Gap[]): Draft {
  const both = gs.length >= 2;
  const subject = both ? node : agentKey(node, gs[0]!.net);
  const evidence: Evidence[] = gs.map((g) => ({
    text: `${node}/${g.net}: ${g.reason}${g.detail !== '' ? ` — ${g.detail}` : ''}`,
    sourceNode: node,
  }));
  const reasons = [...new Set(gs.map((g) => g.reason))].join(', ');
  const fromCoverage = gs.some((g) => g.fromCoverage);
  return draft(ctx, {
    kind: 'coverage-gap',
    subject,
    severity: 'warning',
    nodes: [node],
    title: both
      ? `${node} has no working podmesh agents (${reasons})`
      : `${subject} has no working podmesh agent (${reasons})`,
    summary: fromCoverage
      ? `podmesh is blind on ${subject}: ${gs.map((g) => `the ${g.net} agent is ${g.reason}`).join(' and ')}. Paths to and from it are not measured, so no finding about them means nothing; this is not reported as a network failure.`
      : `The controller can't read ${subject}'s results (${reasons}), so what it measures is missing from the matrix; its peers' probes to it still count.`,
    lead: evidence,
    evidence: [],
    confidence: fromCoverage ? 0.9 : 0.6,
    nextSteps: coverageSteps(node, both ? undefined : gs[0]!.net, gs[0]!.reason, gs[0]!.pod),
  });
}

export function coverageGaps(ctx: Ctx): Draft[] {
  return [...gapsByNode(ctx)]
    .sort((a, b) => cmp(a[0], b[0]))
    .map(([node, gs]) => gapDraft(ctx, node, gs));
}
