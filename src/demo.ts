// `podmesh demo` (what `npm start` runs): several agents in one process on loopback addresses
// with static discovery, so a newcomer sees /metrics and the results API in seconds with no
// cluster and no root. Three "nodes" in two zones, each with a pod-network and a host-network
// agent, so every path kind (pod-to-pod, pod-to-host, host-to-pod, host-to-host) shows up.

import type { Logger } from 'pino';
import { Agent } from './agent.ts';
import { loadConfig, type ConfigSources } from './config/load.ts';
import { StaticPeerSource, peerFromStatic } from './discovery/peer-source.ts';
import type { StaticPeer } from './config/settings.ts';
import { VERSION } from './version.ts';

export interface DemoOptions {
  readonly nodes: number;
  readonly httpPort: number;
  readonly sources: ConfigSources;
  readonly log: Logger;
}

export interface DemoAgentInfo {
  readonly node: string;
  readonly network: 'pod' | 'host';
  readonly url: string;
}

export interface Demo {
  readonly agents: readonly Agent[];
  readonly info: readonly DemoAgentInfo[];
  stop(drainMs?: number): Promise<void>;
}

/** Loopback layout: host agents on 127.0.10.N, pod agents on 127.0.20.N (N = node number). */
export function demoPeers(nodes: number, httpPort: number): StaticPeer[] {
  const peers: StaticPeer[] = [];
  for (let i = 1; i <= nodes; i++) {
    for (const network of ['pod', 'host'] as const) {
      peers.push({
        node: `demo-node-${i}`,
        network,
        zone: i % 2 === 1 ? 'zone-a' : 'zone-b',
        address: `127.0.${network === 'host' ? 10 : 20}.${i}`,
        httpPort,
        stampPort: httpPort + 2,
        tcpPort: httpPort + 3,
      });
    }
  }
  return peers;
}

export async function startDemo(o: DemoOptions): Promise<Demo> {
  const peers = demoPeers(o.nodes, o.httpPort);
  const agents: Agent[] = [];
  // Agents learn their peers only once all are listening, so the first probes aren't lost to
  // agents that haven't started yet.
  const sources: StaticPeerSource[] = [];
  try {
    for (const p of peers) {
      const config = loadConfig({
        ...o.sources,
        overrides: {
          node: p.node,
          network: p.network,
          zone: p.zone,
          address: p.address,
          advertiseAddress: p.address,
          httpAddress: p.address,
          httpPort: p.httpPort,
          stampPort: p.stampPort,
          tcpPort: p.tcpPort,
          'peers.static': peers,
        },
      });
      const peerSource = new StaticPeerSource([]);
      sources.push(peerSource);
      agents.push(
        await Agent.start({
          config,
          peerSource,
          version: VERSION,
          log: o.log.child({ agent: `${p.node}/${p.network}` }),
        }),
      );
    }
    for (const s of sources) s.set(peers.map(peerFromStatic));
  } catch (e) {
    await Promise.all(agents.map((a) => a.stop()));
    throw e;
  }
  const info = peers.map((p) => ({
    node: p.node,
    network: p.network,
    url: `http://${p.address}:${p.httpPort}`,
  }));
  return {
    agents,
    info,
    stop: async (drainMs = 0) => {
      await Promise.all(agents.map((a) => a.stop(drainMs)));
    },
  };
}
