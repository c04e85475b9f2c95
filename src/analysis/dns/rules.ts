// DNS rules, read only where the IP paths are fine: lookups from a source whose paths fail, or
// to a replica on a node the IP rules already blame, are held back and credited to that IP
// finding (lookups.ts). Then, in order, from the sources that remain: every server failing from
// a few sources only (dns-all for those sources), every server failing (dns-all), one replica
// (dns-replica), the Service VIP while replicas answer (dns-service), and only the external
// name (dns-upstream, or the replicas or VIP that fail it).

import { addExplains, draft } from '../drafts.ts';
import { agentNode, cmp, type Ctx, type Draft } from '../model.ts';
import {
  dnsAllSteps,
  dnsReplicaSteps,
  dnsServiceSteps,
  dnsSourceSteps,
  dnsUpstreamSteps,
} from '../next-steps/dns.ts';
import { replicaNode, trustedLookups } from './lookups.ts';
import {
  bySourceServer,
  clusterView,
  describe,
  dnsState,
  evidence,
  externalView,
  fails,
  isDown,
  type DnsState,
} from './servers.ts';

/** A DNS rule: reads the trusted lookups, hands on what it accounted for through the state. */
export type DnsRule = (ctx: Ctx, st: DnsState) => Draft[];

// dns-all from some sources: needs cluster-name lookups from each source to at least two
// servers (or the only one), all failing, while most sources are fine. Then DNS is fine and
// something on those sources' node drops it; they are excluded from the server rules below so
// a few blind sources don't make a server look down.
export const dnsFromSources: DnsRule = (ctx, st) => {
  const clusterBySource = bySourceServer(st.cluster);
  const allServers = new Set(st.cluster.map((j) => j.server));
  const allFailSources = [...clusterBySource]
    .filter(
      ([, servers]) =>
        servers.size >= Math.min(2, allServers.size) &&
        [...servers.values()].every((js) => fails(ctx.opts, js)),
    )
    .map(([s]) => s)
    .sort(cmp);
  const sourceCount = clusterBySource.size;
  const globalAll = sourceCount > 0 && allFailSources.length / sourceCount >= ctx.opts.sourceShare;
  if (globalAll || allFailSources.length === 0) return [];
  const byNode = new Map<string, string[]>();
  for (const s of allFailSources)
    byNode.set(agentNode(s), [...(byNode.get(agentNode(s)) ?? []), s]);
  const out: Draft[] = [];
  for (const [node, srcs] of [...byNode].sort((a, b) => cmp(a[0], b[0]))) {
    for (const s of srcs) st.excluded.add(s);
    const agentsOnNode = [...clusterBySource.keys()].filter((s) => agentNode(s) === node);
    const subject = srcs.length === agentsOnNode.length ? node : srcs[0]!;
    const js = st.trusted.filter((j) => srcs.includes(j.source) && j.failing);
    out.push(
      draft(ctx, {
        kind: 'dns-all',
        subject,
        severity: 'critical',
        nodes: [node],
        servers: js.map((j) => j.server),
        title: `Every DNS server fails from ${subject}`,
        summary: `Lookups from ${srcs.join(' and ')} fail on every DNS server (${describe(js)}) while other nodes' lookups are answered and ${node}'s IP paths work: something on ${node} or in its Pods' egress drops DNS (a NetworkPolicy without a port 53 rule, a node firewall), or its resolver configuration is wrong.`,
        evidence: js.map(evidence),
        confidence: 0.75,
        nextSteps: dnsSourceSteps(node),
      }),
    );
  }
  return out;
};

// dns-all: needs every server (the VIP and at least one replica asked directly) failing from
// most sources. With the replicas down too it is the DNS Pods, not the Service plumbing.
export const dnsEveryServer: DnsRule = (ctx, st) => {
  const { servers, down, everyDown } = clusterView(ctx.opts, st);
  if (!everyDown) return [];
  const js = down.flatMap((s) => servers.get(s)!.cells);
  for (const s of down) st.reported.add(s);
  return [
    draft(ctx, {
      kind: 'dns-all',
      subject: 'all',
      severity: 'critical',
      nodes: js.map((j) => j.c.sourceNode),
      servers: down,
      title: 'Every DNS server fails',
      summary: `The Service VIP and every replica fail (${describe(js)}) from most sources while the IP paths work: the DNS Pods themselves (crashing, overloaded, a broken Corefile, no way to the API server) or a policy dropping DNS to them.`,
      evidence: js.map(evidence),
      confidence: 0.85,
      nextSteps: dnsAllSteps(),
    }),
  ];
};

