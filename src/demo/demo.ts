// `podmesh demo` (what `npm start` runs): several agents in one process on loopback addresses
// with static discovery, so a newcomer sees /metrics and the results API in seconds with no
// cluster and no root. Three "nodes" in two zones, each with a pod-network and a host-network
// agent, so every path kind (pod-to-pod, pod-to-host, host-to-pod, host-to-host) shows up.
// DNS too: a small authoritative server of the demo's own on 127.0.40.1 (the "DNS Service VIP")
// and two "replicas" on 127.0.40.2 and .3, serving a demo cluster zone and example.com; the
// agents get resolv.conf content pointing at the VIP (never the machine's own resolver).

import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { Agent } from '../agent/agent.ts';
import { triage } from '../analysis/triage.ts';
import { loadConfig, type ConfigSources } from '../config/load.ts';
import { StaticPeerSource, peerFromStatic } from '../discovery/peer-source.ts';
import type { StaticPeer } from '../config/settings.ts';
import { Controller, StaticDirectory } from '../controller/controller.ts';
import { SystemClock } from '../core/clock.ts';
import type { DemoFault } from '../api/demo-faults.ts';
import { DnsServer } from './dns-server.ts';
import { DemoFaultInjector, DemoPortTarget } from './faults.ts';
import { serveController } from '../server/controller-app.ts';
import { closeServer } from '../server/http.ts';
import { VERSION } from '../version.ts';

export interface DemoOptions {
  readonly nodes: number;
  readonly httpPort: number;
  /** The demo controller listens on 127.0.0.1:controllerPort (0: any free port). */
  readonly controllerPort: number;
  readonly sources: ConfigSources;
  readonly log: Logger;
  /** Faults to inject from the start (`podmesh demo --fault`); POST /api/v1/demo/faults later. */
  readonly faults?: readonly DemoFault[];
}

export interface DemoAgentInfo {
  readonly node: string;
  readonly network: 'pod' | 'host';
  readonly url: string;
}

