// triage(): a pure function from one snapshot (matrix, coverage, agents' own health) to the
// findings that name the likely cause, each with evidence and next steps. Rules run broadest
// cause first and each takes the symptoms it explains, so a cut-off node is one finding and not
// dozens of pair findings. The rules and thresholds are described in docs/triage.md.

import { apiServerFindings } from './apiserver.ts';
import { buildContext } from './context.ts';
import { dnsFindings } from './dns/rules.ts';
import { coverageGaps } from './gaps.ts';
import { latencyFindings } from './latency/rules.ts';
import { cmp, type Ctx, type Draft, type Rule } from './model.ts';
import { resolveOptions, type TriageOptions } from './options.ts';
import { plumbing } from './plumbing/rules.ts';
import { portFindings } from './ports.ts';
import { agentTcpPorts } from './reachability/agent-tcp-port.ts';
import { reachability } from './reachability/rules.ts';
import { starvedProbers } from './self.ts';
import { FINDING_KINDS, type Finding, type Severity, type Snapshot } from './types.ts';

export { DEFAULT_TRIAGE_OPTIONS, resolveOptions, type TriageOptions } from './options.ts';

const SEVERITY_ORDER: Readonly<Record<Severity, number>> = { critical: 0, warning: 1, info: 2 };

/** Severity (critical first), then kind in FINDING_KINDS order, then subject. */
export function compareFindings(a: Finding, b: Finding): number {
  return (
    SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
    FINDING_KINDS.indexOf(a.kind) - FINDING_KINDS.indexOf(b.kind) ||
    cmp(a.subject, b.subject)
  );
}

/**
 * Every rule in order: each step only sees what the ones before left unexplained. A starved
 * prober's cells count nowhere; an agent's TCP port takes its tcp cells; the IP paths take the
 * links they explain; the plumbing (CNI/proxy Pods) names the IP finding on its node; latency
 * judges the links left (slow, not lossy); DNS, ports and the API server checks hold back what
 * the IP findings explain; coverage gaps last.
 */
export const TRIAGE_RULES: readonly Rule[] = [
  starvedProbers,
  agentTcpPorts,
  reachability,
  plumbing,
  latencyFindings,
  dnsFindings,
  portFindings,
  apiServerFindings,
  coverageGaps,
];

const MAX_EXPLAINS = 30;

/** Two rules reaching the same id describe the same thing: keep the first, note the second. */
function mergeDrafts(drafts: readonly Draft[]): Draft[] {
  const byId = new Map<string, Draft>();
  for (const d of drafts) {
    const prev = byId.get(d.id);
    if (prev !== undefined) {
      if (!prev.explains.includes(d.title)) prev.explains.push(d.title);
      continue;
    }
    byId.set(d.id, d);
  }
  return [...byId.values()];
}

/** A draft with the lines later rules credited to it, capped, as a finding. */
function toFinding(ctx: Ctx, d: Draft): Finding {
  const extra = ctx.extraExplains.get(d.id) ?? [];
  const all = [...new Set([...d.explains, ...extra])];
  const explains =
    all.length > MAX_EXPLAINS
      ? [...all.slice(0, MAX_EXPLAINS), `… and ${all.length - MAX_EXPLAINS} more`]
      : all;
  const { explains: _drop, ...rest } = d;
  return explains.length > 0 ? { ...rest, explains } : rest;
}

export function triage(snapshot: Snapshot, options: Partial<TriageOptions> = {}): Finding[] {
  const ctx = buildContext(snapshot, resolveOptions(options));
  const drafts = TRIAGE_RULES.flatMap((rule) => rule(ctx));
  return mergeDrafts(drafts)
    .map((d) => toFinding(ctx, d))
    .sort(compareFindings);
}
