// Cluster plumbing health (the controller's snapshot for triage): per node, the Pods of the CNI,
// kube-proxy and CoreDNS DaemonSets/Deployments podmesh watches read-only (Ready, restarts, the
// last termination) and the Pod sandbox errors the kubelet reported there. The controller builds
// it from its reflectors (src/controller/plumbing.ts); triage (src/analysis/plumbing/) reads it.
// The one declaration of the shape: types are inferred from these schemas.

import { z } from 'zod';

/** What a watched Pod is to the cluster's plumbing; closed, it picks the finding's wording. */
export const PLUMBING_ROLES = ['cni', 'proxy', 'dns'] as const;
export type PlumbingRole = (typeof PLUMBING_ROLES)[number];

export const plumbingPodSchema = z
  .object({
    namespace: z.string(),
    name: z.string(),
    /** The label value that matched (calico-node, cilium, kube-proxy, kube-dns ...). */
    component: z.string(),
    role: z.enum(PLUMBING_ROLES),
    /** The Pod's Ready condition is True. */
    ready: z.boolean(),
    /** Container restarts summed over the Pod's containers. */
    restarts: z.number().int().nonnegative(),
    /** Why a container is waiting now (CrashLoopBackOff ...), if one is. */
    waitingReason: z.string().optional(),
    /** The most recent container termination: its reason and when it ended (ms since epoch). */
    lastTermination: z
      .object({ container: z.string(), reason: z.string(), atMs: z.number() })
      .readonly()
      .optional(),
  })
  .readonly();
export type PlumbingPod = z.infer<typeof plumbingPodSchema>;

/** Pod sandbox errors the kubelet reported on a node inside the window, from Events. */
export const sandboxErrorsSchema = z
  .object({
    /** Occurrences inside the window (an Event's count summed). */
    count: z.number().int().nonnegative(),
    /** Distinct Pods that failed, capped. */
    pods: z.array(z.string()).readonly(),
    lastAtMs: z.number(),
    lastMessage: z.string(),
  })
  .readonly();
export type SandboxErrors = z.infer<typeof sandboxErrorsSchema>;

export const nodePlumbingSchema = z
  .object({
    node: z.string(),
    pods: z.array(plumbingPodSchema).readonly(),
    /** undefined when none were reported inside the window. */
    sandboxErrors: sandboxErrorsSchema.optional(),
  })
  .readonly();
export type NodePlumbing = z.infer<typeof nodePlumbingSchema>;

export const plumbingReportSchema = z
  .object({
    /** When the controller built it (ms since epoch): triage judges "recent" against it. */
    atMs: z.number(),
    /** How far back sandbox errors were kept, so a reader knows what "inside the window" means. */
    sandboxWindowMs: z.number(),
    nodes: z.array(nodePlumbingSchema).readonly(),
  })
  .readonly();
export type PlumbingReport = z.infer<typeof plumbingReportSchema>;
