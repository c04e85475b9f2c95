// triage(): a pure function from one snapshot (matrix, coverage, agents' own health) to the
// findings that name the likely cause, each with evidence and next steps. Rules run broadest
// cause first and each takes the symptoms it explains, so a cut-off node is one finding and not
// dozens of pair findings. The rules and thresholds are described in docs/triage.md.

import { coverageGaps } from './gaps.ts';
import { dnsFindings } from './dns.ts';
import { buildContext, cmp, type Draft } from './model.ts';
import { resolveOptions, type TriageOptions } from './options.ts';
import { portFindings } from './ports.ts';
import { agentTcpPorts, reachability } from './reachability.ts';
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

const MAX_EXPLAINS = 30;

export function triage(snapshot: Snapshot, options: Partial<TriageOptions> = {}): Finding[] {
  const opts = resolveOptions(options);
  const ctx = buildContext(snapshot, opts);
  const drafts: Draft[] = [];
  // Order matters: each step only sees what the ones before left unexplained.
  drafts.push(...starvedProbers(ctx));
  drafts.push(...agentTcpPorts(ctx));
  ctx.smallTallies.clear();
  drafts.push(...reachability(ctx));
  drafts.push(...dnsFindings(ctx));
  drafts.push(...portFindings(ctx));
  drafts.push(...coverageGaps(ctx));

  const byId = new Map<string, Draft>();
  for (const d of drafts) {
    const prev = byId.get(d.id);
    // Two rules reaching the same id describe the same thing: keep the first, note the second.
    if (prev !== undefined) {
      if (!prev.explains.includes(d.title)) prev.explains.push(d.title);
      continue;
    }
    byId.set(d.id, d);
  }
  const findings: Finding[] = [];
  for (const d of byId.values()) {
    const extra = ctx.extraExplains.get(d.id) ?? [];
    const all = [...new Set([...d.explains, ...extra])];
    const explains =
      all.length > MAX_EXPLAINS
        ? [...all.slice(0, MAX_EXPLAINS), `… and ${all.length - MAX_EXPLAINS} more`]
        : all;
    const { explains: _drop, ...rest } = d;
    findings.push(explains.length > 0 ? { ...rest, explains } : rest);
  }
  return findings.sort(compareFindings);
}