// dns-replica: needs a replica asked directly failing from most sources while some other
// server answers. A replica on a node an IP finding blames is that finding's (credited to it).
export const dnsReplicas: DnsRule = (ctx, st) => {
  const { servers, down, everyDown } = clusterView(ctx.opts, st);
  if (everyDown) return [];
  const out: Draft[] = [];
  for (const r of down.filter((s) => s !== 'service')) {
    const node = replicaNode(ctx, r);
    const e = servers.get(r)!;
    const ip = node !== undefined ? (ctx.ipHubs.get(node) ?? ctx.clusterIp) : undefined;
    st.reported.add(r);
    if (ip !== undefined) {
      addExplains(ctx, ip, `dns-replica:${r}`);
      st.firstReplicaId ??= ip;
      continue;
    }
    const id = `dns-replica:${r}`;
    st.firstReplicaId ??= id;
    const name = e.cells[0]?.c.name ?? 'kubernetes.default.svc.cluster.local';
    out.push(
      draft(ctx, {
        kind: 'dns-replica',
        subject: r,
        severity: 'warning',
        nodes: node !== undefined ? [node] : [],
        servers: [r],
        title: `DNS replica ${r} fails`,
        summary: `Lookups sent straight to replica ${r} fail from ${e.failing.length} of ${e.known} sources (${describe(e.cells)}) while other servers answer and the IP paths to ${node ?? 'it'} work: that DNS Pod is down, overloaded or misconfigured. Lookups through the Service VIP that land on it fail too.`,
        evidence: e.cells.map(evidence),
        confidence: 0.85,
        nextSteps: dnsReplicaSteps(node, r, name),
      }),
    );
  }
  return out;
};

// dns-service: needs VIP lookups failing from most sources while no replica fails. The VIP
// forwards to the replicas, so with a failing replica its failing lookups are that replica's.
export const dnsServiceVip: DnsRule = (ctx, st) => {
  const { servers, replicas, everyDown } = clusterView(ctx.opts, st);
  const vip = servers.get('service');
  if (everyDown || vip === undefined || vip.failing.length === 0) return [];
  if (st.firstReplicaId !== undefined) {
    addExplains(
      ctx,
      st.firstReplicaId,
      'dns-service:service (VIP lookups that land on the failing replica)',
    );
    st.reported.add('service');
    return [];
  }
  if (!isDown(ctx.opts, vip)) return [];
  st.reported.add('service');
  const name = vip.cells[0]?.c.name ?? 'kubernetes.default.svc.cluster.local';
  return [
    draft(ctx, {
      kind: 'dns-service',
      subject: 'service',
      severity: 'critical',
      nodes: vip.cells.map((j) => j.c.sourceNode),
      servers: ['service'],
      title: 'The DNS Service VIP fails while the replicas answer',
      summary:
        replicas.length > 0
          ? `Lookups to the DNS Service VIP fail from ${vip.failing.length} of ${vip.known} sources (${describe(vip.cells)}) while the same sources get answers from every replica directly: the Service plumbing (kube-proxy's NAT rules, the Service's endpoints) is what broke, not DNS.`
          : `Lookups to the DNS Service VIP fail from ${vip.failing.length} of ${vip.known} sources (${describe(vip.cells)}). No replica was checked directly, so this can't tell the Service from the DNS Pods behind it.`,
      evidence: vip.cells.map(evidence),
      confidence: replicas.length > 0 ? 0.85 : 0.5,
      nextSteps: dnsServiceSteps(name),
    }),
  ];
};

