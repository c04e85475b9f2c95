// Test and bench helper: the agents of a made-up cluster as peer lists, the input of peer
// selection, the core plan and the rotation (src/mesh). One builder, so the selection and series
// benches and the mesh tests plan over the same shape of cluster (one pod and one host agent a
// node, zones) instead of each copying its own.

import type { Network, Peer, Self } from '../../src/core/types.ts';

/**
 * One agent as a peer. Address and ports are the shipped defaults; selection and planning never
 * read them (they go by id, node and zone), only the probes would.
 */
export function agentPeer(node: string, zone: string, network: Network = 'pod'): Peer {
  return {
    id: `${node}/${network}`,
    node,
    network,
    zone,
    address: '10.0.0.1',
    stampPort: 9862,
    tcpPort: 9863,
    httpPort: 9860,
  };
}

/** A node's pod and host agents. */
export function nodeAgents(node: string, zone: string): Peer[] {
  return [agentPeer(node, zone, 'pod'), agentPeer(node, zone, 'host')];
}

/**
 * The benches' cluster: `nodes` nodes named as on EC2 (ip-10-0-x-y.ec2.internal) over 3 zones,
 * round robin, a pod and a host agent on each.
 */
export function benchCluster(nodes: number): Peer[] {
  const out: Peer[] = [];
  for (let i = 0; i < nodes; i++)
    out.push(
      ...nodeAgents(`ip-10-0-${Math.floor(i / 250)}-${i % 250}.ec2.internal`, `zone-${i % 3}`),
    );
  return out;
}

/** The agent a peer stands for, as that agent sees itself (planPeers' `self`). */
export const asSelf = (p: Peer): Self => ({
  node: p.node,
  network: p.network,
  zone: p.zone,
  address: '',
});
