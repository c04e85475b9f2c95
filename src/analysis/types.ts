// The contract of triage: what it reads (a Snapshot of the matrix, DNS, ports, coverage and
// the agents' own health) and what it says (Findings). Plain data only, so the controller, the
// web UI, `podmesh diagnose` and the table tests all share one shape.

// The data model triage reads is imported here only, and the rest of the analysis takes it from
// this file, so where the matrix and coverage shapes live is named on these two lines.
import type { AgentCoverage, NodeCoverage } from '../controller/coverage.ts';
import type { AgentStatus, Cell, DnsCell, Matrix, PortCell } from '../controller/matrix.ts';

export type { AgentCoverage, AgentStatus, Cell, DnsCell, Matrix, NodeCoverage, PortCell };

/** Everything triage looks at, taken at one moment. */
export interface Snapshot {
  readonly matrix: Matrix;
  /** undefined when nobody can tell (static lists, the demo). */
  readonly coverage: readonly NodeCoverage[] | undefined;
}

/** Closed set of what triage can conclude; also the `kind` label of podmesh_finding_active. */
export const FINDING_KINDS = [
  /** Everything to and from one node fails (both networks, most peers). */
  'node-isolated',
  /** Cross-node pod traffic fails while same-node pod traffic and the host network work: overlay / CNI dataplane. */
  'overlay-broken',
  /** Host-to-host fails too between some nodes: node network, firewall, routes. */
  'host-network',
  /** Small probes answered, MTU-sized probes lost on the same pairs. */
  'mtu-blackhole',
  /** One DNS replica fails while the others and the IP paths work. */
  'dns-replica',
  /** The DNS Service VIP fails while the replicas answer directly (kube-proxy / Service plumbing). */
  'dns-service',
  /** Every DNS server fails (VIP and all replicas) while IP paths work. */
  'dns-all',
  /** Only the external name fails: the cluster DNS's upstream. */
  'dns-upstream',
  /** A port target expected open times out (policy or firewall drop) while other probes work. */
  'port-blocked',
  /** A port target expected open is refused (nothing listening, or a REJECT rule). */
  'port-refused',
  /** A port target expected closed accepts connections: a policy that should hold does not. */
  'port-unexpectedly-open',
  /** A→B fails while B→A works. */
  'asymmetric-path',
  /** Only traffic between two zones fails. */
  'zone-pair',
  /** Loss on individual pairs that no broader cause explains. */
  'pair-loss',
  /** A node without a Ready agent of a kind, with the reason. */
  'coverage-gap',
  /** The prober's own scheduling is late: its latency numbers are held back. */
  'prober-starved',
] as const;
export type FindingKind = (typeof FINDING_KINDS)[number];

export type Severity = 'critical' | 'warning' | 'info';

/** One number or fact behind a finding, so a reader can check the reasoning. */
export interface Evidence {
  /** Plain sentence, e.g. "node-1 → node-3 pod-to-pod udp small: 60 of 60 lost". */
  readonly text: string;
  readonly sourceNode?: string;
  readonly targetNode?: string;
  readonly path?: string;
  readonly protocol?: string;
  readonly size?: string;
  readonly server?: string;
  readonly target?: string;
  /** The figure the text states (a loss ratio, a p99 in seconds, an answered ratio ...). */
  readonly value?: number;
}

export interface NextStep {
  /** What to check or do and why. */
  readonly text: string;
  /** A command to run, filled with the real names (kubectl, ip, nft, dig ...), if any. */
  readonly command?: string;
}

export interface Finding {
  /** Stable identity: `${kind}:${subject}`, so the same fault keeps its id across rounds. */
  readonly id: string;
  readonly kind: FindingKind;
  readonly severity: Severity;
  /**
   * What it is about, as one label value: a node (`node-2`), a pair (`node-1->node-2`), a zone
   * pair (`zone-a<->zone-b`), a DNS server (`service`, `node-3`), a port target, optionally
   * with the network (`node-2/host`).
   */
  readonly subject: string;
  /** The entities involved, for filtering and highlighting in the UI. */
  readonly nodes: readonly string[];
  readonly zones?: readonly string[];
  readonly servers?: readonly string[];
  readonly targets?: readonly string[];
  /** One line: "node-3 is isolated". */
  readonly title: string;
  /** A few sentences: what is seen and what it most likely means. */
  readonly summary: string;
  readonly evidence: readonly Evidence[];
  /** 0..1: how sure triage is that this is the cause. */
  readonly confidence: number;
  readonly nextSteps: readonly NextStep[];
  /** Ids or descriptions of symptoms this finding explains and that are therefore not reported. */
  readonly explains?: readonly string[];
}

/** What /api/v1/findings serves. */
export interface FindingsReport {
  readonly apiVersion: 'podmesh.io/v1';
  readonly kind: 'Findings';
  readonly generatedAt: string;
  /** Matrix time the findings were computed from. */
  readonly matrixAt: string | null;
  /** False when this controller runs without triage (then findings is always empty). */
  readonly triage: boolean;
  /** Open findings; `since` is when each opened (it stays open a round or two after it fades). */
  readonly findings: readonly (Finding & { readonly since: string })[];
}
