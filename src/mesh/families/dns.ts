// The dns family: what DNS checks an agent runs and how one check runs: the servers (the
// resolver's nameserver, i.e. the DNS Service VIP, and every DNS replica directly) times the query
// kinds (service FQDN, short name through the search list, Pod/headless name, external name)
// times the transports. Jobs are plain data (src/probes/dns-job.ts) so they can cross to the
// engine's worker thread; a lookup is one job run. The engine opens one DnsProbe for them.

import type { Clock } from '../../core/clock.ts';
import { DnsProbe, answeredCorrectly, type DnsOutcome, type DnsResult } from '../../probes/dns.ts';
import {
  dnsJobKey,
  type DnsJob,
  type DnsJobResult,
  type DnsQueryKind,
  type DnsServerKind,
} from '../../probes/dns-job.ts';
import { searchContinues } from '../../probes/resolv-conf.ts';
import type { Family } from '../family.ts';
import type { Executor } from '../scheduler.ts';

/** A DNS server to check. `name` is its label value: never an address. */
export interface DnsServerTarget {
  readonly kind: DnsServerKind;
  /** "service" for the VIP; for a replica its node name (made unique), see replicaNames(). */
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly tcpPort: number;
}

/** One name to look up, as the Pod's resolver would send it. */
export interface DnsQuerySpec {
  readonly kind: DnsQueryKind;
  /** The name as configured (for the API). */
  readonly name: string;
  /** Absolute names to try in order (the search-list expansion for "short"; one otherwise). */
  readonly candidates: readonly string[];
  /** Also send it over TCP. */
  readonly tcp: boolean;
}

/** Every (server, query, transport) job: UDP for every query, TCP too where the query asks. */
export function planDnsJobs(
  servers: readonly DnsServerTarget[],
  queries: readonly DnsQuerySpec[],
): DnsJob[] {
  const jobs: DnsJob[] = [];
  for (const s of servers) {
    for (const q of queries) {
      if (q.candidates.length === 0) continue;
      for (const transport of q.tcp ? (['udp', 'tcp'] as const) : (['udp'] as const)) {
        jobs.push({
          key: dnsJobKey(s.kind, s.name, q.kind, transport),
          serverKind: s.kind,
          server: s.name,
          address: s.address,
          port: transport === 'tcp' ? s.tcpPort : s.port,
          query: q.kind,
          candidates: q.candidates,
          transport,
        });
      }
    }
  }
  return jobs;
}

export interface ReplicaLike {
  readonly address: string;
  readonly port: number;
  readonly tcpPort: number;
  /** Node the replica runs on; '' when unknown. */
  readonly node: string;
  /** A tie-breaker that stays put while the replica lives (Pod name, list position...). */
  readonly order: string;
}

/**
 * Label names for replicas: the node name, which is what the metrics contract allows; a second
 * replica on the same node gets "<node>#2" (ordered by `order`), and a replica on an unknown
 * node "replica-<n>" (n counts from 1 in address order). Duplicate addresses are merged.
 */
export function replicaTargets(replicas: readonly ReplicaLike[]): DnsServerTarget[] {
  const byAddr = new Map<string, ReplicaLike>();
  for (const r of replicas)
    if (!byAddr.has(`${r.address}:${r.port}`)) byAddr.set(`${r.address}:${r.port}`, r);
  const list = [...byAddr.values()].sort((a, b) =>
    a.node === b.node ? a.order.localeCompare(b.order) : a.node.localeCompare(b.node),
  );
  const seen = new Map<string, number>();
  let unknown = 0;
  const out: DnsServerTarget[] = [];
  for (const r of list) {
    let name: string;
    if (r.node === '') name = `replica-${++unknown}`;
    else {
      const n = (seen.get(r.node) ?? 0) + 1;
      seen.set(r.node, n);
      name = n === 1 ? r.node : `${r.node}#${n}`;
    }
    out.push({ kind: 'replica', name, address: r.address, port: r.port, tcpPort: r.tcpPort });
  }
  return out;
}

