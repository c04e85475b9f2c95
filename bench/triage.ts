// The bench's triage section: triage on generated scenarios (test/support/scenarios.ts), as the
// property test in `npm test` does but over many more: random single faults at random levels
// from 1% to 100% on random topologies (2–6 nodes, 20–120 probes per cell), plus healthy
// clusters. A false finding is a scenario where triage names any kind the fault can't be
// (allowedKinds); a miss is a strong fault (losing at least half its probes, or round trips 4×
// their baseline: isStrong) that nothing names. Latency faults (1.05× to 20×) are among them.

import { triage } from '../src/analysis/triage.ts';
import {
  allowedKinds,
  describeFault,
  generate,
  isStrong,
  randomScenario,
} from '../test/support/scenarios.ts';

export interface TriageScenarioReport {
  readonly scenarios: number;
  readonly falseFindings: number;
  /** falseFindings / scenarios. */
  readonly falseRate: number;
  /** Faults losing at least half their probes where they apply. */
  readonly strong: number;
  readonly missed: number;
  /** Scenarios and false findings per fault type. */
  readonly byFault: Record<string, { scenarios: number; falseFindings: number }>;
  /** The first few false findings, described. */
  readonly examples: string[];
  /** The first strong faults nothing named, with what was named instead. */
  readonly missedExamples: string[];
  readonly seconds: number;
}

export function runTriageScenarios(n: number, firstSeed = 1): TriageScenarioReport {
  const started = performance.now();
  let falseFindings = 0;
  let strong = 0;
  let missed = 0;
  const byFault: Record<string, { scenarios: number; falseFindings: number }> = {};
  const examples: string[] = [];
  const missedExamples: string[] = [];
  for (let seed = firstSeed; seed < firstSeed + n; seed++) {
    const { topo, fault } = randomScenario(seed);
    const found = triage(generate(topo, fault, seed));
    const allowed = allowedKinds(fault, topo);
    const wrong = found.filter((f) => !allowed.has(f.kind));
    const b = (byFault[fault.type] ??= { scenarios: 0, falseFindings: 0 });
    b.scenarios++;
    if (wrong.length > 0) {
      falseFindings++;
      b.falseFindings++;
      if (examples.length < 10)
        examples.push(
          `seed ${seed}: ${describeFault(fault)} (${topo.nodes} nodes, ${topo.probes} probes): ${wrong.map((f) => f.id).join(', ')}`,
        );
    }
    if (isStrong(fault)) {
      strong++;
      if (!found.some((f) => allowed.has(f.kind))) {
        missed++;
        if (missedExamples.length < 10)
          missedExamples.push(
            `seed ${seed}: ${describeFault(fault)} (${topo.nodes} nodes, ${topo.probes} probes): ${found.map((f) => f.id).join(', ') || 'nothing'}`,
          );
      }
    }
  }
  return {
    scenarios: n,
    falseFindings,
    falseRate: falseFindings / n,
    strong,
    missed,
    byFault,
    examples,
    missedExamples,
    seconds: (performance.now() - started) / 1000,
  };
}
