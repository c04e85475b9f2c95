// Picks the peer source the config asks for: static (peers.static) or Kubernetes (informers on
// agent Pods, Nodes and the DNS Service's EndpointSlices). "auto" means Kubernetes inside a
// cluster when no static peers are given.

import type { Logger } from 'pino';
import type { Config } from '../config/load.ts';
import { StaticPeerSource, type PeerSource } from './peer-source.ts';

export function resolveDiscoveryMode(
  cfg: Config,
  env: NodeJS.ProcessEnv = process.env,
): 'static' | 'kubernetes' {
  if (cfg.discovery.mode !== 'auto') return cfg.discovery.mode;
  return env['KUBERNETES_SERVICE_HOST'] !== undefined && cfg.peers.static.length === 0
    ? 'kubernetes'
    : 'static';
}

/**
 * The Kubernetes client library is loaded only when it is used: it alone would add tens of
 * MB to the resident size of every agent that runs with static peers.
 */
export async function createPeerSource(cfg: Config, log: Logger): Promise<PeerSource> {
  if (resolveDiscoveryMode(cfg) === 'static') return new StaticPeerSource(cfg.peers.static);
  const { KubernetesPeerSource } = await import('./kubernetes.ts');
  const k = cfg.kubernetes;
  return KubernetesPeerSource.fromEnvironment({
    ...(k.namespace !== '' ? { namespace: k.namespace } : {}),
    podSelector: k.podSelector,
    dnsNamespace: k.dnsNamespace,
    dnsService: k.dnsService,
    // The API server's endpoints are watched only when the agents check them and none are set.
    apiServerEndpoints: cfg.apiserver.enabled && cfg.apiserver.endpoints.length === 0,
    nodeGraceMs: k.nodeGraceMs,
    watchdogMs: k.watchdogMs,
    log: log.child({ component: 'discovery' }),
  });
}
