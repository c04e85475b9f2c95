// `podmesh demo` (what `npm start` runs): several agents in one process on loopback addresses
// with static discovery, so a newcomer sees /metrics and the results API in seconds with no
// cluster and no root. Three "nodes" in two zones, each with a pod-network and a host-network
// agent, so every path kind (pod-to-pod, pod-to-host, host-to-pod, host-to-host) shows up.

import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { Agent } from './agent.ts';
import { loadConfig, type ConfigSources } from './config/load.ts';
import { StaticPeerSource, peerFromStatic } from './discovery/peer-source.ts';
import type { StaticPeer } from './config/settings.ts';
import { Controller, StaticDirectory } from './controller/controller.ts';
import { SystemClock } from './core/clock.ts';
import { createControllerApp } from './server/controller-app.ts';
import { closeServer, listen } from './server/http.ts';
import { VERSION } from './version.ts';

export interface DemoOptions {
  readonly nodes: number;
  readonly httpPort: number;
  /** The demo controller listens on 127.0.0.1:controllerPort (0: any free port). */
  readonly controllerPort: number;
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
  readonly controller: Controller;
  readonly controllerUrl: string;
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
    // Started side by side: each agent spends most of its start-up bringing up its engine
    // thread, so this is several times faster than one after another.
    const started = await Promise.allSettled(
      peers.map((p) => {
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
        return Agent.start({
          config,
          peerSource,
          version: VERSION,
          log: o.log.child({ agent: `${p.node}/${p.network}` }),
        });
      }),
    );
    for (const r of started) if (r.status === 'fulfilled') agents.push(r.value);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
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
  const clog = o.log.child({ component: 'controller' });
  const controller = new Controller({
    clock: new SystemClock(),
    directory: new StaticDirectory(info),
    pullIntervalMs: 2000,
    pullConcurrency: 8,
    pullTimeoutMs: 1500,
    version: VERSION,
    log: (level, msg, fields) => clog[level](fields ?? {}, msg),
  });
  let server: Server;
  try {
    server = await listen(
      createControllerApp({
        matrix: () => controller.matrix(),
        coverage: () => controller.coverage(),
        renderMetrics: () => controller.registry.metrics(),
        isReady: () => controller.matrix() !== undefined,
      }),
      '127.0.0.1',
      o.controllerPort,
    );
  } catch (e) {
    await Promise.all(agents.map((a) => a.stop()));
    throw e;
  }
  controller.start();
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : o.controllerPort;
  return {
    agents,
    info,
    controller,
    controllerUrl: `http://127.0.0.1:${port}`,
    stop: async (drainMs = 0) => {
      await controller.stop();
      await closeServer(server);
      await Promise.all(agents.map((a) => a.stop(drainMs)));
    },
  };
}
