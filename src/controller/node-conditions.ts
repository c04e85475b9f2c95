// The opt-in Node condition (controller.nodeConditions, off by default), in the style of
// Gardener's network-problem-detector: remediation tools watch Node conditions, not Events.
// Pure: from the open findings and each Node's current condition (as the informer holds it),
// which Nodes need their condition written. A node-scoped finding (node-events.ts findingNode)
// of severity warning or critical sets PodmeshNetworkProblem=True on its Node; when the last
// one clears, the condition goes False. A Node that never had a problem is not written at all.
//
// State-based, not transition-based: what the Node says is compared with what it should say
// every round, so a restarted controller corrects a stale condition, and a write deferred by the
// per-round bound (or refused) is simply made in a later round; nothing is dropped.

import type { Finding } from '../api/findings.ts';
import { findingNode } from './node-events.ts';

export const NODE_CONDITION_TYPE = 'PodmeshNetworkProblem';

/** Writes a round at most; the rest follow in the next rounds. */
export const MAX_CONDITION_WRITES_PER_ROUND = 50;

/** At most this many finding ids are named in the condition's message. */
const MAX_IDS = 5;

export interface NodeConditionState {
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
}

/** A Node as the informer holds it: its name and its PodmeshNetworkProblem condition, if any. */
export interface NodeConditionView {
  readonly node: string;
  readonly current?: {
    readonly status?: string;
    readonly reason?: string;
    readonly message?: string;
    /** ISO time; kept when only the message changes. */
    readonly lastTransitionTime?: string;
  };
}

export interface NodeConditionWrite {
  readonly node: string;
  readonly condition: NodeConditionState;
  /** The status flips (or the condition is new): lastTransitionTime moves. */
  readonly transition: boolean;
  /** Without a transition: the condition's lastTransitionTime, kept. */
  readonly since?: string;
}

function problem(ids: readonly string[]): NodeConditionState {
  const named = ids.slice(0, MAX_IDS).join(', ');
  const more = ids.length > MAX_IDS ? ` and ${ids.length - MAX_IDS} more` : '';
  return {
    status: 'True',
    reason: 'PodmeshFindingsOpen',
    message: `podmesh findings open on this node: ${named}${more} (podmesh diagnose)`,
  };
}

const CLEAR: NodeConditionState = {
  status: 'False',
  reason: 'PodmeshNoFindings',
  message: 'no podmesh finding is open on this node',
};

/** The writes that bring every known Node's condition in line with the open findings. */
export function conditionWrites(
  open: readonly Finding[],
  nodes: readonly NodeConditionView[],
  max = MAX_CONDITION_WRITES_PER_ROUND,
): NodeConditionWrite[] {
  const ids = new Map<string, string[]>();
  for (const f of open) {
    if (f.severity === 'info') continue; // a slow prober is not a network problem
    const node = findingNode(f);
    if (node === undefined) continue;
    const list = ids.get(node) ?? [];
    list.push(f.id);
    ids.set(node, list);
  }
  const writes: NodeConditionWrite[] = [];
  for (const { node, current } of [...nodes].sort((a, b) => a.node.localeCompare(b.node))) {
    const mine = ids.get(node);
    // A Node that has no problem and never had our condition set True is left alone.
    if (mine === undefined && current?.status !== 'True') continue;
    const want = mine !== undefined ? problem([...mine].sort()) : CLEAR;
    if (
      current?.status === want.status &&
      current.reason === want.reason &&
      current.message === want.message
    )
      continue;
    const transition = current?.status !== want.status;
    const since = transition ? undefined : current?.lastTransitionTime;
    writes.push({ node, condition: want, transition, ...(since !== undefined ? { since } : {}) });
    if (writes.length >= max) break;
  }
  return writes;
}
