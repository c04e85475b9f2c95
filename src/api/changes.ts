// "What changed" around a finding: one change the controller saw in the cluster (a CNI,
// kube-proxy or CoreDNS Pod that restarted, flipped Ready or was replaced by a rollout, a new
// burst of Pod sandbox errors on a node, a Node that rebooted or flipped Ready, a NetworkPolicy
// created, changed or deleted, a cluster DNS ConfigMap such as the Corefile changed). The controller keeps them in a bounded timeline
// (src/controller/changes.ts) and attaches those near a finding's start to the open finding, so
// a reader sees what happened just before it opened. The one declaration of the shape.

import { z } from 'zod';
import { PLUMBING_ROLES } from './plumbing.ts';

/** Closed set of what a change can be; picks its wording in `podmesh diagnose`. */
export const CHANGE_KINDS = [
  /** A plumbing Pod's restart count went up (detail: the last termination's reason). */
  'pod-restarted',
  /** A plumbing Pod's Ready condition went from True to False. */
  'pod-not-ready',
  /** A plumbing Pod's Ready condition went from False to True. */
  'pod-ready',
  /** A new Pod of the same component took another's place on the node (a rollout). */
  'pod-replaced',
  /** The kubelet began reporting FailedCreatePodSandBox on a node that had none in the window. */
  'sandbox-errors',
  /** A Node's boot ID changed: it rebooted. */
  'node-rebooted',
  /** A Node's Ready condition went from True to something else. */
  'node-not-ready',
  /** A Node's Ready condition went back to True. */
  'node-ready',
  /** A NetworkPolicy appeared (dated by its creation). */
  'network-policy-created',
  /** A NetworkPolicy's spec changed (its generation went up). */
  'network-policy-changed',
  /** A NetworkPolicy went away. */
  'network-policy-deleted',
  /** A cluster DNS ConfigMap (the Corefile: coredns, coredns-custom ...) changed, appeared or went away. */
  'dns-config-changed',
] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

export const changeSchema = z
  .object({
    /** When it happened (ISO): the container's end for a restart, else when it was seen. */
    at: z.string(),
    kind: z.enum(CHANGE_KINDS),
    /** The node it happened on; absent for a namespaced object (a NetworkPolicy). */
    node: z.string().optional(),
    /** The object's namespace, if it has one. */
    namespace: z.string().optional(),
    /** What changed: `kube-system/calico-node-x7k2p`, or the node (sandbox errors, Nodes). */
    object: z.string(),
    /** The label value that matched (calico-node, kube-proxy, kube-dns ...), for Pods. */
    component: z.string().optional(),
    role: z.enum(PLUMBING_ROLES).optional(),
    /** One sentence: "restarted (3 → 4), last ended OOMKilled". */
    detail: z.string(),
  })
  .readonly();
export type Change = z.infer<typeof changeSchema>;
