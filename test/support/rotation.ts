// Test helper: a fixture snapshot (fixtures.ts) as peers.rotation makes it (docs/scale.md): some
// node pairs are measured by rotating visits only, so their cells are small probes only, a few
// probes each, flagged `rotating` and stamped with when they were last measured. Every other
// cell is a core cell, measured up to the matrix's own time.

import type { SnapshotBuilder } from './fixtures.ts';

/** The matrix time of fixtures.ts' snapshots. */
export const MATRIX_AT = '2026-01-01T00:00:00.000Z';

export interface RotatingOptions {
  /** Probes per rotating cell (one a visit per kind). Default 4. */
  readonly probes?: number;
  /** When the rotating cells were last measured. Default 20 s before the matrix. */
  readonly measuredAt?: string;
}

/**
 * Makes the cross-node cells between each pair's two nodes (both ways, every path) rotating:
 * their MTU cells go (visits probe small sizes only), the rest hold `probes` probes, no loss.
 */
export function rotatingPairs(
  b: SnapshotBuilder,
  pairs: readonly (readonly [string, string])[],
  o: RotatingOptions = {},
): SnapshotBuilder {
  const probes = o.probes ?? 4;
  const at = o.measuredAt ?? '2025-12-31T23:59:40.000Z';
  const inPair = (s: string, t: string): boolean =>
    s !== t && pairs.some(([x, y]) => (s === x && t === y) || (s === y && t === x));
  const kept = b.cells.filter((c) => !(inPair(c.sourceNode, c.targetNode) && c.size === 'mtu'));
  b.cells.length = 0;
  b.cells.push(...kept);
  for (const c of b.cells) {
    const rotating = inPair(c.sourceNode, c.targetNode);
    c.rotating = rotating;
    c.measuredAt = rotating ? at : MATRIX_AT;
    if (!rotating) continue;
    c.sent = probes;
    c.lost = 0;
    c.lossRatio = 0;
    c.forwardLost = 0;
    c.reverseLost = 0;
    c.lastFailure = null;
  }
  return b;
}
