// What one peer-list change means, computed once by the agent and handed to everyone who keeps
// per-peer state (the window store, the metrics, the engines' probes), so they never each work
// out the set difference again.

/** The peers of a new list against the previous one, by id. */
export interface PeerDiff<P extends { readonly id: string }> {
  /** In the new list, not in the previous one. */
  readonly arrived: readonly P[];
  /** In the previous list (as they were there), not in the new one. */
  readonly departed: readonly P[];
  /** In both; as they are in the new list (an address may have changed). */
  readonly kept: readonly P[];
}

export function diffPeers<P extends { readonly id: string }>(
  before: readonly P[],
  after: readonly P[],
): PeerDiff<P> {
  const was = new Set(before.map((p) => p.id));
  const is = new Set(after.map((p) => p.id));
  return {
    arrived: after.filter((p) => !was.has(p.id)),
    departed: before.filter((p) => !is.has(p.id)),
    kept: after.filter((p) => was.has(p.id)),
  };
}

/** True when the change added or removed a peer (a peer that only moved is not a change). */
export function peersChanged(diff: PeerDiff<{ readonly id: string }>): boolean {
  return diff.arrived.length > 0 || diff.departed.length > 0;
}