export interface Demo {
  readonly agents: readonly Agent[];
  /** The demo's DNS servers: [0] is the "Service VIP", the rest the "replicas". */
  readonly dnsServers: readonly DnsServer[];
  readonly info: readonly DemoAgentInfo[];
  readonly controller: Controller;
  readonly controllerUrl: string;
  /** The demo's fault injection (src/demo/faults.ts), also at /api/v1/demo/faults. */
  readonly faults: DemoFaultInjector;
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

/** DNS layout: the "Service VIP" on .1, replicas on .2 and .3, all on the same port. */
export const DEMO_DNS = {
  vip: '127.0.40.1',
  replicas: ['127.0.40.2', '127.0.40.3'],
  clusterDomain: 'cluster.local',
  namespace: 'podmesh',
  external: 'example.com',
} as const;

/** The demo's DNS port: httpPort + 5, so several demos with distinct HTTP ports don't clash. */
export function demoDnsPort(httpPort: number): number {
  return httpPort + 5;
}

/** The demo's port target (port checks, ports.targets): "demo-web" on 127.0.50.1:httpPort+6. */
export function demoPortTarget(httpPort: number): DemoPortTarget {
  return new DemoPortTarget('demo-web', '127.0.50.1', httpPort + 6);
}

/** The records of the demo cluster zone: the API Service, each agent as a Pod, example.com. */
export function demoDnsRecords(peers: readonly StaticPeer[]): Record<string, string[]> {
  const d = DEMO_DNS;
  const records: Record<string, string[]> = {
    [`kubernetes.default.svc.${d.clusterDomain}`]: ['10.96.0.1'],
    [`kube-dns.kube-system.svc.${d.clusterDomain}`]: ['10.96.0.10'],
    [d.external]: ['192.0.2.80'],
    [`www.${d.external}`]: ['192.0.2.80'],
  };
  // A headless service with every agent, and a name per agent (as a StatefulSet would have).
  const agents = `podmesh-agent.${d.namespace}.svc.${d.clusterDomain}`;
  records[agents] = peers.map((p) => p.address);
  for (const p of peers) records[`${p.node}-${p.network}.${agents}`] = [p.address];
  return records;
}

/** resolv.conf as a Pod in the demo namespace would have it, pointing at the demo VIP. */
export function demoResolvConf(): string {
  const d = DEMO_DNS;
  return [
    `nameserver ${d.vip}`,
    `search ${d.namespace}.svc.${d.clusterDomain} svc.${d.clusterDomain} ${d.clusterDomain}`,
    'options ndots:5',
    '',
  ].join('\n');
}

async function startDemoDns(peers: readonly StaticPeer[], port: number): Promise<DnsServer[]> {
  const d = DEMO_DNS;
  const servers: DnsServer[] = [];
  try {
    for (const address of [d.vip, ...d.replicas])
      servers.push(
        await DnsServer.start({
          address,
          port,
          zones: [d.clusterDomain, d.external],
          records: demoDnsRecords(peers),
        }),
      );
  } catch (e) {
    await Promise.all(servers.map((s) => s.close()));
    throw e;
  }
  return servers;
}

export async function startDemo(o: DemoOptions): Promise<Demo> {
  const peers = demoPeers(o.nodes, o.httpPort);
  const agents: Agent[] = [];
  const dnsPort = demoDnsPort(o.httpPort);
  const dnsServers = await startDemoDns(peers, dnsPort);
  const portTarget = demoPortTarget(o.httpPort);
  try {
    await portTarget.open();
  } catch (e) {
    await Promise.all(dnsServers.map((d) => d.close()));
    throw e;
  }
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
            'dns.port': dnsPort,
            'dns.intervalMs': 2000,
            'dns.clusterDomain': DEMO_DNS.clusterDomain,
            'dns.podName': `${p.node}-${p.network}.podmesh-agent.${DEMO_DNS.namespace}.svc.${DEMO_DNS.clusterDomain}`,
            'dns.externalName': DEMO_DNS.external,
            'dns.replicas': DEMO_DNS.replicas.map((address, i) => ({
              address,
              port: dnsPort,
              ...(i < o.nodes ? { node: `demo-node-${i + 1}` } : {}),
            })),
            'ports.targets': [
              {
                name: portTarget.name,
                address: portTarget.address,
                port: portTarget.port,
                expect: 'open',
              },
            ],
          },
        });
        const peerSource = new StaticPeerSource([]);
        sources.push(peerSource);
        return Agent.start({
          config,
          peerSource,
          version: VERSION,
          log: o.log.child({ agent: `${p.node}/${p.network}` }),
          resolvConf: demoResolvConf(),
          demoFaults: true,
        });
      }),
    );
    for (const r of started) if (r.status === 'fulfilled') agents.push(r.value);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    for (const s of sources) s.set(peers.map(peerFromStatic));
  } catch (e) {
    await Promise.all(agents.map((a) => a.stop()));
    await Promise.all(dnsServers.map((d) => d.close()));
    await portTarget.close();
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
    triage,
    log: (level, msg, fields) => clog[level](fields ?? {}, msg),
  });
  // Replicas by the node label the agents report them under (dns.replicas above).
  const replicas = new Map<string, DnsServer>();
  dnsServers.slice(1, 1 + o.nodes).forEach((d, i) => replicas.set(`demo-node-${i + 1}`, d));
  const faults = new DemoFaultInjector({
    nodes: [...new Set(peers.map((p) => p.node))],
    replicas,
    ports: [portTarget],
  });
  let served: { server: Server; port: number };
  try {
    await faults.apply(o.faults ?? []);
    served = await serveController(
      controller,
      '127.0.0.1',
      o.controllerPort,
      undefined,
      undefined,
      { demoFaults: faults },
    );
  } catch (e) {
    faults.close();
    await Promise.all(agents.map((a) => a.stop()));
    await Promise.all(dnsServers.map((d) => d.close()));
    await portTarget.close();
    throw e;
  }
  const { server, port } = served;
  return {
    agents,
    dnsServers,
    info,
    controller,
    controllerUrl: `http://127.0.0.1:${port}`,
    faults,
    stop: async (drainMs = 0) => {
      await controller.stop();
      await closeServer(server);
      faults.close();
      await Promise.all(agents.map((a) => a.stop(drainMs)));
      await Promise.all(dnsServers.map((d) => d.close()));
      await portTarget.close();
    },
  };
}
