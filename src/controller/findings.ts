// Keeps the controller's findings across rounds: which are open, when each opened, and the
// transitions. A finding opens the first round triage reports it and clears only after it has
// been absent for `clearAfterRounds` rounds in a row, so a fault that flickers at the edge of a
// threshold writes one Event pair, not one per round. Pure bookkeeping: no I/O, no clock of its
// own (the caller passes the round's time).

import type { Finding } from '../api/findings.ts';

export interface TrackedFinding {
  readonly finding: Finding;
  /** ISO time the finding opened. */
  readonly since: string;
  /** Rounds in a row triage has not reported it (0 while it is reported). */
  readonly missedRounds: number;
}

export interface RoundChanges {
  readonly opened: readonly Finding[];
  readonly cleared: readonly Finding[];
}

export class FindingTracker {
  private readonly open = new Map<string, TrackedFinding>();

  constructor(private readonly clearAfterRounds = 2) {}

  /** Feeds one round's triage output; returns what opened and what cleared. */
  update(findings: readonly Finding[], nowMs: number): RoundChanges {
    const opened: Finding[] = [];
    const cleared: Finding[] = [];
    const seen = new Set<string>();
    for (const f of findings) {
      seen.add(f.id);
      const before = this.open.get(f.id);
      if (before === undefined) opened.push(f);
      this.open.set(f.id, {
        finding: f,
        since: before?.since ?? new Date(nowMs).toISOString(),
        missedRounds: 0,
      });
    }
    for (const [id, t] of this.open) {
      if (seen.has(id)) continue;
      const missed = t.missedRounds + 1;
      if (missed >= this.clearAfterRounds) {
        this.open.delete(id);
        cleared.push(t.finding);
      } else this.open.set(id, { ...t, missedRounds: missed });
    }
    return { opened, cleared };
  }

  /** Open findings, in triage's order for those reported this round, then the fading ones. */
  active(): TrackedFinding[] {
    return [...this.open.values()].sort((a, b) => a.missedRounds - b.missedRounds);
  }
}
