// The prober's own health: an agent whose probes start late (CPU starvation, throttling) counts
// slow answers as slow or lost, so its numbers describe the agent, not the network. It becomes
// one prober-starved finding and its cells are held back from every network rule.

import { cellEvidence, draft, pct, type Ranked } from './drafts.ts';
import { cellRatio } from './links.ts';
import { agentKey, type Ctx, type Draft } from './model.ts';
import { starvedSteps } from './next-steps/agents.ts';
import type { AgentStatus } from './types.ts';

function num(x: unknown): number | null {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

/** What an agent says about its own scheduling, and whether it is starved by either measure. */
interface Health {
  readonly late: number | null;
  readonly lateness: number | null;
  readonly loopMain: number | null;
  readonly loopEngine: number | null;
  readonly loop: number;
  readonly byLate: boolean;
  readonly byLoop: boolean;
}

function healthOf(ctx: Ctx, a: AgentStatus): Health | undefined {
  const self = a.self;
  if (self === undefined || self === null || typeof self !== 'object') return undefined;
  const late = num(self.lateRatio);
  const lateness = num(self.latenessP99Seconds);
  const loopMain = num(self.eventLoopP99Seconds?.main);
  const loopEngine = num(self.eventLoopP99Seconds?.engine);
  const loop = Math.max(loopMain ?? 0, loopEngine ?? 0);
  const byLate = late !== null && late >= ctx.opts.lateRatio;
  const byLoop = loop >= ctx.opts.eventLoopP99Seconds && loop > 0;
  return { late, lateness, loopMain, loopEngine, loop, byLate, byLoop };
}

/** The agent's own numbers, put first in the finding. */
function healthEvidence(a: AgentStatus, key: string, h: Health): Ranked[] {
  const lead: Ranked[] = [];
  if (h.late !== null)
    lead.push({
      text: `${key}: ${pct(h.late)} of probes started late${h.lateness !== null ? ` (p99 ${Math.round(h.lateness * 1000)} ms after their due time)` : ''}`,
      sourceNode: a.node,
      value: h.late,
    });
  if (h.loopMain !== null || h.loopEngine !== null)
    lead.push({
      text: `${key}: event-loop delay p99 main ${h.loopMain === null ? 'n/a' : `${Math.round(h.loopMain * 1000)} ms`}, engine ${h.loopEngine === null ? 'n/a' : `${Math.round(h.loopEngine * 1000)} ms`}`,
      sourceNode: a.node,
      value: h.loop,
    });
  return lead;
}

/** What is held back: its own cells that would have looked lossy or slow. */
function heldBackCells(ctx: Ctx, a: AgentStatus): { held: Ranked[]; heldCount: number } {
  const held: Ranked[] = [];
  let heldCount = 0;
  for (const l of ctx.links.values()) {
    if (l.sourceNode !== a.node || l.sourceNet !== a.network) continue;
    for (const c of l.cells) {
      const r = cellRatio(c);
      const p99 = num(c.rttSeconds?.p99);
      if (r !== null && r >= ctx.opts.lossyRatio) {
        held.push({ ...cellEvidence(c, ' (held back)'), rank: 1 + r });
        heldCount++;
      } else if (p99 !== null && p99 > 0) {
        held.push({
          ...cellEvidence(c, ` (held back; rtt p99 ${(p99 * 1000).toFixed(1)} ms)`),
          rank: 0,
        });
      }
    }
  }
  return { held, heldCount };
}

/** Marks starved agents untrusted and returns their findings; runs before any network rule. */
export function starvedProbers(ctx: Ctx): Draft[] {
  const out: Draft[] = [];
  for (const a of ctx.agents.values()) {
    const h = healthOf(ctx, a);
    if (h === undefined || (!h.byLate && !h.byLoop)) continue;
    const key = agentKey(a.node, a.network);
    const id = `prober-starved:${key}`;
    ctx.untrusted.set(key, id);
    const lead = healthEvidence(a, key, h);
    const { held, heldCount } = heldBackCells(ctx, a);
    out.push(
      draft(ctx, {
        kind: 'prober-starved',
        subject: key,
        severity: 'info',
        nodes: [a.node],
        title: `The prober ${key} is starved: its latency and loss are not trusted`,
        summary: `${key} starts its probes late, so answers look slow (or time out) because the agent itself runs late, not because the network does. Its results are held back from network findings until it recovers; fix the agent's CPU (node load, CPU limit) first.`,
        lead,
        evidence: held,
        confidence: h.byLate && h.byLoop ? 0.9 : 0.75,
        nextSteps: starvedSteps(a.node, a.network, a.url),
        explains:
          heldCount > 0
            ? [`${heldCount} lossy result${heldCount === 1 ? '' : 's'} from ${key} held back`]
            : [],
      }),
    );
  }
  return out;
}
