// DNS rules, read only where the IP paths are fine: lookups from a source whose paths fail, or
// to a replica on a node the IP rules already blame, are held back and credited to that IP
// finding. Then, from the sources that remain: every server failing from a few sources only
// (dns-all for those sources), every server failing (dns-all), one replica (dns-replica), the
// Service VIP while replicas answer (dns-service), and only the external name (dns-upstream).

import type { DnsCell } from '../api/matrix.ts';
import {
  addExplains,
  agentKey,
  cmp,
  draft,
  ipHeldBack,
  isFindingId,
  linkKeyOf,
  replicaNode,
  smallTally,
  type Ctx,
  type Draft,
  type Ranked,
} from './model.ts';
import {
  dnsAllSteps,
  dnsReplicaSteps,
  dnsServiceSteps,
  dnsSourceSteps,
  dnsUpstreamSteps,
} from './next-steps.ts';

interface Judged {
  readonly c: DnsCell;
  readonly source: string;
  readonly server: string;
  readonly ratio: number;
  readonly failing: boolean;
}

const serverKey = (c: DnsCell): string => (c.serverKind === 'service' ? 'service' : c.server);
const label = (server: string): string =>
  server === 'service' ? 'the Service VIP' : `replica ${server}`;

function valid(c: unknown): c is DnsCell {
  if (c === null || typeof c !== 'object') return false;
  const d = c as Partial<DnsCell>;
  return (
    (d.serverKind === 'service' || d.serverKind === 'replica') &&
    typeof d.server === 'string' &&
    typeof d.sourceNode === 'string' &&
    (d.sourceNetwork === 'pod' || d.sourceNetwork === 'host') &&
    typeof d.query === 'string' &&
    typeof d.sent === 'number'
  );
}

