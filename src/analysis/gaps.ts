// Coverage gaps: nodes where podmesh has no working agent of a kind, from the controller's
// coverage (no Ready agent, with the reason) and from agents it can't read. An agent that
// can't be read because its node is cut off is the isolation finding's symptom, not a gap; so is
// one behind an MTU black hole (the controller's pull carries full-size packets too). An agent
// its peers can't reach either right now (their newest probes to it all fail) is a cut not yet
// proven, and a read failure younger than readGraceSeconds may be one the peers' rows predate:
// both are held back, so a cut node is one node-isolated finding, never a gap on the way.

import { addExplains, draft } from './drafts.ts';
import { validRun } from './fresh.ts';
import { agentKey, cmp, finite, type Ctx, type Draft } from './model.ts';
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

/** An MTU finding that took MTU-sized probes to this agent: the controller's pull hits it too. */
function mtuExplained(ctx: Ctx, node: string, net: 'pod' | 'host'): string | undefined {
  for (const l of ctx.links.values()) {
    if (l.targetNode !== node || l.targetNet !== net || l.cls === 'local') continue;
    for (const c of l.cells) {
      const id = c.size === 'mtu' ? ctx.takenCells.get(c) : undefined;
      if (id?.startsWith('mtu-blackhole:') === true) return id;
    }
  }
  return undefined;
}

/**
 * Whether the peers can't reach this agent right now: their newest small probes to it, on every
 * cross-node cell that says (the trailing run), failed. Returns the finding that took those
 * links, if any, or '' when none did yet.
 */
function peersFailNow(ctx: Ctx, node: string, net: 'pod' | 'host'): string | undefined {
  let failing = 0;
  let by = '';
  for (const l of ctx.links.values()) {
    if (l.targetNode !== node || l.targetNet !== net || l.cls === 'local') continue;
    for (const c of l.cells) {
      if (c.size !== 'small') continue;
      const r = validRun(finite(c.sent), finite(c.lost), c.run);
      if (r === undefined) continue;
      if (r.ok) return undefined;
      failing++;
      by ||= ctx.explainedLinks.get(l.key) ?? '';
    }
  }
  return failing > 0 ? by : undefined;
}

/** Whether the agent was read within readGraceSeconds of this matrix (a failure too new). */
function readFailureIsNew(ctx: Ctx, lastSeen: string | null): boolean {
  if (lastSeen === null) return false;
  const now = Date.parse(ctx.snapshot.matrix?.generatedAt ?? '');
  const seen = Date.parse(lastSeen);
  if (!Number.isFinite(now) || !Number.isFinite(seen)) return false;
  return now - seen < ctx.opts.readGraceSeconds * 1000;
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
    if (a.state === 'unreachable' || a.state === 'timeout') {
      const why = reachExplained(ctx, a.node, a.network) ?? mtuExplained(ctx, a.node, a.network);
      const held = why ?? peersFailNow(ctx, a.node, a.network);
      if (held !== undefined) {
        if (held !== '')
          addExplains(
            ctx,
            held,
            `coverage-gap:${agentKey(a.node, a.network)} (the controller can't reach it)`,
          );
        continue;
      }
      // A refused connection is an agent not listening, never a cut: no grace for it.
      if (!/refused/i.test(a.detail ?? '') && readFailureIsNew(ctx, a.lastSeen)) continue;
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