// dns-upstream: needs the external name failing on every server whose cluster names work
// (none reported above): the cluster DNS can't reach its upstream.
export const dnsUpstream: DnsRule = (ctx, st) => {
  const { ext, extDown, upstream } = externalView(ctx.opts, st);
  if (!upstream) return [];
  const js = extDown.flatMap((s) => ext.get(s)!.cells);
  const names = [...new Set(js.map((j) => j.c.name))].sort(cmp);
  return [
    draft(ctx, {
      kind: 'dns-upstream',
      subject: names.join(','),
      severity: 'warning',
      nodes: js.map((j) => j.c.sourceNode),
      servers: extDown,
      title: `Names outside the cluster fail (${names.join(', ')})`,
      summary: `Every DNS server answers cluster names but fails ${names.join(', ')} (${describe(js)}): the cluster DNS can't reach its upstream resolvers (the Corefile's forward target, the nodes' resolv.conf, or egress from the DNS Pods).`,
      evidence: js.map(evidence),
      confidence: 0.8,
      nextSteps: dnsUpstreamSteps(names[0] ?? 'example.com'),
    }),
  ];
};

// dns-replica (external): needs some replicas, not all, failing the external name from most
// sources while they answer cluster names: those replicas can't reach their upstream.
export const dnsReplicaUpstream: DnsRule = (ctx, st) => {
  const { ext, extDown, upstream } = externalView(ctx.opts, st);
  if (upstream) return [];
  const out: Draft[] = [];
  for (const s of extDown.filter((x) => x !== 'service')) {
    const e = ext.get(s)!;
    const name = e.cells[0]?.c.name ?? 'example.com';
    const node = replicaNode(ctx, s);
    st.firstExternalReplica ??= `dns-replica:${s}`;
    out.push(
      draft(ctx, {
        kind: 'dns-replica',
        subject: s,
        severity: 'warning',
        nodes: node !== undefined ? [node] : [],
        servers: [s],
        title: `DNS replica ${s} can't resolve external names`,
        summary: `Replica ${s} answers cluster names but fails ${name} from ${e.failing.length} of ${e.known} sources while the other replicas resolve it: that replica can't reach its upstream (egress from its node, or its own forward configuration).`,
        evidence: e.cells.map(evidence),
        confidence: 0.7,
        nextSteps: dnsReplicaSteps(node, s, name),
      }),
    );
  }
  return out;
};

// dns-service (external): needs VIP lookups of the external name failing from most sources
// while not every server fails them. With a replica failing them, the VIP's failures are that
// replica's (the VIP forwards to it); alone, the Service's endpoints or kube-proxy.
export const dnsServiceUpstream: DnsRule = (ctx, st) => {
  const { ext, extDown, upstream } = externalView(ctx.opts, st);
  const vip = ext.get('service');
  if (upstream || vip === undefined || !extDown.includes('service')) return [];
  const name = vip.cells[0]?.c.name ?? 'example.com';
  if (st.firstExternalReplica !== undefined) {
    addExplains(
      ctx,
      st.firstExternalReplica,
      'dns-service:service (VIP lookups of external names that land on it)',
    );
    return [];
  }
  return [
    draft(ctx, {
      kind: 'dns-service',
      subject: 'service',
      severity: 'warning',
      nodes: vip.cells.map((j) => j.c.sourceNode),
      servers: ['service'],
      title: 'External names fail through the DNS Service VIP only',
      summary: `Through the VIP, ${name} fails from ${vip.failing.length} of ${vip.known} sources while the replicas asked directly answer it: check the Service's endpoints and kube-proxy.`,
      evidence: vip.cells.map(evidence),
      confidence: 0.5,
      nextSteps: dnsServiceSteps(name),
    }),
  ];
};

/** Every DNS rule in order; each one sees what the earlier ones accounted for. */
export const DNS_RULES: readonly DnsRule[] = [
  dnsFromSources,
  dnsEveryServer,
  dnsReplicas,
  dnsServiceVip,
  dnsUpstream,
  dnsReplicaUpstream,
  dnsServiceUpstream,
];

export function dnsFindings(ctx: Ctx): Draft[] {
  const trusted = trustedLookups(ctx);
  if (trusted.length === 0) return [];
  const st = dnsState(trusted);
  return DNS_RULES.flatMap((rule) => rule(ctx, st));
}
