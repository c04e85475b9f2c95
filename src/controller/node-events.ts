// Node-scoped findings as Events on the Node object, where `kubectl describe node` shows them
// next to the kubelet's own. Pure: which node a finding is about, which of a round's
// transitions become Node Events (bounded per round, only for Nodes the controller knows),
// and what each Event says. The controller writes them through its EventSink.
//
// Which node a finding is about is read from the finding's data, never from its kind:
//  1. its subject names one of its `nodes`, optionally with the network (`node-2`,
//     `node-2/host`): node-isolated, a hub's overlay-broken, cni-unhealthy, coverage-gap ...
//     list peers or witnesses in `nodes` too, but the subject says whose fault it is;
//  2. otherwise, when `nodes` holds exactly one node, that node (e.g. a DNS replica or a port
//     target failing from one node only);
//  3. otherwise none: a pair, a zone pair or a cluster-wide finding is about no single Node.

import type { Finding } from '../api/findings.ts';
import type { RoundChanges } from './findings.ts';

/**
 * The reasons of Node Events: one stable pair for every kind (the kind is in the message), so
 * `kubectl get events -A --field-selector reason=PodmeshFindingOpened` finds all of them and a
 * new finding kind needs no new reason; the prefix tells them apart from the kubelet's.
 */
export const NODE_EVENT_REASONS = {
  opened: 'PodmeshFindingOpened',
  cleared: 'PodmeshFindingCleared',
} as const;

/** Why a transition was not written on its Node: the `reason` of the dropped counter. */
export const NODE_EVENT_DROPS = ['cap', 'unknown-node'] as const;
export type NodeEventDrop = (typeof NODE_EVENT_DROPS)[number];

export type Transition = keyof typeof NODE_EVENT_REASONS;

/** One Event to write on one Node. */
export interface NodeEvent {
  readonly node: string;
  readonly transition: Transition;
  readonly type: 'Warning' | 'Normal';
  readonly reason: string;
  readonly message: string;
}

export interface NodeEventPlan {
  readonly events: readonly NodeEvent[];
  readonly dropped: Readonly<Record<NodeEventDrop, number>>;
}

/** The one node a finding is about (rules in the header), or undefined. */
export function findingNode(f: Finding): string | undefined {
  const slash = f.subject.lastIndexOf('/');
  const net = slash >= 0 ? f.subject.slice(slash + 1) : '';
  const subjectNode = net === 'pod' || net === 'host' ? f.subject.slice(0, slash) : f.subject;
  if (f.nodes.includes(subjectNode)) return subjectNode;
  const distinct = new Set(f.nodes);
  return distinct.size === 1 ? f.nodes[0] : undefined;
}

/** Event messages stay short: `describe node` prints each on one line. */
const MAX_TITLE = 300;

export function nodeEventOf(f: Finding, node: string, transition: Transition): NodeEvent {
  const title = f.title.length > MAX_TITLE ? `${f.title.slice(0, MAX_TITLE - 1)}…` : f.title;
  const what =
    transition === 'opened' ? `[${f.severity}] ${f.kind}: ${title}` : `${f.kind} cleared: ${title}`;
  return {
    node,
    transition,
    // An info finding opening is news, not trouble; a clearing is always good news.
    type: transition === 'opened' && f.severity !== 'info' ? 'Warning' : 'Normal',
    reason: NODE_EVENT_REASONS[transition],
    message: `${what} (finding ${f.id}; evidence and next steps: podmesh diagnose)`,
  };
}

/**
 * A round's Node Events: one per transition of a node-scoped finding on a known Node, clearings
 * first (as the controller logs them), at most `maxPerRound`; the rest counted by reason.
 */
export function planNodeEvents(
  changes: RoundChanges,
  known: ReadonlySet<string>,
  maxPerRound: number,
): NodeEventPlan {
  const events: NodeEvent[] = [];
  const dropped: Record<NodeEventDrop, number> = { cap: 0, 'unknown-node': 0 };
  const all: [Finding, Transition][] = [
    ...changes.cleared.map((f): [Finding, Transition] => [f, 'cleared']),
    ...changes.opened.map((f): [Finding, Transition] => [f, 'opened']),
  ];
  for (const [f, transition] of all) {
    const node = findingNode(f);
    if (node === undefined) continue;
    if (!known.has(node)) dropped['unknown-node']++;
    else if (events.length >= maxPerRound) dropped.cap++;
    else events.push(nodeEventOf(f, node, transition));
  }
  return { events, dropped };
}
