// The join between the plumbing and the IP paths: an overlay/pod-network finding on a node whose
// CNI or proxy agent is unhealthy names that agent as the likely cause, in its summary and its
// evidence. The network finding keeps its identity (what was measured) and the cni-unhealthy
// finding stays its own (what Kubernetes says); neither absorbs the other, so a CNI Pod flapping
// Ready never opens and clears the overlay finding. See docs/triage.md.

import type { Ctx } from '../model.ts';
import type { Evidence } from '../types.ts';
import { plumbingOf, podEvidence, podLabel, unhealthyOn } from './health.ts';

export interface PlumbingCause {
  readonly sentence: string;
  readonly evidence: readonly Evidence[];
}

/** What to add to a network finding on these nodes; undefined when their plumbing is fine. */
export function plumbingCause(ctx: Ctx, nodes: readonly string[]): PlumbingCause | undefined {
  const report = ctx.snapshot.plumbing;
  if (report === undefined) return undefined;
  const found = [...new Set(nodes)]
    .sort()
    .flatMap((n) => unhealthyOn(plumbingOf(report, n), report.atMs).map((u) => ({ n, u })));
  if (found.length === 0) return undefined;
  const named = found
    .slice(0, 3)
    .map(({ n, u }) => `${podLabel(u)} on ${n} is ${u.why}`)
    .join('; ');
  return {
    sentence: ` Likely cause: ${named}${found.length > 3 ? ` (and ${found.length - 3} more)` : ''}.`,
    evidence: found.map(({ n, u }) => podEvidence(n, u)),
  };
}
