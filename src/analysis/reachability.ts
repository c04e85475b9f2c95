// The IP-path rules, broadest cause first, each taking the links it explains so narrower rules
// never report them again: an agent's TCP port blocked, zone pair, isolated node, one-way path,
// overlay, node network, MTU black hole, and last the loss nothing broader explains.
//
// Links are judged on small probes pooled over protocols (see model.ts); MTU-sized probes are
// only read by the MTU rule and by pair-loss.

import { addKnown, groupPairs, type Grouping } from './group.ts';
import {
  agentKey,
  capList,
  cellEvidence,
  cellRatio,
  classState,
  cmp,
  draft,
  explainLinks,
  failsBothWays,
  linkEvidence,
  linkKeyOf,
  openLinksBetween,
  pairKey,
  pct,
  reverseOf,
  smallTally,
  statusOf,
  tally,
  usable,
  type Ctx,
  type Draft,
  type Link,
  type LinkClass,
  type Ranked,
} from './model.ts';
import {
  agentPortSteps,
  asymmetricSteps,
  hostNetworkSteps,
  isolatedSteps,
  lossSteps,
  mtuSteps,
  overlaySteps,
  zoneSteps,
} from './next-steps.ts';
import type { Cell } from '../api/matrix.ts';

type Pair = readonly [string, string];

/** Every unordered pair of distinct nodes that has at least one link. */
function nodePairs(ctx: Ctx): Pair[] {
  const out: Pair[] = [];
  for (const links of ctx.pairLinks.values()) {
    const l = links[0]!;
    out.push(
      l.sourceNode < l.targetNode ? [l.sourceNode, l.targetNode] : [l.targetNode, l.sourceNode],
    );
  }
  return out.sort((x, y) => cmp(x[0], y[0]) || cmp(x[1], y[1]));
}

function evidenceOfFailing(
  ctx: Ctx,
  a: string,
  b: string,
  classes: readonly LinkClass[],
): Ranked[] {
  return classState(ctx, a, b, classes).failing.map((x) => linkEvidence(x.link, x.t));
}

/** What the node's own pod ↔ host pair says: a node that still reaches itself is up. */
function localEvidence(ctx: Ctx, node: string): { ev: Ranked[]; ok: boolean | undefined } {
  const ev: Ranked[] = [];
  let ok: boolean | undefined;
  for (const [s, t] of [
    ['pod', 'host'],
    ['host', 'pod'],
  ] as const) {
    const l = ctx.links.get(linkKeyOf(node, s, node, t));
    if (l === undefined) continue;
    const ta = smallTally(ctx, l);
    if (!ta.known) continue;
    const good = ta.status !== 'failing';
    ok = ok === undefined ? good : ok && good;
    ev.push(linkEvidence(l, ta));
  }
  return { ev, ok };
}

function agentStateEvidence(ctx: Ctx, node: string): Ranked[] {
  const ev: Ranked[] = [];
  for (const net of ['pod', 'host'] as const) {
    const a = ctx.agents.get(agentKey(node, net));
    if (a !== undefined && a.state !== 'ok')
      ev.push({
        text: `the controller can't read ${node}/${net}: ${a.state}${a.detail !== undefined ? ` (${a.detail})` : ''}`,
        sourceNode: node,
      });
  }
  if (ctx.coverage !== undefined && !ctx.coverage.has(node))
    ev.push({
      text: `${node} is not in the coverage list (not Ready, or cordoned)`,
      sourceNode: node,
    });
  return ev;
}

function knownPeers(
  ctx: Ctx,
  pairs: readonly Pair[],
  classes: readonly LinkClass[],
): Map<string, Set<string>> {
  const known = new Map<string, Set<string>>();
  for (const [a, b] of pairs) if (classState(ctx, a, b, classes).known) addKnown(known, a, b);
  return known;
}

function firstPeer(ctx: Ctx, node: string, not: readonly string[]): string | undefined {
  return ctx.nodes.find(
    (n) => n !== node && !not.includes(n) && ctx.pairLinks.has(pairKey(n, node)),
  );
}

// ---------------------------------------------------------------------------------------------
// An agent's TCP probe port: only tcp fails to one agent while udp and icmp to it answer.

