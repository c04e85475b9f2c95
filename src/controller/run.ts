// Starts `podmesh controller`: a Controller fed by Kubernetes discovery (or by peers.static
// when given), writing Events on coverage changes, served over HTTP.

import type { Server } from 'node:http';
import { triage } from '../analysis/triage.ts';
import type { Logger } from 'pino';
import type { Config } from '../config/load.ts';
import { SystemClock, type Clock } from '../core/clock.ts';
import {
  KubernetesPeerSource,
  kubeConfigFromEnvironment,
  namespaceFromEnvironment,
} from '../discovery/kubernetes.ts';
import { peerFromStatic } from '../discovery/peer-source.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import { serveController } from '../server/controller-app.ts';
import { closeServer } from '../server/http.ts';
import { Controller, StaticDirectory, type AgentDirectory } from './controller.ts';
import {
  KubernetesDirectory,
  KubernetesEventSink,
  KubernetesNodeConditions,
  nodeConditionView,
} from './kubernetes.ts';
import { PlumbingWatcher } from './plumbing.ts';
import { ChangeTimeline, type ChangeScope } from './changes.ts';
import {
  DnsConfigWatcher,
  PolicyWatcher,
  clusterState,
  parseConfigMapRefs,
} from './change-watch.ts';
import { LatencyHistory } from './latency-history.ts';
import { createPullFetch } from './pull-client.ts';

export interface RunningController {
  readonly controller: Controller;
  readonly url: string;
  stop(): Promise<void>;
}

export interface ControllerRunOptions {
  readonly config: Config;
  readonly log: Logger;
  readonly version: string;
  readonly clock?: Clock;
  /** Overrides the environment's kubeconfig (tests point it at a test API server). */
  readonly kubeConfig?: KubeConfig;
}

