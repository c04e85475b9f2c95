// The agent's DNS checks: what the resolver configuration says (resolv.conf: the nameserver is
// the DNS Service VIP, the search list expands the short name), the four names to look up, and
// the servers to check them against, the VIP plus every DNS replica (from the config and from
// discovery), merged into jobs. Reading resolv.conf is the only I/O; the rest is pure.

import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config/load.ts';
import type { DnsReplica } from '../discovery/kubernetes.ts';
import {
  planDnsJobs,
  replicaTargets,
  type DnsQuerySpec,
  type DnsServerTarget,
  type ReplicaLike,
} from '../mesh/families/dns.ts';
import type { DnsJob } from '../probes/dns-job.ts';
import { expandName, parseResolvConf, type ResolverConfig } from '../probes/resolv-conf.ts';

export interface DnsState {
  readonly enabled: boolean;
  readonly reason: 'ok' | 'disabled' | 'error';
  readonly detail: string;
}

/** What the agent checks DNS with, fixed at start. */
export interface DnsSetup {
  readonly state: DnsState;
  readonly resolver: ResolverConfig | undefined;
  /** The resolver's nameserver (the DNS Service VIP), when it is usable. */
  readonly service: DnsServerTarget | undefined;
  readonly queries: readonly DnsQuerySpec[];
}

/** DNS checks off (dns.enabled false). */
export const DNS_OFF: DnsSetup = {
  state: { enabled: false, reason: 'disabled', detail: 'dns.enabled is false' },
  resolver: undefined,
  service: undefined,
  queries: [],
};

/**
 * Reads the resolver configuration (`resolvConf` content when given: the demo and the tests
 * point it at a DNS server they started) and fixes the names to look up.
 */
export function setUpDns(cfg: Config, log: Logger, resolvConf?: string): DnsSetup {
  let state: DnsState = DNS_OFF.state;
  let text = resolvConf;
  if (text === undefined) {
    try {
      text = readFileSync(cfg.dns.resolvConf, 'utf8');
    } catch (e) {
      // Replicas can still be checked; the VIP and the search list can't.
      const detail = `cannot read ${cfg.dns.resolvConf}: ${(e as Error).message}`;
      log.warn({ path: cfg.dns.resolvConf }, `DNS checks of the resolver are off: ${detail}`);
      state = { enabled: true, reason: 'error', detail };
    }
  }
  const resolver =
    text === undefined
      ? undefined
      : parseResolvConf(
          text,
          resolvConf === undefined ? { hostname: hostname().toLowerCase() } : {},
        );
  let service: DnsServerTarget | undefined;
  if (resolver !== undefined) {
    if (resolver.warnings.length > 0)
      log.info({ warnings: resolver.warnings }, 'resolv.conf: odd lines');
    const ns = resolver.nameservers[0];
    if (ns !== undefined && isIPv4(ns)) {
      service = {
        kind: 'service',
        name: 'service',
        address: ns,
        port: cfg.dns.port,
        tcpPort: cfg.dns.port,
      };
      state = { enabled: true, reason: 'ok', detail: `nameserver ${ns}` };
    } else {
      const detail =
        ns === undefined ? 'resolv.conf has no nameserver' : `nameserver ${ns} is not IPv4`;
      log.warn(`DNS checks of the resolver are off: ${detail}`);
      state = { enabled: true, reason: 'error', detail };
    }
  }
  return { state, resolver, service, queries: dnsQueries(cfg, resolver) };
}

/** The four lookups, as the Pod's resolver would send them. */
export function dnsQueries(cfg: Config, resolver: ResolverConfig | undefined): DnsQuerySpec[] {
  const search = resolver ?? { ndots: 1, search: [] };
  const abs = (name: string): string[] =>
    name === '' ? [] : [name.endsWith('.') ? name : `${name}.`];
  return [
    {
      kind: 'service',
      name: cfg.dns.serviceName,
      candidates: abs(cfg.dns.serviceName),
      tcp: cfg.dns.tcp,
    },
    {
      kind: 'short',
      name: cfg.dns.shortName,
      candidates: cfg.dns.shortName === '' ? [] : expandName(cfg.dns.shortName, search),
      tcp: false,
    },
    { kind: 'pod', name: cfg.dns.podName, candidates: abs(cfg.dns.podName), tcp: false },
    {
      kind: 'external',
      name: cfg.dns.externalName,
      candidates: abs(cfg.dns.externalName),
      tcp: false,
    },
  ];
}

/** The replicas to check: the configured ones (dns.replicas) and the discovered DNS Pods. */
export function replicasOf(cfg: Config, discovered: readonly DnsReplica[]): ReplicaLike[] {
  return [
    ...cfg.dns.replicas.map((r, i) => ({
      address: r.address,
      port: r.port,
      tcpPort: r.port,
      node: r.node,
      order: `static-${String(i).padStart(6, '0')}`,
    })),
    ...discovered.map((r) => ({
      address: r.address,
      port: r.port,
      tcpPort: r.tcpPort,
      node: r.node,
      order: `pod-${r.pod}`,
    })),
  ];
}

/** The DNS jobs of the moment; replicas come and go. */
export class DnsChecks {
  jobs: DnsJob[] = [];
  keys: ReadonlySet<string> = new Set();
  private servers: DnsServerTarget[] = [];

  constructor(
    private readonly cfg: Config,
    readonly setup: DnsSetup,
  ) {}

  /** Recomputes the servers and jobs for the replicas discovered now; says which came and went. */
  update(discovered: readonly DnsReplica[]): {
    replicas: number;
    arrived: string[];
    departed: string[];
  } {
    const replicaNames = (servers: readonly DnsServerTarget[]): Set<string> =>
      new Set(servers.filter((s) => s.kind === 'replica').map((s) => s.name));
    const before = replicaNames(this.servers);
    this.servers = [
      ...(this.setup.service !== undefined ? [this.setup.service] : []),
      ...replicaTargets(replicasOf(this.cfg, discovered)),
    ];
    const after = replicaNames(this.servers);
    this.jobs = planDnsJobs(this.servers, this.setup.queries);
    this.keys = new Set(this.jobs.map((j) => j.key));
    return {
      replicas: after.size,
      arrived: [...after].filter((n) => !before.has(n)),
      departed: [...before].filter((n) => !after.has(n)),
    };
  }
}