/**
 * Runs one lookup the way a glibc stub resolver does for one server: each candidate in order,
 * on to the next after NXDOMAIN, NODATA or SERVFAIL, stopping at an answer with records or any
 * other failure. The whole lookup shares one time budget (timeoutMs).
 */
export async function runDnsLookup(
  probe: Pick<DnsProbe, 'run'>,
  clock: Clock,
  job: DnsJob,
  timeoutMs: number,
): Promise<DnsJobResult> {
  const startNs = clock.monoNs();
  const sentAtMs = clock.nowMs();
  let last: DnsResult | undefined;
  let sawNodata = false;
  let tried = 0;
  let answeredBy: string | undefined;
  let truncatedRetried = false;
  for (const name of job.candidates) {
    const left = timeoutMs - Number(clock.monoNs() - startNs) / 1e6;
    if (left < 1) {
      last = undefined;
      break;
    }
    const r = await probe.run(
      {
        server: job.address,
        port: job.port,
        name,
        type: 'A',
        transport: job.transport,
        // Through the Service VIP, a new source port per lookup as a Pod's resolver uses, so
        // kube-proxy's DNAT spreads the lookups over the replicas instead of pinning them.
        freshSocket: job.serverKind === 'service',
      },
      left,
    );
    tried++;
    last = r;
    truncatedRetried ||= r.truncatedRetried;
    if (r.outcome === 'noerror') {
      answeredBy = name;
      break;
    }
    if (r.outcome === 'nodata') sawNodata = true;
    if (!searchContinues(r.outcome)) break;
  }
  const seconds = Number(clock.monoNs() - startNs) / 1e9;
  if (last === undefined) {
    return {
      key: job.key,
      outcome: 'timeout',
      answered: false,
      seconds,
      sentAtMs,
      tried,
      answeredBy: undefined,
      truncatedRetried,
      detail: `search list not done in ${timeoutMs} ms`,
    };
  }
  // Like glibc, a walk that ends in NXDOMAIN after some name had NODATA reports NODATA.
  const outcome: DnsOutcome =
    last.outcome === 'nxdomain' && sawNodata && tried === job.candidates.length
      ? 'nodata'
      : last.outcome;
  return {
    key: job.key,
    outcome,
    answered: answeredCorrectly(outcome),
    seconds,
    sentAtMs,
    tried,
    answeredBy,
    truncatedRetried,
    ...(last.detail !== undefined ? { detail: last.detail } : {}),
  };
}

/** The scheduler executor for DNS jobs. */
export function dnsExecutor(
  probe: Pick<DnsProbe, 'run'>,
  clock: Clock,
): Executor<DnsJob, DnsJobResult> {
  return {
    execute: (job, timeoutMs) => runDnsLookup(probe, clock, job, timeoutMs),
    overran: (job, startMs, detail) => ({
      key: job.key,
      outcome: 'error',
      answered: false,
      seconds: 0,
      sentAtMs: startMs,
      tried: 0,
      answeredBy: undefined,
      truncatedRetried: false,
      detail,
    }),
    changed: (a, b) =>
      a.address !== b.address ||
      a.port !== b.port ||
      a.candidates.length !== b.candidates.length ||
      a.candidates.some((c, i) => c !== b.candidates[i]),
  };
}

export const dnsFamily: Family<'dns'> = {
  name: 'dns',
  async open(ctx) {
    const { spec, clock, timeouts } = ctx;
    if (spec.dns === undefined) return undefined;
    const probe = await DnsProbe.open({
      clock: timeouts,
      ...(spec.bindAddress !== '0.0.0.0' ? { bindAddress: spec.bindAddress } : {}),
    });
    return {
      executor: dnsExecutor(probe, clock),
      intervalMs: spec.dns.intervalMs,
      timeoutMs: spec.dns.timeoutMs,
      health: () => {
        const st = probe.stats();
        return { dns: { malformed: st.malformed, mismatched: st.mismatched } };
      },
      close: () => probe.close(),
    };
  },
};