export async function runController(o: ControllerRunOptions): Promise<RunningController> {
  const { config: cfg, log } = o;
  const clock = o.clock ?? new SystemClock();
  // Before discovery starts: an unreadable CA or password file stops the controller here.
  const pullFetch = createPullFetch(cfg.controller);
  let directory: AgentDirectory;
  let events: KubernetesEventSink | undefined;
  let conditions: KubernetesNodeConditions | undefined;
  let source: KubernetesPeerSource | undefined;
  let plumbing: PlumbingWatcher | undefined;
  let policies: PolicyWatcher | undefined;
  let dnsConfigs: DnsConfigWatcher | undefined;
  let scope: ChangeScope | undefined;
  if (cfg.peers.static.length > 0 && cfg.discovery.mode !== 'kubernetes') {
    directory = new StaticDirectory(
      cfg.peers.static.map(peerFromStatic).map((p) => ({
        node: p.node,
        network: p.network,
        url: `http://${p.address}:${p.httpPort}`,
      })),
    );
  } else {
    const kubeConfig = o.kubeConfig ?? kubeConfigFromEnvironment();
    const namespace =
      cfg.kubernetes.namespace !== ''
        ? cfg.kubernetes.namespace
        : namespaceFromEnvironment(process.env, kubeConfig);
    source = new KubernetesPeerSource({
      kubeConfig,
      namespace,
      podSelector: cfg.kubernetes.podSelector,
      dnsService: '',
      nodeGraceMs: cfg.kubernetes.nodeGraceMs,
      watchdogMs: cfg.kubernetes.watchdogMs,
      clock,
      log: log.child({ component: 'discovery' }),
    });
    await source.start(() => undefined);
    directory = new KubernetesDirectory(source, kubeConfig, namespace, clock);
    events = new KubernetesEventSink(kubeConfig, namespace, clock, (msg) => log.warn(msg));
    if (cfg.controller.nodeConditions)
      conditions = new KubernetesNodeConditions(kubeConfig, clock, (msg) => log.warn(msg));
    // "What changed": NetworkPolicies of every namespace (the Nodes come from discovery).
    policies = new PolicyWatcher({
      kubeConfig,
      clock,
      log: log.child({ component: 'changes' }),
      watchdogMs: cfg.kubernetes.watchdogMs,
    });
    policies.start();
    const configMaps = parseConfigMapRefs(cfg.kubernetes.dnsConfigMaps);
    if (configMaps.length > 0) {
      dnsConfigs = new DnsConfigWatcher({
        kubeConfig,
        clock,
        log: log.child({ component: 'changes' }),
        watchdogMs: cfg.kubernetes.watchdogMs,
        configMaps,
      });
      dnsConfigs.start();
    }
    scope = { agentNamespace: namespace, dnsNamespace: cfg.kubernetes.dnsNamespace };
    const plumbingNamespaces = cfg.kubernetes.plumbingNamespaces.split(',').filter((x) => x);
    if (plumbingNamespaces.length > 0) {
      plumbing = new PlumbingWatcher({
        kubeConfig,
        namespaces: plumbingNamespaces,
        selectors: cfg.kubernetes.plumbingSelectors,
        sandboxWindowMs: cfg.kubernetes.plumbingSandboxWindowMs,
        watchdogMs: cfg.kubernetes.watchdogMs,
        clock,
        log: log.child({ component: 'plumbing' }),
      });
      plumbing.start();
    }
  }
  const timeline = new ChangeTimeline({
    horizonMs: cfg.kubernetes.changeHorizonMs,
    lookbackMs: cfg.kubernetes.changeLookbackMs,
    ...(scope !== undefined ? { scope } : {}),
    // Counted for the dashboards' annotations; only ever called during a round.
    onRecorded: (c) => controller.m.clusterChanges.inc({ kind: c.kind, node: c.node ?? '' }),
  });
  const controller = new Controller({
    clock,
    directory,
    pullIntervalMs: cfg.controller.pullIntervalMs,
    pullConcurrency: cfg.controller.pullConcurrency,
    pullTimeoutMs: cfg.controller.pullTimeoutMs,
    ...(pullFetch !== undefined ? { pullFetch } : {}),
    roundTimeoutMs: cfg.controller.roundTimeoutMs,
    version: o.version,
    triage: (snapshot) =>
      triage(snapshot, { latencyMinSamples: cfg.triage.latencyMinBaselineSamples }),
    latencyHistory: new LatencyHistory({
      minutes: cfg.triage.latencyBaselineMinutes,
      maxLinks: cfg.triage.latencyMaxLinks,
    }),
    ...(events !== undefined ? { events } : {}),
    ...(conditions !== undefined
      ? {
          nodeConditions: {
            nodes: () => (source?.allNodes() ?? []).map(nodeConditionView),
            write: (w) => conditions?.write(w),
          },
        }
      : {}),
    // Node Events need the Nodes from discovery's informer: only with Kubernetes.
    ...(source !== undefined && cfg.controller.nodeEvents
      ? {
          nodeEvents: {
            knownNodes: () => (source?.allNodes() ?? []).map((n) => n.metadata?.name ?? ''),
            maxPerRound: cfg.controller.nodeEventsPerRound,
          },
        }
      : {}),
    ...(source !== undefined
      ? {
          // Each round's plumbing report, Nodes and NetworkPolicies also feed "what changed".
          plumbing: timeline.observing(
            () => plumbing?.report(),
            () =>
              clusterState(
                clock.nowMs(),
                source?.allNodes(),
                policies?.policies(),
                dnsConfigs?.configs(),
              ),
          ),
          changes: (f, sinceMs) => timeline.forFinding(f, sinceMs),
        }
      : {}),
    log: (level, msg, fields) => log[level](fields ?? {}, msg),
  });
  let served: { server: Server; port: number };
  try {
    served = await serveController(
      controller,
      cfg.httpAddress,
      cfg.httpPort,
      cfg.http,
      cfg.web.security,
    );
  } catch (e) {
    plumbing?.stop();
    policies?.stop();
    dnsConfigs?.stop();
    await source?.stop();
    throw e;
  }
  const { server, port } = served;
  log.info(
    {
      http: `${cfg.httpAddress}:${port}`,
      discovery: source === undefined ? 'static' : 'kubernetes',
    },
    'controller started',
  );
  return {
    controller,
    url: `${cfg.web.security?.tls !== undefined ? 'https' : 'http'}://${cfg.httpAddress === '0.0.0.0' ? '127.0.0.1' : cfg.httpAddress}:${port}`,
    stop: async () => {
      await controller.stop();
      await closeServer(server);
      plumbing?.stop();
      policies?.stop();
      dnsConfigs?.stop();
      await source?.stop();
      log.info('controller stopped');
    },
  };
}