function outcomesText(o: Readonly<Record<string, number>> | undefined): string {
  if (o === undefined || o === null || typeof o !== 'object') return '';
  const parts = Object.entries(o)
    .filter(([, n]) => typeof n === 'number' && n > 0)
    .sort((a, b) => b[1] - a[1] || cmp(a[0], b[0]))
    .slice(0, 3)
    .map(([k, n]) => `${k} ${n}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

function evidence(j: Judged): Ranked {
  const sent = j.c.sent;
  return {
    text: `${j.source} → ${label(j.server)}: ${j.c.query} ${j.c.name} over ${j.c.transport}: ${Math.round(j.ratio * sent)} of ${sent} answered${outcomesText(j.c.outcomes)}`,
    sourceNode: j.c.sourceNode,
    server: j.server,
    value: j.ratio,
    rank: 1 - j.ratio,
  };
}

/** Pooled answered ratio of some judged cells. */
function pooled(js: readonly Judged[]): number {
  const sent = js.reduce((s, j) => s + j.c.sent, 0);
  return sent === 0 ? 1 : js.reduce((s, j) => s + j.ratio * j.c.sent, 0) / sent;
}

function describe(js: readonly Judged[]): string {
  const queries = [...new Set(js.map((j) => j.c.query))].sort(cmp);
  const transports = [...new Set(js.map((j) => j.c.transport))].sort(cmp);
  return `${queries.join(', ')} lookups over ${transports.join(' and ')}`;
}

export function dnsFindings(ctx: Ctx): Draft[] {
  const opts = ctx.opts;
  const raw: readonly unknown[] = Array.isArray(ctx.snapshot.matrix?.dns)
    ? ctx.snapshot.matrix.dns
    : [];
  const trusted: Judged[] = [];
  const replicaNodes = [
    ...new Set(
      raw
        .filter(valid)
        .filter((c) => c.serverKind === 'replica')
        .map((c) => replicaNode(ctx, c.server))
        .filter((n) => n !== undefined),
    ),
  ].sort(cmp);
  for (const c of raw) {
    if (!valid(c)) continue;
    const ratio =
      typeof c.answeredRatio === 'number' && Number.isFinite(c.answeredRatio)
        ? c.answeredRatio
        : null;
    if (ratio === null || !(c.sent >= opts.minDnsQueries)) continue;
    const j: Judged = {
      c,
      source: agentKey(c.sourceNode, c.sourceNetwork),
      server: serverKey(c),
      ratio: Math.min(1, Math.max(0, ratio)),
      failing: ratio < opts.dnsAnsweredRatio,
    };
    // IP first: a lookup that can't get through says nothing about DNS. The VIP forwards to
    // every replica, so a path failing to any replica's node explains VIP lookups too.
    let held = ipHeldBack(ctx, c.sourceNode, c.sourceNetwork);
    const targets =
      c.serverKind === 'replica'
        ? [replicaNode(ctx, c.server)].filter((n) => n !== undefined)
        : replicaNodes;
    for (const rn of targets) {
      if (held !== undefined) break;
      if (rn === c.sourceNode) continue;
      const l = ctx.links.get(linkKeyOf(c.sourceNode, c.sourceNetwork, rn, 'pod'));
      if (l !== undefined && smallTally(ctx, l).status === 'failing')
        held = ctx.explainedLinks.get(l.key) ?? `failing path ${c.sourceNode} → ${rn}`;
    }
    if (held !== undefined) {
      if (j.failing && isFindingId(held))
        addExplains(ctx, held, `DNS lookups from ${j.source} (held back)`);
      continue;
    }
    trusted.push(j);
  }
  if (trusted.length === 0) return [];

  const out: Draft[] = [];
  const cluster = trusted.filter((j) => j.c.query !== 'external');
  const external = trusted.filter((j) => j.c.query === 'external');

  // Per source, per server: does it fail (cluster names, pooled over queries and transports)?
  const bySourceServer = (js: readonly Judged[]): Map<string, Map<string, Judged[]>> => {
    const m = new Map<string, Map<string, Judged[]>>();
    for (const j of js) {
      const s = m.get(j.source) ?? new Map<string, Judged[]>();
      s.set(j.server, [...(s.get(j.server) ?? []), j]);
      m.set(j.source, s);
    }
    return m;
  };
  const fails = (js: readonly Judged[]): boolean => pooled(js) < opts.dnsAnsweredRatio;

  // 1. Sources for which every server fails while most other sources are fine.
  const clusterBySource = bySourceServer(cluster);
  const allServers = new Set(cluster.map((j) => j.server));
  const allFailSources = [...clusterBySource]
    .filter(
      ([, servers]) =>
        servers.size >= Math.min(2, allServers.size) && [...servers.values()].every(fails),
    )
    .map(([s]) => s)
    .sort(cmp);
  const sourceCount = clusterBySource.size;
  const globalAll = sourceCount > 0 && allFailSources.length / sourceCount >= opts.sourceShare;
  const excluded = new Set<string>();
  if (!globalAll && allFailSources.length > 0) {
    const byNode = new Map<string, string[]>();
    for (const s of allFailSources) {
      const n = s.slice(0, s.lastIndexOf('/'));
      byNode.set(n, [...(byNode.get(n) ?? []), s]);
    }
    for (const [node, srcs] of [...byNode].sort((a, b) => cmp(a[0], b[0]))) {
      for (const s of srcs) excluded.add(s);
      const agentsOnNode = [...clusterBySource.keys()].filter(
        (s) => s.slice(0, s.lastIndexOf('/')) === node,
      );
      const subject = srcs.length === agentsOnNode.length ? node : srcs[0]!;
      const js = trusted.filter((j) => srcs.includes(j.source) && j.failing);
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
  }

  // 2. Servers that fail from most of the remaining sources.
  const serverState = (
    js: readonly Judged[],
  ): Map<string, { failing: string[]; known: number; cells: Judged[] }> => {
    const m = new Map<string, { failing: string[]; known: number; cells: Judged[] }>();
    for (const [source, servers] of bySourceServer(js.filter((j) => !excluded.has(j.source)))) {
      for (const [server, cells] of servers) {
        const e = m.get(server) ?? { failing: [], known: 0, cells: [] };
        e.known++;
        if (fails(cells)) {
          e.failing.push(source);
          e.cells.push(...cells.filter((c) => c.failing));
        }
        m.set(server, e);
      }
    }
    return m;
  };
  const isDown = (e: { failing: string[]; known: number }): boolean =>
    e.known > 0 && e.failing.length / e.known >= opts.sourceShare;
  const servers = serverState(cluster);
  const down = [...servers]
    .filter(([, e]) => isDown(e))
    .map(([s]) => s)
    .sort(cmp);
  const replicas = [...servers.keys()].filter((s) => s !== 'service');
  const reported = new Set<string>();
  if (servers.size > 0 && down.length === servers.size && replicas.length > 0) {
    const js = down.flatMap((s) => servers.get(s)!.cells);
    out.push(
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
    );
    for (const s of down) reported.add(s);
  } else {
    let firstReplicaId: string | undefined;
    for (const r of down.filter((s) => s !== 'service')) {
      const node = replicaNode(ctx, r);
      const e = servers.get(r)!;
      const ip = node !== undefined ? (ctx.ipHubs.get(node) ?? ctx.clusterIp) : undefined;
      reported.add(r);
      if (ip !== undefined) {
        addExplains(ctx, ip, `dns-replica:${r}`);
        firstReplicaId ??= ip;
        continue;
      }
      const id = `dns-replica:${r}`;
      firstReplicaId ??= id;
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
    const vip = servers.get('service');
    if (vip !== undefined && vip.failing.length > 0) {
      if (firstReplicaId !== undefined) {
        // The VIP forwards to the replicas: a failing replica explains VIP lookups that fail.
        addExplains(
          ctx,
          firstReplicaId,
          'dns-service:service (VIP lookups that land on the failing replica)',
        );
        reported.add('service');
      } else if (isDown(vip)) {
        reported.add('service');
        const name = vip.cells[0]?.c.name ?? 'kubernetes.default.svc.cluster.local';
        out.push(
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
        );
      }
    }
  }

  // 3. Only the external name: on every server it's the upstream; on some, those servers.
  const ext = serverState(external);
  const extDown = [...ext]
    .filter(([s, e]) => !reported.has(s) && isDown(e))
    .map(([s]) => s)
    .sort(cmp);
  const extKnown = [...ext.keys()].filter((s) => !reported.has(s));
  if (extDown.length > 0 && extDown.length === extKnown.length && extKnown.length === ext.size) {
    const js = extDown.flatMap((s) => ext.get(s)!.cells);
    const names = [...new Set(js.map((j) => j.c.name))].sort(cmp);
    out.push(
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
    );
  } else {
    let firstReplica: string | undefined;
    for (const s of extDown.filter((x) => x !== 'service')) {
      const e = ext.get(s)!;
      const name = e.cells[0]?.c.name ?? 'example.com';
      const node = replicaNode(ctx, s);
      firstReplica ??= `dns-replica:${s}`;
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
    const vip = ext.get('service');
    if (vip !== undefined && extDown.includes('service')) {
      const name = vip.cells[0]?.c.name ?? 'example.com';
      if (firstReplica !== undefined)
        addExplains(
          ctx,
          firstReplica,
          'dns-service:service (VIP lookups of external names that land on it)',
        );
      else
        out.push(
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
        );
    }
  }
  return out;
}
