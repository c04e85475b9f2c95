// The plumbing rules, read from what the controller watched in Kubernetes (the CNI, kube-proxy
// and CoreDNS Pods, sandbox errors): run after the IP paths so cni-unhealthy can name the
// finding on its node. Without Kubernetes (static peers, a matrix file) the snapshot has no
// plumbing and these rules are silent.

import type { Rule } from '../model.ts';
import { cniUnhealthy } from './cni-unhealthy.ts';
import { sandboxErrors } from './sandbox.ts';

/** Every plumbing rule in order. */
export const PLUMBING_RULES: readonly Rule[] = [cniUnhealthy, sandboxErrors];

export const plumbing: Rule = (ctx) => PLUMBING_RULES.flatMap((rule) => rule(ctx));
