// The contract of triage: what it reads (a Snapshot of the matrix, DNS, ports, coverage and
// the agents' own health) and what it says (Findings). Plain data only, so the controller, the
// web UI, `podmesh diagnose` and the table tests all share one shape.

// The data model triage reads is imported here only (from the wire contract in src/api/), and
// the rest of the analysis takes it from this file.
import type { AgentCoverage, NodeCoverage } from '../api/coverage.ts';
import type { AgentStatus, ApiServerCell, Cell, DnsCell, Matrix, PortCell } from '../api/matrix.ts';
import type { NodePlumbing, PlumbingPod, PlumbingReport } from '../api/plumbing.ts';

export type {
  AgentCoverage,
  AgentStatus,
  ApiServerCell,
  Cell,
  DnsCell,
  Matrix,
  NodeCoverage,
  NodePlumbing,
  PlumbingPod,
  PlumbingReport,
  PortCell,
};
// What triage says is a wire shape (/api/v1/findings): declared once, in src/api/findings.ts.
export {
  FINDING_KINDS,
  type Evidence,
  type Finding,
  type FindingKind,
  type FindingsReport,
  type NextStep,
  type Severity,
} from '../api/findings.ts';

/** Everything triage looks at, taken at one moment. */
export interface Snapshot {
  readonly matrix: Matrix;
  /** undefined when nobody can tell (static lists, the demo). */
  readonly coverage: readonly NodeCoverage[] | undefined;
  /** The CNI/proxy/CoreDNS Pods and sandbox errors per node; undefined without Kubernetes. */
  readonly plumbing?: PlumbingReport | undefined;
  /**
   * Each link's RTT over its own recent history (src/controller/latency-history.ts), for the
   * latency kinds. undefined without history (`podmesh diagnose` from one matrix, the first
   * rounds): then the latency kinds stay silent.
   */
  readonly baselines?: Baselines | undefined;
}

/** One RTT quantile's history: the median and MAD of its samples (seconds), and how many. */
export interface RttBaseline {
  readonly median: number;
  readonly mad: number;
  readonly samples: number;
}

/** A link's baseline: the history of its pooled small-probe RTT p50 and p99 (latency/rtt.ts). */
export interface LinkBaseline {
  readonly p50: RttBaseline;
  readonly p99: RttBaseline;
}

export interface Baselines {
  /** How far back the history reaches, minutes (for the evidence). */
  readonly minutes: number;
  /** By link key, `${sourceNode}/${sourceNet}>${targetNode}/${targetNet}` (model.ts linkKeyOf). */
  readonly links: ReadonlyMap<string, LinkBaseline>;
}
