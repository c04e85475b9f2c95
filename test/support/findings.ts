// Test helper: findings as triage reports them, for the controller tests that only need one to
// feed the tracker, the Events and the Node conditions (the triage tests build whole snapshots
// with fixtures.ts instead).

import type { Finding } from '../../src/analysis/types.ts';

/** node-isolated on `node`, listing it and the peers that can't reach it, as triage does. */
export function isolatedFinding(node: string, peers: readonly string[]): Finding {
  return {
    id: `node-isolated:${node}`,
    kind: 'node-isolated',
    severity: 'critical',
    subject: node,
    nodes: [node, ...peers].sort(),
    title: `${node} is isolated`,
    summary: 'test',
    evidence: [{ text: 'e' }],
    confidence: 0.9,
    nextSteps: [],
  };
}
