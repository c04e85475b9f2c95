// Round-trip quantiles from the per-pair RTT histogram (podmesh_pair_round_trip_seconds), as the
// dashboards query them: pooled over any group of pairs (a pair, a node, a zone pair) and any
// range, which the deprecated quantile gauge could not do. The same shapes as the rule pack's
// podmesh.latency.rules, written out on raw series so they work without the rules and with the
// cluster variable set (recording rules drop the `cluster` label).

const BUCKET = 'podmesh_pair_round_trip_seconds_bucket';

/** histogram_quantile(q) of the pair buckets matching `sel`, pooled by `by`, over `range`. */
export function pairQuantile(q: number, by: string, sel: string, range: string): string {
  const group = by === '' ? 'le' : `le, ${by}`;
  return `histogram_quantile(${q}, sum by (${group}) (rate(${BUCKET}{${sel}}[${range}])))`;
}

/**
 * One zone per node from the agents' podmesh_agent_info, as `<side>_node` and `<side>_zone`
 * (one series per node even while its two agents disagree; per cluster, where node names may
 * repeat).
 */
function zoneOf(side: 'source' | 'target'): string {
  const info =
    'topk by (cluster, source_node) (1, max by (cluster, source_node, zone) (podmesh_agent_info{zone!=""}))';
  const zone = `label_replace(${info}, "${side}_zone", "$1", "zone", "(.*)")`;
  return side === 'source'
    ? zone
    : `label_replace(${zone}, "target_node", "$1", "source_node", "(.*)")`;
}

/** histogram_quantile(q) per ordered zone pair (source_zone, target_zone), over `range`. */
export function zonePairQuantile(q: number, sel: string, range: string): string {
  return (
    `histogram_quantile(${q}, sum by (le, source_zone, target_zone) (` +
    `rate(${BUCKET}{${sel}}[${range}])` +
    ` * on (cluster, source_node) group_left (source_zone) ${zoneOf('source')}` +
    ` * on (cluster, target_node) group_left (target_zone) ${zoneOf('target')}))`
  );
}
