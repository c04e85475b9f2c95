// What triage says (GET /api/v1/findings on the controller): each finding names a cause, the
// evidence behind it and what to check next. The one declaration of that shape: triage
// (src/analysis) produces Findings, the controller keeps them open across rounds and serves the
// report, the web UI and `podmesh diagnose` render it.

import { z } from 'zod';
import { API_VERSION } from './agent-row.ts';
import { changeSchema } from './changes.ts';

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
  /** A port target expected open times out (policy or firewall drop, black hole) while other probes work. */
  'port-blocked',
  /** A port target expected open is refused with a TCP reset (nothing listening, or a reset rule). */
  'port-refused',
  /** A port target expected open is rejected with ICMP unreachable (a REJECT rule, no route). */
  'port-rejected',
  /** A port target expected closed accepts connections: a policy that should hold does not. */
  'port-unexpectedly-open',
  /** The API server (the `kubernetes` VIP, its endpoints) is unreachable from some nodes, or from all. */
  'apiserver-unreachable',
  /** A→B fails while B→A works. */
  'asymmetric-path',
  /** Only traffic between two zones fails. */
  'zone-pair',
  /** Loss on individual pairs that no broader cause explains. */
  'pair-loss',
  /** A CNI or kube-proxy agent Pod on a node is not Ready or keeps restarting. */
  'cni-unhealthy',
  /** The kubelet on a node keeps failing to set up Pod sandboxes (the CNI cannot add Pods). */
  'cni-sandbox-errors',
  /** Round trips between two zones are much slower than their own recent baseline. */
  'latency-zone-pair',
  /** Most of one node's links are much slower than their baselines: its NIC, CPU, link. */
  'latency-node',
  /** A pair is much slower than its baseline while losing nothing: slow, not lossy. */
  'latency-pair',
  /** A node without a Ready agent of a kind, with the reason. */
  'coverage-gap',
  /** The prober's own scheduling is late: its latency numbers are held back. */
  'prober-starved',
] as const;
export type FindingKind = (typeof FINDING_KINDS)[number];

export const SEVERITIES = ['critical', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** One number or fact behind a finding, so a reader can check the reasoning. */
export const evidenceSchema = z
  .object({
    /** Plain sentence, e.g. "node-1 → node-3 pod-to-pod udp small: 60 of 60 lost". */
    text: z.string(),
    sourceNode: z.string().optional(),
    targetNode: z.string().optional(),
    path: z.string().optional(),
    protocol: z.string().optional(),
    size: z.string().optional(),
    server: z.string().optional(),
    target: z.string().optional(),
    /** The figure the text states (a loss ratio, a p99 in seconds, an answered ratio ...). */
    value: z.number().optional(),
  })
  .readonly();
export type Evidence = z.infer<typeof evidenceSchema>;

export const nextStepSchema = z
  .object({
    /** What to check or do and why. */
    text: z.string(),
    /** A command to run, filled with the real names (kubectl, ip, nft, dig ...), if any. */
    command: z.string().optional(),
  })
  .readonly();
export type NextStep = z.infer<typeof nextStepSchema>;

// Readonly types (as triage has always treated its output); nothing parses these at run time,
// so zod's freezing of parsed values never applies.
const findingObject = z.object({
  /** Stable identity: `${kind}:${subject}`, so the same fault keeps its id across rounds. */
  id: z.string(),
  kind: z.enum(FINDING_KINDS),
  severity: z.enum(SEVERITIES),
  /**
   * What it is about, as one label value: a node (`node-2`), a pair (`node-1->node-2`), a zone
   * pair (`zone-a<->zone-b`), a DNS server (`service`, `node-3`), a port target, optionally
   * with the network (`node-2/host`).
   */
  subject: z.string(),
  /** The entities involved, for filtering and highlighting in the UI. */
  nodes: z.array(z.string()).readonly(),
  zones: z.array(z.string()).readonly().optional(),
  servers: z.array(z.string()).readonly().optional(),
  targets: z.array(z.string()).readonly().optional(),
  /** One line: "node-3 is isolated". */
  title: z.string(),
  /** A few sentences: what is seen and what it most likely means. */
  summary: z.string(),
  evidence: z.array(evidenceSchema).readonly(),
  /** 0..1: how sure triage is that this is the cause. */
  confidence: z.number().min(0).max(1),
  nextSteps: z.array(nextStepSchema).readonly(),
  /** Ids or descriptions of symptoms this finding explains and that are therefore not reported. */
  explains: z.array(z.string()).readonly().optional(),
});
export const findingSchema = findingObject.readonly();
export type Finding = z.infer<typeof findingSchema>;

/**
 * A finding the controller holds open, with when it opened and what changed in the cluster's
 * plumbing on its nodes around then (absent when nothing did, or without Kubernetes).
 */
export const openFindingSchema = findingObject
  .extend({ since: z.string(), changes: z.array(changeSchema).readonly().optional() })
  .readonly();
export type OpenFinding = z.infer<typeof openFindingSchema>;

export const findingsReportSchema = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal('Findings'),
    generatedAt: z.string(),
    /** Matrix time the findings were computed from. */
    matrixAt: z.string().nullable(),
    /** False when this controller runs without triage (then findings is always empty). */
    triage: z.boolean(),
    /** Open findings; `since` is when each opened (it stays open a round or two after it fades). */
    findings: z.array(openFindingSchema).readonly(),
  })
  .readonly();
export type FindingsReport = z.infer<typeof findingsReportSchema>;