export function agentTcpPorts(ctx: Ctx): Draft[] {
  const byTarget = new Map<
    string,
    { node: string; net: string; cells: Cell[]; sources: Set<string> }
  >();
  for (const l of ctx.links.values()) {
    const tcp = l.cells.filter((c) => c.protocol === 'tcp' && usable(ctx, c));
    const others = l.cells.filter(
      (c) => c.protocol !== 'tcp' && c.size === 'small' && usable(ctx, c),
    );
    if (tcp.length === 0 || others.length === 0) continue;
    if (!tcp.every((c) => cellRatio(c)! >= ctx.opts.failRatio)) continue;
    if (!others.every((c) => cellRatio(c)! < ctx.opts.failRatio)) continue;
    const k = agentKey(l.targetNode, l.targetNet);
    const e = byTarget.get(k) ?? {
      node: l.targetNode,
      net: l.targetNet,
      cells: [],
      sources: new Set(),
    };
    e.cells.push(...tcp);
    e.sources.add(agentKey(l.sourceNode, l.sourceNet));
    byTarget.set(k, e);
  }
  const out: Draft[] = [];
  for (const [k, e] of [...byTarget].sort((x, y) => cmp(x[0], y[0]))) {
    const reasons = e.cells.map((c) => c.lastFailure ?? '');
    const refused = reasons.filter((r) => r === 'refused').length;
    const isRefused = refused > reasons.length / 2;
    const kind = isRefused ? 'port-refused' : 'port-blocked';
    const id = `${kind}:${k}`;
    for (const c of e.cells) ctx.takenCells.set(c, id);
    const sourceNodes = [...e.sources].map((s) => s.slice(0, s.lastIndexOf('/')));
    out.push(
      draft(ctx, {
        kind,
        subject: k,
        severity: 'warning',
        nodes: [e.node, ...sourceNodes],
        targets: [k],
        title: isRefused
          ? `TCP probes to ${k} are refused while UDP and ICMP answer`
          : `TCP probes to ${k} time out while UDP and ICMP answer`,
        summary: `From ${e.sources.size} source${e.sources.size === 1 ? '' : 's'}, podmesh's TCP connects to ${k} fail (${isRefused ? 'refused: nothing listens or a rule rejects with a reset' : 'no answer: a NetworkPolicy or firewall drops the SYN'}) while UDP and ICMP to the same agent get through, so the path is up and only the port is affected.`,
        evidence: e.cells.map((c) => cellEvidence(c)),
        confidence: 0.8,
        nextSteps: agentPortSteps(
          ctx,
          e.node,
          e.net,
          isRefused,
          sourceNodes.find((n) => n !== e.node),
        ),
      }),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Zone pair: every pair between two zones fails while pairs inside each zone work.

export function zonePairs(ctx: Ctx): Draft[] {
  const byZone = new Map<string, string[]>();
  for (const [n, z] of ctx.zones) byZone.set(z, [...(byZone.get(z) ?? []), n]);
  if (byZone.size < 2) return [];
  const all: readonly LinkClass[] = ['hh', 'ov', 'ph'];
  const out: Draft[] = [];
  const zones = [...byZone.keys()].sort(cmp);
  const pairsOf = (xs: readonly string[], ys: readonly string[] | undefined): Pair[] => {
    const r: Pair[] = [];
    if (ys === undefined) {
      for (let i = 0; i < xs.length; i++)
        for (let j = i + 1; j < xs.length; j++) r.push([xs[i]!, xs[j]!]);
    } else for (const x of xs) for (const y of ys) r.push([x, y]);
    return r;
  };
  for (let i = 0; i < zones.length; i++) {
    for (let j = i + 1; j < zones.length; j++) {
      const z1 = zones[i]!;
      const z2 = zones[j]!;
      const n1 = byZone.get(z1)!;
      const n2 = byZone.get(z2)!;
      if (Math.max(n1.length, n2.length) < 2) continue;
      const cross = pairsOf(n1, n2).filter(([a, b]) => classState(ctx, a, b, all).known);
      if (cross.length === 0) continue;
      const bad = cross.filter(([a, b]) => classState(ctx, a, b, all).failing.length > 0);
      if (bad.length / cross.length < ctx.opts.zoneShare) continue;
      const intra = [...pairsOf(n1, undefined), ...pairsOf(n2, undefined)].filter(
        ([a, b]) => classState(ctx, a, b, all).known,
      );
      if (intra.length === 0) continue;
      const intraBad = intra.filter(([a, b]) => classState(ctx, a, b, all).failing.length > 0);
      if (intraBad.length / intra.length > 1 - ctx.opts.zoneShare) continue;
      // A zone of one node whose every peer is across the pair: that is the node, not the zone.
      const inPair = new Set([...n1, ...n2]);
      const lone = [n1, n2].find(
        (ns) =>
          ns.length === 1 &&
          !ctx.nodes.some((m) => !inPair.has(m) && classState(ctx, ns[0]!, m, all).known),
      );
      if (lone !== undefined) continue;
      const subject = `${z1}<->${z2}`;
      const id = `zone-pair:${subject}`;
      const evidence: Ranked[] = [];
      let hostFails = false;
      for (const [a, b] of bad) {
        evidence.push(...evidenceOfFailing(ctx, a, b, all));
        if (classState(ctx, a, b, ['hh']).failing.length > 0) hostFails = true;
      }
      const explained: string[] = [];
      for (const [a, b] of bad) {
        explainLinks(ctx, openLinksBetween(ctx, a, b), id);
        explained.push(`${a}<->${b}`);
      }
      const nodes = [...new Set(bad.flat())];
      const [ea, eb] = bad[0]!;
      out.push(
        draft(ctx, {
          kind: 'zone-pair',
          subject,
          severity: 'critical',
          nodes,
          zones: [z1, z2],
          title: `Traffic between zones ${z1} and ${z2} fails`,
          summary: `${bad.length} of ${cross.length} node pairs between ${z1} and ${z2} fail${hostFails ? ' on the node network too' : ' on the pod network (the node network between them works)'}, while pairs inside each zone work: something between the zones drops it (firewall, security group or network ACL, a missing route${hostFails ? '' : ", or the overlay's UDP port not allowed between the zones' subnets"}).`,
          evidence,
          confidence: Math.min(0.95, 0.6 + 0.35 * (bad.length / cross.length)),
          nextSteps: zoneSteps(ctx, ea, eb),
          explains: capList(explained, 20),
        }),
      );
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Isolated node: both networks fail between a node and most of its peers.

export function isolation(ctx: Ctx): Draft[] {
  const pairs = nodePairs(ctx);
  const bad: Pair[] = [];
  const known = new Map<string, Set<string>>();
  for (const [a, b] of pairs) {
    const hh = classState(ctx, a, b, ['hh']);
    const ov = classState(ctx, a, b, ['ov']);
    if (!hh.known || !ov.known) continue;
    addKnown(known, a, b);
    if (failsBothWays(ctx, a, b, ['hh']) && failsBothWays(ctx, a, b, ['ov'])) bad.push([a, b]);
  }
  const g = groupPairs(bad, known, ctx.opts.hubShare);
  const out: Draft[] = [];
  if (g.cluster) {
    out.push(clusterWideHost(ctx, bad, 'both'));
    return out;
  }
  for (const x of g.hubs) {
    const peers = g.hubPeers.get(x) ?? [];
    const id = `node-isolated:${x}`;
    const evidence: Ranked[] = [];
    for (const p of peers) evidence.push(...evidenceOfFailing(ctx, x, p, ['hh', 'ov', 'ph']));
    const local = localEvidence(ctx, x);
    const states = agentStateEvidence(ctx, x);
    const incomingOnly = ![
      ...(ctx.outLinks.get(agentKey(x, 'pod')) ?? []),
      ...(ctx.outLinks.get(agentKey(x, 'host')) ?? []),
    ].some((l) => l.cls !== 'local' && smallTally(ctx, l).known);
    for (const p of peers) explainLinks(ctx, openLinksBetween(ctx, x, p), id);
    // Everything else failing to or from it is the same cut, even where a pair can't be judged
    // on both networks (an agent missing at the other end).
    for (const p of ctx.nodes)
      if (p !== x)
        explainLinks(
          ctx,
          openLinksBetween(ctx, x, p).filter((l) => smallTally(ctx, l).status === 'failing'),
          id,
        );
    ctx.ipHubs.set(x, id);
    const share = peers.length / (known.get(x)?.size ?? peers.length);
    out.push(
      draft(ctx, {
        kind: 'node-isolated',
        subject: x,
        severity: 'critical',
        nodes: [x, ...peers],
        title: `${x} is isolated`,
        summary: `Traffic to and from ${x} fails on both the pod and the node network from ${peers.length} of ${known.get(x)?.size ?? peers.length} peers, while the other nodes reach each other.${local.ok === true ? ` ${x}'s own pod↔host pair still answers, so the node is up and its connection to the others is what broke (link, switch port, routing or a firewall dropping everything).` : ' The node, its network link, or a firewall dropping everything on it is the likely cause.'}${incomingOnly ? ` ${x}'s own agents could not be read, so this rests on what its peers see.` : ''}`,
        lead: [...states, ...local.ev],
        evidence,
        confidence: Math.max(0.3, 0.5 + 0.45 * share - (incomingOnly ? 0.1 : 0)),
        nextSteps: isolatedSteps(ctx, x, firstPeer(ctx, x, g.hubs)),
        explains: capList(
          peers.map((p) => `${pairKey(x, p)} (every path)`),
          20,
        ),
      }),
    );
  }
  return out;
}

/** Most nodes fail to most nodes on the node network: one cluster-wide host-network finding. */
function clusterWideHost(ctx: Ctx, bad: readonly Pair[], what: 'both' | 'host'): Draft {
  const id = 'host-network:cluster';
  const evidence: Ranked[] = [];
  for (const [a, b] of bad) evidence.push(...evidenceOfFailing(ctx, a, b, ['hh', 'ph', 'ov']));
  for (const [a, b] of bad) explainLinks(ctx, openLinksBetween(ctx, a, b), id);
  const nodes = [...new Set(bad.flat())];
  ctx.clusterIp ??= id;
  return draft(ctx, {
    kind: 'host-network',
    subject: 'cluster',
    severity: 'critical',
    nodes,
    title: 'The node network fails across the cluster',
    summary: `${bad.length} node pairs fail on the node network${what === 'both' ? ' and the pod network with it' : ''}, spread over most nodes: no single node is to blame. Look at what they share: the switch or VPC, a firewall or security-group change applied to every node, the routes.`,
    evidence,
    confidence: 0.7,
    nextSteps: hostNetworkSteps(ctx, nodes[0], nodes[1]),
    explains: capList(
      bad.map(([a, b]) => pairKey(a, b)),
      20,
    ),
  });
}

// ---------------------------------------------------------------------------------------------
// One-way paths: A→B fails while B→A works (the two directions' cells, or STAMP's split).

interface OneWay {
  readonly from: string;
  readonly to: string;
  readonly links: Link[];
  readonly evidence: Ranked[];
  stamp: boolean;
}

export function asymmetric(ctx: Ctx): Draft[] {
  const dirs = new Map<string, OneWay>();
  const note = (from: string, to: string, links: Link[], ev: Ranked[], stamp: boolean): void => {
    const k = `${from}->${to}`;
    const d = dirs.get(k) ?? { from, to, links: [], evidence: [], stamp: false };
    for (const l of links) if (!d.links.includes(l)) d.links.push(l);
    d.evidence.push(...ev);
    d.stamp ||= stamp;
    dirs.set(k, d);
  };
  for (const l of ctx.links.values()) {
    if (l.cls === 'local' || ctx.explainedLinks.has(l.key)) continue;
    const t = smallTally(ctx, l);
    if (t.status !== 'failing') continue;
    const r = reverseOf(ctx, l);
    const rt = r !== undefined && !ctx.explainedLinks.has(r.key) ? smallTally(ctx, r) : undefined;
    // Only a reverse on the same kind of path compares: host-to-pod goes out over the overlay
    // but its reverse, pod-to-host, is masqueraded onto the node network.
    if (r !== undefined && r.cls === l.cls && rt?.status === 'ok') {
      note(
        l.sourceNode,
        l.targetNode,
        [l],
        [linkEvidence(l, t), { ...linkEvidence(r, rt), rank: -1 }],
        false,
      );
      continue;
    }
    // STAMP: which way were the lost packets going? Only known when some answers came back.
    const udp = l.cells.filter((c) => c.protocol === 'udp' && c.size === 'small' && usable(ctx, c));
    const ut = tally(ctx, udp);
    if (ut.status !== 'failing') continue;
    const fwd = udp.reduce((s, c) => s + Math.max(0, c.forwardLost), 0);
    const rev = udp.reduce((s, c) => s + Math.max(0, c.reverseLost), 0);
    if (fwd + rev === 0 || fwd + rev < 0.5 * ut.lost) continue;
    const links = r !== undefined && !ctx.explainedLinks.has(r.key) ? [l, r] : [l];
    const ev = (): Ranked => ({
      text: `${l.sourceNode} → ${l.targetNode} ${l.path} udp small: ${Math.round(ut.lost)} of ${ut.sent} lost; STAMP: ${fwd} on the way out, ${rev} on the way back`,
      sourceNode: l.sourceNode,
      targetNode: l.targetNode,
      path: l.path,
      protocol: 'udp',
      value: ut.ratio,
    });
    if (fwd >= ctx.opts.directionShare * (fwd + rev))
      note(l.sourceNode, l.targetNode, links, [ev()], true);
    else if (rev >= ctx.opts.directionShare * (fwd + rev))
      note(l.targetNode, l.sourceNode, links, [ev()], true);
  }
  if (dirs.size === 0) return [];

  // A node at the sending or receiving end of most of its peers' one-way failures is the cause.
  const peersOf = (x: string): number =>
    ctx.nodes.filter(
      (y) =>
        y !== x && (ctx.pairLinks.get(pairKey(x, y)) ?? []).some((l) => smallTally(ctx, l).known),
    ).length;
  const out: Draft[] = [];
  const used = new Set<string>();
  const candidates: { node: string; out: boolean; ds: OneWay[] }[] = [];
  for (const x of ctx.nodes) {
    const outs = [...dirs.values()].filter((d) => d.from === x);
    const ins = [...dirs.values()].filter((d) => d.to === x);
    const k = peersOf(x);
    if (outs.length >= 2 && outs.length >= ctx.opts.hubShare * k)
      candidates.push({ node: x, out: true, ds: outs });
    if (ins.length >= 2 && ins.length >= ctx.opts.hubShare * k)
      candidates.push({ node: x, out: false, ds: ins });
  }
  candidates.sort((a, b) => b.ds.length - a.ds.length || cmp(a.node, b.node));
  for (const c of candidates) {
    const ds = c.ds.filter((d) => !used.has(`${d.from}->${d.to}`));
    if (ds.length < 2) continue;
    const id = `asymmetric-path:${c.node}`;
    if (out.some((f) => f.id === id)) continue;
    for (const d of ds) {
      used.add(`${d.from}->${d.to}`);
      explainLinks(ctx, d.links, id);
    }
    const others = ds.map((d) => (c.out ? d.to : d.from));
    out.push(
      draft(ctx, {
        kind: 'asymmetric-path',
        subject: c.node,
        severity: 'warning',
        nodes: [c.node, ...others],
        title: c.out
          ? `Traffic from ${c.node} fails while traffic to it works`
          : `Traffic to ${c.node} fails while traffic from it works`,
        summary: c.out
          ? `${c.node} → ${ds.length} peers fails while the same peers reach ${c.node}: an egress rule on ${c.node}, or a stateful firewall on the way that only lets replies through, or a return route that differs from the way out.`
          : `${ds.length} peers → ${c.node} fails while ${c.node} reaches them: an ingress rule on ${c.node} (NetworkPolicy or host firewall; replies to its own traffic pass as established), or a return route that differs from the way in.`,
        evidence: ds.flatMap((d) => d.evidence),
        confidence: ds.some((d) => d.stamp) ? 0.8 : 0.7,
        nextSteps: c.out
          ? asymmetricSteps(ctx, c.node, others[0]!)
          : asymmetricSteps(ctx, others[0]!, c.node),
        explains: capList(
          ds.map((d) => `${d.from}->${d.to}`),
          20,
        ),
      }),
    );
  }
  for (const d of [...dirs.values()].sort((a, b) => cmp(a.from, b.from) || cmp(a.to, b.to))) {
    const k = `${d.from}->${d.to}`;
    if (used.has(k)) continue;
    const id = `asymmetric-path:${k}`;
    explainLinks(ctx, d.links, id);
    out.push(
      draft(ctx, {
        kind: 'asymmetric-path',
        subject: k,
        severity: 'warning',
        nodes: [d.from, d.to],
        title: `${d.from} → ${d.to} fails while ${d.to} → ${d.from} works`,
        summary: d.stamp
          ? `STAMP puts the loss between ${d.from} and ${d.to} on the way from ${d.from} to ${d.to}: packets in that direction are dropped (a one-way filter, a congested or faulty link in that direction, or a return route that differs).`
          : `${d.from}'s probes to ${d.to} fail while ${d.to}'s probes to ${d.from} are answered: traffic started by ${d.from} is dropped and replies to ${d.to} pass, the mark of a stateful rule (NetworkPolicy ingress on ${d.to}, a host firewall) or of asymmetric routing.`,
        evidence: d.evidence,
        confidence: d.stamp ? 0.8 : 0.7,
        nextSteps: asymmetricSteps(ctx, d.from, d.to),
      }),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Node network: host-to-host (or pod-to-node-address) fails between nodes, not isolated.

function emitGrouped(
  ctx: Ctx,
  g: Grouping,
  bad: readonly Pair[],
  make: (scope: {
    subject: string;
    hubs: string[];
    pairs: Pair[];
    cluster: boolean;
  }) => Draft | undefined,
): Draft[] {
  const out: Draft[] = [];
  if (g.cluster) {
    const d = make({ subject: 'cluster', hubs: [], pairs: [...bad], cluster: true });
    if (d !== undefined) out.push(d);
    return out;
  }
  for (const x of g.hubs) {
    const peers = g.hubPeers.get(x) ?? [];
    const d = make({
      subject: x,
      hubs: [x],
      pairs: peers.map((p) => [x, p] as const),
      cluster: false,
    });
    if (d !== undefined) out.push(d);
  }
  for (const p of g.pairs) {
    const d = make({ subject: `${p[0]}<->${p[1]}`, hubs: [], pairs: [p], cluster: false });
    if (d !== undefined) out.push(d);
  }
  return out;
}

export function hostNetwork(ctx: Ctx): Draft[] {
  const pairs = nodePairs(ctx);
  const classes: readonly LinkClass[] = ['hh', 'ph'];
  const known = knownPeers(ctx, pairs, classes);
  const bad = pairs.filter(([a, b]) => classState(ctx, a, b, classes).failing.length > 0);
  if (bad.length === 0) return [];
  const g = groupPairs(bad, known, ctx.opts.hubShare);
  if (g.cluster) return [clusterWideHost(ctx, bad, 'host')];
  const twoNodes = ctx.nodes.filter((n) => known.has(n)).length <= 2;
  return emitGrouped(ctx, g, bad, ({ subject, hubs, pairs: ps }) => {
    const id = `host-network:${subject}`;
    const evidence: Ranked[] = [];
    let hhFails = false;
    let podFails = false;
    for (const [a, b] of ps) {
      evidence.push(...evidenceOfFailing(ctx, a, b, ['hh', 'ph', 'ov']));
      if (classState(ctx, a, b, ['hh']).failing.length > 0) hhFails = true;
      if (classState(ctx, a, b, ['ov']).failing.length > 0) podFails = true;
    }
    for (const [a, b] of ps) explainLinks(ctx, openLinksBetween(ctx, a, b), id);
    const hub = hubs[0];
    if (hub !== undefined) ctx.ipHubs.set(hub, id);
    const [a, b] = ps[0]!;
    const what = hhFails
      ? `node-to-node traffic fails${podFails ? ', and pod traffic with it (the overlay rides the node network)' : " while pod traffic still passes (so the node agents' own ports or ICMP may be what is filtered)"}`
      : 'only pods reaching node addresses fails (traffic masqueraded to the node address): SNAT or a host firewall rule about pod sources';
    const summary =
      hub !== undefined
        ? `Between ${hub} and ${ps.length} of its peers ${what}; the other nodes reach each other, so look at ${hub}: its firewall, routes and interface. It is not isolated${podFails ? ' from everyone' : ''}.`
        : twoNodes
          ? `Between ${a} and ${b} ${what}. With only two nodes podmesh can't tell which side is cut off; check both.`
          : `Between ${a} and ${b} ${what}, while each still reaches other nodes: a route, firewall rule or link specific to this pair.`;
    return draft(ctx, {
      kind: 'host-network',
      subject,
      severity: 'critical',
      nodes: ps.flat(),
      title:
        hub !== undefined
          ? `The node network of ${hub} fails to most peers`
          : `The node network between ${a} and ${b} fails`,
      summary,
      evidence,
      confidence: hub !== undefined ? 0.8 : twoNodes ? 0.6 : 0.75,
      nextSteps:
        hub !== undefined ? hostNetworkSteps(ctx, hub, undefined) : hostNetworkSteps(ctx, a, b),
      explains: capList(
        ps.map(([x, y]) => pairKey(x, y)),
        20,
      ),
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Overlay: traffic to pod agents across nodes fails while the node network between them works.

export function overlay(ctx: Ctx): Draft[] {
  const pairs = nodePairs(ctx);
  const known = knownPeers(ctx, pairs, ['ov']);
  const bad = pairs.filter(
    ([a, b]) =>
      classState(ctx, a, b, ['ov']).failing.length > 0 &&
      classState(ctx, a, b, ['hh']).failing.length === 0,
  );
  if (bad.length === 0) return [];
  const g = groupPairs(bad, known, ctx.opts.hubShare);
  return emitGrouped(ctx, g, bad, ({ subject, hubs, pairs: ps, cluster }) => {
    const id = `overlay-broken:${subject}`;
    const evidence: Ranked[] = [];
    let hostKnown = 0;
    for (const [a, b] of ps) {
      evidence.push(...evidenceOfFailing(ctx, a, b, ['ov']));
      if (classState(ctx, a, b, ['hh']).known) hostKnown++;
    }
    const lead: Ranked[] = [];
    const hostOk = ps.slice(0, 3).flatMap(([a, b]) =>
      classState(ctx, a, b, ['hh'])
        .links.slice(0, 1)
        .map((x) => linkEvidence(x.link, x.t)),
    );
    lead.push(...hostOk);
    let localBroken = false;
    for (const h of cluster ? [] : hubs) {
      const local = localEvidence(ctx, h);
      lead.push(...local.ev);
      if (local.ok === false) {
        localBroken = true;
        explainLinks(
          ctx,
          [...ctx.links.values()].filter((l) => l.cls === 'local' && l.sourceNode === h),
          id,
        );
      }
    }
    // Pod-to-host replies come back over the overlay in CNIs that don't masquerade node-bound
    // traffic: failing pod-to-host links between the same nodes are the overlay's too.
    for (const [a, b] of ps)
      explainLinks(
        ctx,
        openLinksBetween(ctx, a, b).filter(
          (l) => l.cls === 'ov' || (l.cls === 'ph' && smallTally(ctx, l).status === 'failing'),
        ),
        id,
      );
    for (const h of hubs) ctx.ipHubs.set(h, id);
    if (cluster) ctx.clusterIp ??= id;
    const hub = hubs[0];
    const [a, b] = ps[0]!;
    const hostWorks =
      hostKnown > 0
        ? 'while the node network between the same nodes works'
        : '(the node network between them was not measured)';
    const summary = cluster
      ? `Pod traffic across nodes fails between most nodes ${hostWorks}: the overlay is down cluster-wide (CNI agents, their configuration, or the tunnel's UDP port filtered everywhere).`
      : hub !== undefined
        ? `Traffic to pods across nodes fails between ${hub} and ${ps.length} of its peers ${hostWorks}: ${hub}'s overlay is broken (its CNI agent, its VXLAN device, or a firewall dropping the tunnel's UDP port 8472/4789 on it).${localBroken ? ` Even ${hub}'s pod↔host pair on the same node fails: the pod network on ${hub} itself (veth, bridge, CNI) is broken.` : ` Same-node traffic on ${hub} still works.`}`
        : `Traffic to pods between ${a} and ${b} fails ${hostWorks}: the overlay between these two nodes (a stale route or forwarding entry for the other's pod subnet, or the tunnel port filtered between them).`;
    return draft(ctx, {
      kind: 'overlay-broken',
      subject,
      severity: 'critical',
      nodes: ps.flat(),
      title: cluster
        ? 'The pod network (overlay) fails across the cluster'
        : hub !== undefined
          ? `The pod network (overlay) of ${hub} is broken`
          : `The pod network (overlay) between ${a} and ${b} is broken`,
      summary,
      lead,
      evidence,
      confidence: hostKnown > 0 ? (hub !== undefined || cluster ? 0.85 : 0.7) : 0.55,
      nextSteps: overlaySteps(ctx, hubs, hub !== undefined ? firstPeer(ctx, hub, hubs) : b),
      explains: capList(
        ps.map(([x, y]) => `${pairKey(x, y)} pod paths`),
        20,
      ),
    });
  });
}

// ---------------------------------------------------------------------------------------------
// MTU black hole: small probes answered, MTU-sized ones lost, on the same link and protocol.

export function mtuBlackholes(ctx: Ctx): Draft[] {
  interface Sym {
    readonly link: Link;
    readonly cell: Cell;
    readonly small: Cell;
  }
  const syms: Sym[] = [];
  for (const l of ctx.links.values()) {
    if (ctx.explainedLinks.has(l.key)) continue;
    for (const p of ['udp', 'icmp', 'tcp'] as const) {
      const small = l.cells.find((c) => c.protocol === p && c.size === 'small' && usable(ctx, c));
      const big = l.cells.find((c) => c.protocol === p && c.size === 'mtu' && usable(ctx, c));
      if (small === undefined || big === undefined) continue;
      if (statusOf(cellRatio(small)!, ctx.opts) === 'failing') continue;
      if (statusOf(cellRatio(big)!, ctx.opts) !== 'failing') continue;
      syms.push({ link: l, cell: big, small });
    }
  }
  if (syms.length === 0) return [];
  const known = new Map<string, Set<string>>();
  for (const l of ctx.links.values())
    if (
      l.cls !== 'local' &&
      !ctx.explainedLinks.has(l.key) &&
      l.cells.some((c) => c.size === 'mtu' && usable(ctx, c))
    )
      addKnown(known, l.sourceNode, l.targetNode);
  const cross = syms.filter((s) => s.link.cls !== 'local');
  const bad = [
    ...new Map(
      cross.map((s) => {
        const p: Pair =
          s.link.sourceNode < s.link.targetNode
            ? [s.link.sourceNode, s.link.targetNode]
            : [s.link.targetNode, s.link.sourceNode];
        return [pairKey(p[0], p[1]), p] as const;
      }),
    ).values(),
  ];
  const g = groupPairs(bad, known, ctx.opts.hubShare);
  const out = emitGrouped(ctx, g, bad, ({ subject, hubs, pairs: ps, cluster }) => {
    const keys = new Set(ps.map(([a, b]) => pairKey(a, b)));
    const mine = cross.filter((s) => keys.has(pairKey(s.link.sourceNode, s.link.targetNode)));
    return mtuDraft(ctx, subject, mine, cluster, hubs[0], ps[0]!);
  });
  const byNode = new Map<string, Sym[]>();
  for (const s of syms.filter((x) => x.link.cls === 'local'))
    byNode.set(s.link.sourceNode, [...(byNode.get(s.link.sourceNode) ?? []), s]);
  for (const [n, ss] of [...byNode].sort((x, y) => cmp(x[0], y[0])))
    out.push(mtuDraft(ctx, `${n}/pod<->${n}/host`, ss, false, undefined, [n, n]));
  return out;

  function mtuDraft(
    c: Ctx,
    subject: string,
    mine: readonly Sym[],
    cluster: boolean,
    hub: string | undefined,
    pair: Pair,
  ): Draft {
    const id = `mtu-blackhole:${subject}`;
    for (const s of mine) c.takenCells.set(s.cell, id);
    const overlayOnly = mine.every((s) => s.link.cls === 'ov');
    const hostToPodIcmpOnly = mine.every(
      (s) => s.link.path === 'host-to-pod' && s.cell.protocol === 'icmp',
    );
    const where = overlayOnly
      ? "only on paths to pods (the overlay): the tunnel device's MTU is larger than what fits in the node network after encapsulation"
      : 'on the node network too: a link on the way has a smaller MTU than the nodes use, and the "fragmentation needed" messages that would tell them are lost or filtered';
    const scope = cluster
      ? 'across the cluster'
      : hub !== undefined
        ? `between ${hub} and most of its peers (check ${hub}'s MTU settings against the others')`
        : pair[0] === pair[1]
          ? `on ${pair[0]} between its pod and host agents`
          : `between ${pair[0]} and ${pair[1]}`;
    return draft(c, {
      kind: 'mtu-blackhole',
      subject,
      severity: 'critical',
      nodes: mine.flatMap((s) => [s.link.sourceNode, s.link.targetNode]),
      title: cluster
        ? 'MTU black hole across the cluster'
        : hub !== undefined
          ? `MTU black hole on ${hub}`
          : `MTU black hole ${pair[0] === pair[1] ? `on ${pair[0]}` : `between ${pair[0]} and ${pair[1]}`}`,
      summary: `Small probes are answered but MTU-sized ones are lost ${scope}, ${where}. Small requests work and large transfers (TLS handshakes, big responses) hang.${hostToPodIcmpOnly ? " Only host agents' ICMP to pods is affected: if the host agents size MTU probes to their own interface, set probes.mtuBytes to the pod network's MTU." : ''}`,
      evidence: mine.map((s) => cellEvidence(s.cell, ` (small: ${pct(cellRatio(s.small)!)} lost)`)),
      confidence: hostToPodIcmpOnly ? 0.5 : 0.85,
      nextSteps: mtuSteps(
        c,
        hub ?? pair[0],
        hub !== undefined ? firstPeer(c, hub, []) : pair[1] !== pair[0] ? pair[1] : undefined,
      ),
      explains: capList(
        mine.map(
          (s) => `${s.link.sourceNode}->${s.link.targetNode} ${s.link.path} ${s.cell.protocol} mtu`,
        ),
        20,
      ),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Pair loss: whatever loss is left once every broader cause has taken its share.

export function pairLoss(ctx: Ctx): Draft[] {
  interface Lossy {
    readonly link: Link;
    readonly cell: Cell;
  }
  const lossy: Lossy[] = [];
  const known = new Map<string, Set<string>>();
  for (const l of ctx.links.values()) {
    if (ctx.explainedLinks.has(l.key)) continue;
    for (const c of l.cells) {
      if (!usable(ctx, c)) continue;
      if (l.cls !== 'local') addKnown(known, l.sourceNode, l.targetNode);
      if (cellRatio(c)! >= ctx.opts.lossyRatio) lossy.push({ link: l, cell: c });
    }
  }
  if (lossy.length === 0) return [];
  const cross = lossy.filter((x) => x.link.cls !== 'local');
  const pairsMap = new Map<string, Pair>();
  for (const x of cross) {
    const p: Pair =
      x.link.sourceNode < x.link.targetNode
        ? [x.link.sourceNode, x.link.targetNode]
        : [x.link.targetNode, x.link.sourceNode];
    pairsMap.set(pairKey(p[0], p[1]), p);
  }
  const bad = [...pairsMap.values()];
  const g = groupPairs(bad, known, ctx.opts.hubShare);
  const out = emitGrouped(ctx, g, bad, ({ subject, hubs, pairs: ps, cluster }) => {
    const keys = new Set(ps.map(([a, b]) => pairKey(a, b)));
    const mine = cross.filter((x) => keys.has(pairKey(x.link.sourceNode, x.link.targetNode)));
    return lossDraft(subject, mine, cluster, hubs[0], ps[0]!);
  });
  const byNode = new Map<string, Lossy[]>();
  for (const x of lossy.filter((y) => y.link.cls === 'local'))
    byNode.set(x.link.sourceNode, [...(byNode.get(x.link.sourceNode) ?? []), x]);
  for (const [n, xs] of [...byNode].sort((a, b) => cmp(a[0], b[0])))
    out.push(lossDraft(`${n}/pod<->${n}/host`, xs, false, undefined, [n, n]));
  return out;

  function lossDraft(
    subject: string,
    mine: readonly Lossy[],
    cluster: boolean,
    hub: string | undefined,
    pair: Pair,
  ): Draft {
    const id = `pair-loss:${subject}`;
    const links = [...new Set(mine.map((x) => x.link))];
    explainLinks(ctx, links, id);
    const worst = Math.max(...links.map((l) => smallTally(ctx, l).ratio));
    const protocols = [...new Set(mine.map((x) => x.cell.protocol))].sort(cmp);
    const sizes = [...new Set(mine.map((x) => x.cell.size))];
    // STAMP's split, summed per direction of travel between the pair.
    let ab = 0;
    let ba = 0;
    if (pair[0] !== pair[1]) {
      for (const l of links)
        for (const c of l.cells) {
          if (c.protocol !== 'udp' || !usable(ctx, c)) continue;
          const out = l.sourceNode === pair[0] ? 1 : 0;
          if (out) {
            ab += Math.max(0, c.forwardLost);
            ba += Math.max(0, c.reverseLost);
          } else {
            ba += Math.max(0, c.forwardLost);
            ab += Math.max(0, c.reverseLost);
          }
        }
    }
    const dir =
      hub === undefined && !cluster && ab + ba > 0
        ? ab >= ctx.opts.directionShare * (ab + ba)
          ? ` STAMP puts the loss on the way from ${pair[0]} to ${pair[1]}.`
          : ba >= ctx.opts.directionShare * (ab + ba)
            ? ` STAMP puts the loss on the way from ${pair[1]} to ${pair[0]}.`
            : ' STAMP sees loss in both directions.'
        : '';
    const only =
      protocols.length === 1 && protocols[0] === 'icmp'
        ? ' Only ICMP is lost: ICMP rate limiting or a firewall rule for ICMP, not the path itself.'
        : protocols.length === 1 && protocols[0] === 'tcp'
          ? ' Only TCP connects fail.'
          : sizes.length === 1 && sizes[0] === 'mtu'
            ? ' Only MTU-sized probes are lost, and not always: a path MTU problem on some of the routes (ECMP), or fragments dropped under load.'
            : '';
    const where = cluster
      ? 'across most of the cluster'
      : hub !== undefined
        ? `between ${hub} and most of its peers`
        : pair[0] === pair[1]
          ? `between ${pair[0]}'s pod and host agents`
          : `between ${pair[0]} and ${pair[1]}`;
    return draft(ctx, {
      kind: 'pair-loss',
      subject,
      severity: worst >= ctx.opts.failRatio ? 'critical' : 'warning',
      nodes: mine.flatMap((x) => [x.link.sourceNode, x.link.targetNode]),
      title: cluster ? 'Packet loss across the cluster' : `Packet loss ${where}`,
      summary: `Probes are lost ${where} (worst path ${pct(worst)} over small probes) and no broader cause explains it.${dir}${only}${hub !== undefined ? ` ${hub} is the common end: its interface, its load, or its link.` : ''}`,
      evidence: mine.map((x) => cellEvidence(x.cell)),
      confidence: hub !== undefined || cluster ? 0.7 : 0.6,
      nextSteps: lossSteps(
        ctx,
        hub ?? pair[0],
        hub !== undefined ? firstPeer(ctx, hub, []) : pair[1] !== pair[0] ? pair[1] : undefined,
      ),
    });
  }
}

/** Every IP-path rule in order; each one sees only what the earlier ones left. */
export function reachability(ctx: Ctx): Draft[] {
  return [
    ...zonePairs(ctx),
    ...isolation(ctx),
    ...asymmetric(ctx),
    ...overlay(ctx),
    ...hostNetwork(ctx),
    ...mtuBlackholes(ctx),
    ...pairLoss(ctx),
  ];
}
