// Who to blame for a set of bad node pairs: one node (a hub: bad with most of its peers), the
// whole cluster (most nodes are hubs), or just the pairs themselves. Shared by every link rule,
// so "one node's fault" means the same thing for isolation, overlay, MTU and loss.
//
// A hub needs at least two bad peers: with two nodes, or a node that only one peer can judge,
// a bad pair can't say which end is at fault, so it stays a pair.

import { cmp, pairKey } from './model.ts';

export interface Grouping {
  /** More than half of the nodes with data are hubs: call it cluster-wide. */
  readonly cluster: boolean;
  /** Nodes blamed, in the order they were picked (most clear-cut first). */
  readonly hubs: readonly string[];
  /** Bad peers of each hub (including other hubs). */
  readonly hubPeers: ReadonlyMap<string, readonly string[]>;
  /** Bad pairs no hub explains, as [a, b] with a < b. */
  readonly pairs: readonly (readonly [string, string])[];
}

/** What the hub search reads: the nodes, their bad and judged peers, and the thresholds. */
interface HubSearch {
  readonly nodes: readonly string[];
  readonly badPeers: ReadonlyMap<string, ReadonlySet<string>>;
  readonly knownOf: (x: string) => ReadonlySet<string>;
  readonly hubShare: number;
  readonly minHubPeers: number;
}

/**
 * The next hub: the node whose bad pairs not yet explained make the largest share of its judged
 * peers (ties: more bad pairs, then the name), at least hubShare of them; undefined when none.
 */
function pickHub(
  { nodes, badPeers, knownOf, hubShare, minHubPeers }: HubSearch,
  hubs: readonly string[],
  remaining: ReadonlySet<string>,
): { x: string; share: number; rb: number } | undefined {
  let best: { x: string; share: number; rb: number } | undefined;
  for (const x of nodes) {
    if (hubs.includes(x)) continue;
    const orig = badPeers.get(x)?.size ?? 0;
    const k = knownOf(x);
    if (orig < minHubPeers || orig / k.size < hubShare) continue;
    // Judged again without the hubs already picked: a pair with a hub is already explained.
    const rk = [...k].filter((y) => !hubs.includes(y));
    const rb = rk.filter((y) => remaining.has(pairKey(x, y))).length;
    if (rb === 0 || rk.length === 0) continue;
    const share = rb / rk.length;
    if (share < hubShare) continue;
    if (
      best === undefined ||
      share > best.share ||
      (share === best.share && rb > best.rb) ||
      (share === best.share && rb === best.rb && cmp(x, best.x) < 0)
    )
      best = { x, share, rb };
  }
  return best;
}

/**
 * @param bad unordered bad pairs
 * @param known for each node, the peers whose pair with it could be judged (bad ones included)
 */
export function groupPairs(
  bad: Iterable<readonly [string, string]>,
  known: ReadonlyMap<string, ReadonlySet<string>>,
  hubShare: number,
  minHubPeers = 2,
): Grouping {
  const badSet = new Set<string>();
  const ends = new Map<string, readonly [string, string]>();
  const badPeers = new Map<string, Set<string>>();
  const add = (x: string, y: string): void => {
    const s = badPeers.get(x) ?? new Set<string>();
    s.add(y);
    badPeers.set(x, s);
  };
  for (const [a, b] of bad) {
    if (a === b) continue;
    badSet.add(pairKey(a, b));
    ends.set(pairKey(a, b), a < b ? [a, b] : [b, a]);
    add(a, b);
    add(b, a);
  }
  const knownOf = (x: string): ReadonlySet<string> => {
    const k = new Set(known.get(x) ?? []);
    for (const y of badPeers.get(x) ?? []) k.add(y);
    return k;
  };
  const nodes = [...new Set([...known.keys(), ...badPeers.keys()])].sort(cmp);
  const remaining = new Set(badSet);
  const hubs: string[] = [];
  const hubPeers = new Map<string, string[]>();
  const search: HubSearch = { nodes, badPeers, knownOf, hubShare, minHubPeers };
  for (;;) {
    const best = pickHub(search, hubs, remaining);
    if (best === undefined) break;
    hubs.push(best.x);
    hubPeers.set(best.x, [...(badPeers.get(best.x) ?? [])].sort(cmp));
    for (const y of badPeers.get(best.x) ?? []) remaining.delete(pairKey(best.x, y));
  }
  const withData = nodes.filter((x) => knownOf(x).size > 0).length;
  const cluster = hubs.length >= 2 && hubs.length > withData / 2;
  const pairs = cluster ? [] : [...remaining].sort(cmp).map((k) => ends.get(k)!);
  return { cluster, hubs, hubPeers, pairs };
}

/** Adds a judged pair to a `known` map (both ends). */
export function addKnown(known: Map<string, Set<string>>, a: string, b: string): void {
  for (const [x, y] of [
    [a, b],
    [b, a],
  ] as const) {
    const s = known.get(x) ?? new Set<string>();
    s.add(y);
    known.set(x, s);
  }
}
