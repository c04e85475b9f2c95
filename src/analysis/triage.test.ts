// Triage as a table of named cases: for every kind a snapshot that must produce it and nothing
// else, and the near misses that must not (a lossy pair is not an isolated node, a starved
// prober is not the network, no data is not failure...). Then what every finding must carry
// (evidence, explains, next steps with real names), and a property: triage never throws on a
// random snapshot and its ids are unique.

import test from 'ava';
import fc from 'fast-check';
import { cluster, type PortTargetSpec, type SnapshotBuilder } from '../../test/support/fixtures.ts';
import {
  baselinesOf,
  betweenNodes,
  delay,
  slow,
  touches,
  withBaselines,
} from '../../test/support/latency.ts';
import { plumbing, withPlumbing } from '../../test/support/plumbing.ts';
import { compareFindings, triage, type TriageOptions } from './triage.ts';
import { FINDING_KINDS, type Finding, type Snapshot } from './types.ts';

const WEB: PortTargetSpec = { name: 'web', address: '10.244.3.9', port: 8080, expected: 'open' };
const DB: PortTargetSpec = { name: 'db', address: '10.244.2.9', port: 5432, expected: 'closed' };
const PORTS = [WEB, DB];

interface Want {
  readonly id: string;
  /** Exactly these nodes, when given. */
  readonly nodes?: readonly string[];
}

interface Case {
  readonly name: string;
  readonly snapshot: () => Snapshot;
  readonly want: readonly Want[];
  readonly options?: Partial<TriageOptions>;
}

const fourZones = { 'node-1': 'a', 'node-2': 'a', 'node-3': 'b', 'node-4': 'b' };

/** A snapshot whose links carry the baselines they had before `fault` (test/support/latency.ts). */
function afterBaseline(b: SnapshotBuilder, fault: (b: SnapshotBuilder) => void): Snapshot {
  const base = baselinesOf(b);
  fault(b);
  return withBaselines(b.build(), base);
}

const cases: readonly Case[] = [
  // --- healthy and too little data -------------------------------------------------------
  { name: 'healthy 3 nodes: nothing', snapshot: () => cluster({ ports: PORTS }).build(), want: [] },
  {
    name: 'healthy 2 nodes, no DNS replicas, no ports: nothing',
    snapshot: () => cluster({ nodes: 2, dnsReplicas: [] }).build(),
    want: [],
  },
  {
    name: 'too few probes: an isolated-looking node is not judged',
    snapshot: () => cluster().isolate('node-3', { readable: true }).fewProbes(5).build(),
    want: [],
  },
  {
    name: 'too few DNS lookups and connects: nothing',
    snapshot: () =>
      cluster({ ports: PORTS, dnsQueries: 2, portChecks: 2 })
        .dnsAllDown()
        .portTimeout('web')
        .build(),
    want: [],
  },
  {
    // Was a pair-loss finding in the lab ("1 of 20 lost"): 5%, 99% interval 0.6–32%.
    name: 'near miss: 1 of 20 lost on a healthy path is not lossy',
    snapshot: () =>
      cluster({ probes: 20 })
        .lose(
          (c) =>
            c.sourceNode === 'node-1' &&
            c.targetNode === 'node-2' &&
            c.path === 'pod-to-pod' &&
            c.protocol === 'udp' &&
            c.size === 'small',
          1 / 20,
        )
        .build(),
    want: [],
  },
  {
    name: 'near miss: 50% one-way loss, TCP a little worse than UDP and ICMP, is no port finding',
    snapshot: () =>
      cluster()
        .lossy('node-1', 'node-2', 0.45, { oneWay: true })
        .lose(
          (c) =>
            c.protocol === 'tcp' &&
            c.sourceNode !== c.targetNode &&
            [c.sourceNode, c.targetNode].every((n) => n === 'node-1' || n === 'node-2'),
          0.57,
        )
        .build(),
    want: [{ id: 'pair-loss:node-1<->node-2' }],
  },
  {
    name: 'near miss: 30% random loss hitting MTU-sized probes a little more is no MTU finding',
    snapshot: () =>
      cluster()
        .lossy('node-1', 'node-2', 0.27)
        .lose(
          (c) =>
            c.size === 'mtu' &&
            c.sourceNode !== c.targetNode &&
            [c.sourceNode, c.targetNode].every((n) => n === 'node-1' || n === 'node-2'),
          0.5,
        )
        .build(),
    want: [{ id: 'pair-loss:node-1<->node-2' }],
  },
  {
    name: 'loss under the lossy threshold: nothing',
    snapshot: () => cluster().lossy('node-1', 'node-2', 0.03).build(),
    want: [],
  },

  // --- node-isolated ------------------------------------------------------------------------
  {
    name: 'node-isolated: node-3 cut off, its agents unreadable',
    snapshot: () => cluster({ nodes: 4 }).isolate('node-3').build(),
    want: [{ id: 'node-isolated:node-3', nodes: ['node-1', 'node-2', 'node-3', 'node-4'] }],
  },
  {
    name: 'node-isolated: 3 nodes, still readable (its own rows say the same)',
    snapshot: () => cluster().isolate('node-3', { readable: true }).build(),
    want: [{ id: 'node-isolated:node-3', nodes: ['node-1', 'node-2', 'node-3'] }],
  },
  {
    name: 'node-isolated: DNS and port checks behind the cut are its symptoms',
    snapshot: () =>
      cluster({ ports: PORTS, dnsReplicas: ['node-1', 'node-3'] })
        .isolate('node-3')
        .dnsFail((d) => d.server === 'node-3')
        .dnsFail((d) => d.serverKind === 'service' && d.transport === 'tcp', 'timeout', 0.5)
        .portTimeout('web')
        .build(),
    want: [{ id: 'node-isolated:node-3' }],
  },
  {
    name: 'node-isolated: gone NotReady, so missing from the coverage list: still isolated',
    snapshot: () => {
      const b = cluster({ coverage: true }).isolate('node-3');
      b.coverage = b.coverage!.filter((c) => c.node !== 'node-3');
      return b.build();
    },
    want: [{ id: 'node-isolated:node-3' }],
  },
  {
    name: 'two of five nodes isolated: two findings, no pair findings',
    snapshot: () =>
      cluster({ nodes: 5 })
        .isolate('node-1', { readable: true })
        .isolate('node-2', { readable: true })
        .build(),
    want: [{ id: 'node-isolated:node-1' }, { id: 'node-isolated:node-2' }],
  },
  {
    name: 'near miss: 2-node partition is not "node isolated" (can not tell which)',
    snapshot: () => cluster({ nodes: 2 }).partition('node-1', 'node-2').build(),
    want: [{ id: 'host-network:node-1<->node-2', nodes: ['node-1', 'node-2'] }],
  },
  {
    name: 'near miss: one lossy pair is not node-isolated',
    snapshot: () => cluster().lossy('node-1', 'node-2', 0.2).build(),
    want: [{ id: 'pair-loss:node-1<->node-2', nodes: ['node-1', 'node-2'] }],
  },
  {
    name: 'near miss: a missing agent (coverage) is a coverage gap, not isolated',
    snapshot: () =>
      cluster({ nodes: 4 }).coverageGap('node-3', 'pod').coverageGap('node-3', 'host').build(),
    want: [{ id: 'coverage-gap:node-3', nodes: ['node-3'] }],
  },
  {
    name: 'near miss: without coverage, an agent refusing the controller is no data, not failure',
    snapshot: () =>
      cluster()
        .agentState('node-2', 'pod', 'unreachable', 'connect ECONNREFUSED 10.244.2.2:9860')
        .lose((c) => c.targetNode === 'node-2' && c.targetNetwork === 'pod', 1)
        .build(),
    want: [{ id: 'coverage-gap:node-2/pod' }],
  },
  {
    name: 'near miss: everything fails everywhere is cluster-wide, not three isolated nodes',
    snapshot: () =>
      cluster()
        .isolate('node-1', { readable: true })
        .isolate('node-2', { readable: true })
        .isolate('node-3', { readable: true })
        .build(),
    want: [{ id: 'host-network:cluster' }],
  },

  // --- overlay-broken -------------------------------------------------------------------------
  {
    name: "overlay-broken: node-2's VXLAN blocked (pod paths to and from it), host fine",
    snapshot: () => cluster().breakOverlay('node-2').build(),
    want: [{ id: 'overlay-broken:node-2', nodes: ['node-1', 'node-2', 'node-3'] }],
  },
  {
    name: 'overlay-broken: cluster-wide',
    snapshot: () => cluster({ nodes: 4 }).breakOverlay().build(),
    want: [{ id: 'overlay-broken:cluster' }],
  },
  {
    name: 'overlay-broken: between one pair only',
    snapshot: () =>
      cluster({ nodes: 4 })
        .lose(
          (c) =>
            ((c.sourceNode === 'node-1' && c.targetNode === 'node-2') ||
              (c.sourceNode === 'node-2' && c.targetNode === 'node-1')) &&
            c.targetNetwork === 'pod',
          1,
        )
        .build(),
    want: [{ id: 'overlay-broken:node-1<->node-2', nodes: ['node-1', 'node-2'] }],
  },
  {
    name: 'overlay-broken: the replica on the broken node and its VIP share are not DNS findings',
    snapshot: () =>
      cluster({ ports: PORTS })
        .breakOverlay('node-2')
        .dnsFail((d) => d.sourceNode !== 'node-2' && d.server === 'node-2')
        .dnsFail((d) => d.sourceNode === 'node-2' && d.server === 'node-1')
        .dnsFail((d) => d.serverKind === 'service', 'timeout', 0.5)
        .portTimeout('db', 'node-2')
        .build(),
    want: [{ id: 'overlay-broken:node-2' }],
  },
  {
    name: 'overlay-broken: a port target on the broken node is its symptom',
    snapshot: () =>
      cluster({ ports: PORTS })
        .breakOverlay('node-3')
        .portTimeout('web', 'node-1')
        .portTimeout('web', 'node-2')
        .build(),
    want: [{ id: 'overlay-broken:node-3' }],
  },
  {
    name: 'overlay-broken: pod-to-host replies ride the overlay too (no masquerade): still overlay',
    snapshot: () =>
      cluster()
        .breakOverlay('node-2')
        .lose(
          (c) =>
            c.path === 'pod-to-host' &&
            c.sourceNode !== c.targetNode &&
            (c.sourceNode === 'node-2' || c.targetNode === 'node-2'),
          1,
        )
        .build(),
    want: [{ id: 'overlay-broken:node-2' }],
  },
  {
    name: 'overlay-broken: even same-node pod↔host fails (CNI on the node)',
    snapshot: () => cluster().breakOverlay('node-2').breakLocal('node-2').build(),
    want: [{ id: 'overlay-broken:node-2' }],
  },

  // --- host-network ---------------------------------------------------------------------------
  {
    name: 'host-network: one pair cut on every path, each still reaches node-3',
    snapshot: () => cluster().partition('node-1', 'node-2').build(),
    want: [{ id: 'host-network:node-1<->node-2', nodes: ['node-1', 'node-2'] }],
  },
  {
    name: 'host-network: only the node network between a pair fails',
    snapshot: () => cluster().blockHostNetwork('node-1', 'node-2').build(),
    want: [{ id: 'host-network:node-1<->node-2' }],
  },
  {
    name: "host-network: node-3's node network fails to every peer, pods still pass",
    snapshot: () =>
      cluster({ nodes: 4 })
        .blockHostNetwork('node-3', 'node-1')
        .blockHostNetwork('node-3', 'node-2')
        .blockHostNetwork('node-3', 'node-4')
        .build(),
    want: [{ id: 'host-network:node-3', nodes: ['node-1', 'node-2', 'node-3', 'node-4'] }],
  },

  // --- mtu-blackhole --------------------------------------------------------------------------
  {
    name: 'mtu-blackhole: cluster-wide (small fine, MTU-sized lost on every cross-node path)',
    snapshot: () => cluster().mtu().build(),
    want: [{ id: 'mtu-blackhole:cluster' }],
  },
  {
    name: 'mtu-blackhole: one node',
    snapshot: () =>
      cluster({ nodes: 4 })
        .mtu((c) => c.sourceNode === 'node-2' || c.targetNode === 'node-2')
        .build(),
    want: [{ id: 'mtu-blackhole:node-2' }],
  },
  {
    name: 'mtu-blackhole: one pair, overlay only',
    snapshot: () =>
      cluster({ nodes: 4 })
        .mtu(
          (c) =>
            ((c.sourceNode === 'node-1' && c.targetNode === 'node-2') ||
              (c.sourceNode === 'node-2' && c.targetNode === 'node-1')) &&
            c.targetNetwork === 'pod',
        )
        .build(),
    want: [{ id: 'mtu-blackhole:node-1<->node-2', nodes: ['node-1', 'node-2'] }],
  },
  {
    name: 'near miss: MTU-sized loss under the fail ratio is pair-loss, not an MTU black hole',
    snapshot: () =>
      cluster()
        .lose(
          (c) =>
            c.size === 'mtu' &&
            ((c.sourceNode === 'node-1' && c.targetNode === 'node-2') ||
              (c.sourceNode === 'node-2' && c.targetNode === 'node-1')),
          0.2,
        )
        .build(),
    want: [{ id: 'pair-loss:node-1<->node-2' }],
  },
  {
    name: 'near miss: a cut-off node loses its MTU probes too; that is not an MTU black hole',
    snapshot: () => cluster({ nodes: 4 }).isolate('node-2', { readable: true }).mtu().build(),
    want: [{ id: 'node-isolated:node-2' }, { id: 'mtu-blackhole:cluster' }],
  },

  // --- DNS ------------------------------------------------------------------------------------
  {
    name: 'dns-replica: replica node-1 down (VIP lookups landing on it fail too)',
    snapshot: () => cluster().dnsReplicaDown('node-1').build(),
    want: [{ id: 'dns-replica:node-1', nodes: ['node-1'] }],
  },
  {
    name: 'dns-service: VIP fails while replicas answer',
    snapshot: () => cluster().dnsServiceDown().build(),
    want: [{ id: 'dns-service:service' }],
  },
  {
    name: 'dns-all: every server fails',
    snapshot: () => cluster().dnsAllDown().build(),
    want: [{ id: 'dns-all:all' }],
  },
  {
    name: 'dns-all: every server fails from node-3 only (its DNS egress dropped)',
    snapshot: () => cluster().dnsBlockedFrom('node-3').build(),
    want: [{ id: 'dns-all:node-3', nodes: ['node-3'] }],
  },
  {
    name: 'dns-upstream: only the external name fails, on every server',
    snapshot: () => cluster().dnsUpstreamDown().build(),
    want: [{ id: 'dns-upstream:example.com' }],
  },
  {
    name: 'dns-replica: only one replica fails the external name',
    snapshot: () =>
      cluster()
        .dnsFail((d) => d.query === 'external' && d.server === 'node-2', 'servfail')
        .dnsFail((d) => d.query === 'external' && d.serverKind === 'service', 'servfail', 0.5)
        .build(),
    want: [{ id: 'dns-replica:node-2' }],
  },
  {
    name: 'near miss: DNS failing from a node whose IP paths fail is not a DNS finding',
    snapshot: () => cluster().breakOverlay('node-3').dnsBlockedFrom('node-3').build(),
    want: [{ id: 'overlay-broken:node-3' }],
  },
  {
    name: 'near miss: DNS from one agent slightly below the bar on one server is nothing',
    snapshot: () =>
      cluster()
        .dnsFail(
          (d) => d.sourceNode === 'node-1' && d.sourceNetwork === 'pod' && d.server === 'node-2',
          'timeout',
          0.25,
        )
        .build(),
    want: [],
  },

  // --- the API server (more in apiserver.test.ts) ----------------------------------------------
  {
    name: 'healthy with API server checks (VIP and 3 endpoints): nothing',
    snapshot: () => cluster({ apiserverEndpoints: 3 }).build(),
    want: [],
  },
  {
    name: 'apiserver-unreachable: the VIP and the endpoints fail from node-2 only',
    snapshot: () => cluster({ apiserverEndpoints: 3 }).apiBlockedFrom('node-2').build(),
    want: [{ id: 'apiserver-unreachable:node-2', nodes: ['node-2'] }],
  },
  {
    name: 'apiserver-unreachable: every way fails from every node, one cluster-wide finding',
    snapshot: () =>
      cluster({ apiserverEndpoints: 3 })
        .apiFail(() => true, 'refused')
        .build(),
    want: [{ id: 'apiserver-unreachable:all', nodes: ['node-1', 'node-2', 'node-3'] }],
  },
  {
    name: 'near miss: one endpoint of three down for everybody is not unreachable from a node',
    snapshot: () =>
      cluster({ apiserverEndpoints: 3 })
        .apiFail((a) => a.target === '10.0.0.3:6443', 'refused')
        .build(),
    want: [],
  },
  {
    name: 'near miss: one endpoint of three unreachable from node-2 only is not unreachable from node-2',
    snapshot: () =>
      cluster({ apiserverEndpoints: 3 })
        .apiFail((a) => a.sourceNode === 'node-2' && a.target === '10.0.0.3:6443')
        .build(),
    want: [],
  },
  {
    name: 'near miss: 2 of 6 checks lost from node-2 is not a finding',
    snapshot: () =>
      cluster({ apiserverEndpoints: 3 })
        .apiFail((a) => a.sourceNode === 'node-2', 'timeout', 2)
        .build(),
    want: [],
  },
  {
    name: 'node-2 isolated: its API server checks fail too, held back behind node-isolated',
    snapshot: () =>
      cluster({ apiserverEndpoints: 3 })
        .isolate('node-2', { readable: true })
        .apiBlockedFrom('node-2')
        .build(),
    want: [{ id: 'node-isolated:node-2' }],
  },

  // --- ports ----------------------------------------------------------------------------------
  {
    name: 'port-blocked: web times out from everywhere',
    snapshot: () => cluster({ ports: PORTS }).portTimeout('web').build(),
    want: [{ id: 'port-blocked:web', nodes: ['node-1', 'node-2', 'node-3'] }],
  },
  {
    name: 'port-blocked: web times out from node-1 only',
    snapshot: () => cluster({ ports: PORTS }).portTimeout('web', 'node-1').build(),
    want: [{ id: 'port-blocked:web', nodes: ['node-1'] }],
  },
  {
    name: 'port-refused: web refused',
    snapshot: () => cluster({ ports: PORTS }).portRefused('web').build(),
    want: [{ id: 'port-refused:web' }],
  },
  {
    name: 'port-rejected: web answered with ICMP unreachable (a REJECT rule)',
    snapshot: () => cluster({ ports: PORTS }).portRejected('web').build(),
    want: [{ id: 'port-rejected:web' }],
  },
  {
    name: 'port-rejected: ICMP rate limiting turns most of the rejects into timeouts',
    snapshot: () => {
      const b = cluster({ ports: PORTS });
      for (const p of b.ports)
        if (p.target === 'web') {
          p.open = 0;
          p.openRatio = 0;
          p.outcomes = { unreachable: 3, timeout: 9 };
          p.lastOutcome = 'timeout';
        }
      return b.build();
    },
    want: [{ id: 'port-rejected:web' }],
  },
  {
    name: 'port-unexpectedly-open: db (expected closed) accepts',
    snapshot: () => cluster({ ports: PORTS }).portOpen('db').build(),
    want: [{ id: 'port-unexpectedly-open:db' }],
  },
  {
    name: "port-blocked: an agent's TCP probe port dropped (UDP, ICMP fine)",
    snapshot: () => cluster().tcpBlocked('node-2', 'pod').build(),
    want: [{ id: 'port-blocked:node-2/pod' }],
  },
  {
    name: "port-refused: an agent's TCP probe port rejected",
    snapshot: () => cluster().tcpBlocked('node-2', 'host', 'refused').build(),
    want: [{ id: 'port-refused:node-2/host' }],
  },
  {
    name: "port-rejected: an agent's TCP probe port rejected with ICMP unreachable",
    snapshot: () => cluster().tcpBlocked('node-2', 'pod', 'unreachable').build(),
    want: [{ id: 'port-rejected:node-2/pod' }],
  },
  {
    name: 'near miss: web failing a third of the time is not blocked',
    snapshot: () => {
      const b = cluster({ ports: PORTS });
      for (const p of b.ports)
        if (p.target === 'web') {
          p.open = 8;
          p.openRatio = 8 / 12;
          p.outcomes = { open: 8, timeout: 4 };
        }
      return b.build();
    },
    want: [],
  },

  // --- cluster plumbing (more cases and the near misses: plumbing/plumbing.test.ts) ---------
  {
    name: 'cni-unhealthy: calico-node crash-looping on node-2, the paths still fine',
    snapshot: () => withPlumbing(cluster().build(), plumbing().crashLoop('node-2')),
    want: [{ id: 'cni-unhealthy:node-2', nodes: ['node-2'] }],
  },
  {
    name: 'cni-unhealthy next to the overlay finding it likely causes',
    snapshot: () =>
      withPlumbing(cluster().breakOverlay('node-2').build(), plumbing().crashLoop('node-2')),
    want: [{ id: 'overlay-broken:node-2' }, { id: 'cni-unhealthy:node-2' }],
  },
  {
    name: 'cni-sandbox-errors: the kubelet on node-3 cannot set up Pods',
    snapshot: () => withPlumbing(cluster().build(), plumbing().sandboxErrors('node-3', 5)),
    want: [{ id: 'cni-sandbox-errors:node-3', nodes: ['node-3'] }],
  },

  // --- asymmetric-path, zone-pair, pair-loss -----------------------------------------------
  {
    name: "asymmetric-path: node-1's probes to node-2 fail, node-2's to node-1 answered",
    snapshot: () => cluster().oneWay('node-1', 'node-2').build(),
    want: [{ id: 'asymmetric-path:node-1->node-2', nodes: ['node-1', 'node-2'] }],
  },
  {
    // Was 60%: random loss that heavy is pair-loss now (the link is lossy, not failing: the
    // case below); a one-way path that fails needs its loss significantly at failRatio.
    name: 'asymmetric-path: STAMP puts 97% loss on node-1 → node-2',
    snapshot: () => cluster().lossy('node-1', 'node-2', 0.97, { oneWay: true }).build(),
    want: [{ id: 'asymmetric-path:node-1->node-2' }],
  },
  {
    name: 'near miss: 60% one-way random loss is pair-loss (with its direction), not a cut',
    snapshot: () => cluster().lossy('node-1', 'node-2', 0.6, { oneWay: true }).build(),
    want: [{ id: 'pair-loss:node-1<->node-2' }],
  },
  {
    name: 'asymmetric-path: traffic to node-3 fails from every peer (ingress rule), not isolated',
    snapshot: () =>
      cluster({ nodes: 4 })
        .oneWay('node-1', 'node-3')
        .oneWay('node-2', 'node-3')
        .oneWay('node-4', 'node-3')
        .build(),
    want: [{ id: 'asymmetric-path:node-3', nodes: ['node-1', 'node-2', 'node-3', 'node-4'] }],
  },
  {
    name: 'zone-pair: zones a and b (two nodes each) can not reach each other',
    snapshot: () =>
      cluster({ nodes: 4, zones: fourZones })
        .partition('node-1', 'node-3')
        .partition('node-1', 'node-4')
        .partition('node-2', 'node-3')
        .partition('node-2', 'node-4')
        .build(),
    want: [{ id: 'zone-pair:a<->b', nodes: ['node-1', 'node-2', 'node-3', 'node-4'] }],
  },
  {
    name: 'zone-pair: a one-node zone cut from zone b while it reaches zone c',
    snapshot: () =>
      cluster({ nodes: 4, zones: { 'node-1': 'a', 'node-2': 'b', 'node-3': 'b', 'node-4': 'c' } })
        .partition('node-1', 'node-2')
        .partition('node-1', 'node-3')
        .build(),
    want: [{ id: 'zone-pair:a<->b', nodes: ['node-1', 'node-2', 'node-3'] }],
  },
  {
    name: 'near miss: a one-node zone cut from the only other zone is that node, isolated',
    snapshot: () =>
      cluster({ zones: { 'node-1': 'a', 'node-2': 'b', 'node-3': 'b' } })
        .isolate('node-1')
        .build(),
    want: [{ id: 'node-isolated:node-1' }],
  },
  {
    name: 'near miss: one-node zones are pairs, not zone pairs',
    snapshot: () =>
      cluster({ zones: { 'node-1': 'a', 'node-2': 'b', 'node-3': 'c' } })
        .partition('node-1', 'node-2')
        .build(),
    want: [{ id: 'host-network:node-1<->node-2' }],
  },
  {
    name: 'pair-loss: one-way 20% loss stays pair-loss (lossy, not failing)',
    snapshot: () => cluster().lossy('node-1', 'node-2', 0.2, { oneWay: true }).build(),
    want: [{ id: 'pair-loss:node-1<->node-2' }],
  },
  {
    name: 'pair-loss: node-4 loses 10% with every peer',
    snapshot: () =>
      cluster({ nodes: 4 })
        .lossy('node-4', 'node-1', 0.1)
        .lossy('node-4', 'node-2', 0.1)
        .lossy('node-4', 'node-3', 0.1)
        .build(),
    want: [{ id: 'pair-loss:node-4', nodes: ['node-1', 'node-2', 'node-3', 'node-4'] }],
  },
  {
    name: 'near miss: lossy with 2 of 3 peers is not "most" (hubShare 0.75): two pairs',
    snapshot: () =>
      cluster({ nodes: 4 }).lossy('node-4', 'node-1', 0.1).lossy('node-4', 'node-2', 0.1).build(),
    want: [{ id: 'pair-loss:node-1<->node-4' }, { id: 'pair-loss:node-2<->node-4' }],
  },
  {
    name: 'pair-loss: only ICMP between a pair',
    snapshot: () =>
      cluster()
        .lose(
          (c) =>
            c.protocol === 'icmp' &&
            ['node-1', 'node-2'].includes(c.sourceNode) &&
            ['node-1', 'node-2'].includes(c.targetNode) &&
            c.sourceNode !== c.targetNode,
          1,
        )
        .build(),
    want: [{ id: 'pair-loss:node-1<->node-2' }],
  },
  {
    name: "pair-loss: a node's own pod↔host pair",
    snapshot: () => cluster().breakLocal('node-2').build(),
    want: [{ id: 'pair-loss:node-2/pod<->node-2/host', nodes: ['node-2'] }],
  },
  {
    name: 'options: a higher lossy threshold hides 20% loss',
    snapshot: () => cluster().lossy('node-1', 'node-2', 0.2).build(),
    want: [],
    options: { lossyRatio: 0.3 },
  },

  // --- latency (details in src/analysis/latency/latency.test.ts) ----------------------------
  {
    name: 'latency-node: every link of node-3 four times slower than its baseline',
    snapshot: () => afterBaseline(cluster({ nodes: 4 }), (b) => slow(b, touches('node-3'), 4)),
    want: [{ id: 'latency-node:node-3', nodes: ['node-1', 'node-2', 'node-3', 'node-4'] }],
  },
  {
    name: 'latency-zone-pair: the p99 between zones a and b jumps fivefold',
    snapshot: () =>
      afterBaseline(cluster({ nodes: 4, zones: fourZones }), (b) =>
        slow(
          b,
          (c) => fourZones[c.sourceNode as 'node-1'] !== fourZones[c.targetNode as 'node-1'],
          1,
          5,
        ),
      ),
    want: [{ id: 'latency-zone-pair:a<->b' }],
  },
  {
    name: 'latency-pair: +3 ms between node-1 and node-2, nothing lost',
    snapshot: () =>
      afterBaseline(cluster({ nodes: 4 }), (b) =>
        delay(b, betweenNodes('node-1', 'node-2'), 0.003),
      ),
    want: [{ id: 'latency-pair:node-1<->node-2', nodes: ['node-1', 'node-2'] }],
  },
  {
    name: 'near miss: no baseline, however slow (one matrix)',
    snapshot: () => slow(cluster({ nodes: 4 }), touches('node-3'), 10).build(),
    want: [],
  },

  // --- coverage-gap, prober-starved ----------------------------------------------------------
  {
    name: "coverage-gap: node-3's pod agent crash-looping (stale cells to it don't count)",
    snapshot: () => cluster().coverageGap('node-3', 'pod').build(),
    want: [{ id: 'coverage-gap:node-3/pod', nodes: ['node-3'] }],
  },
  {
    name: "coverage-gap: the controller can't read one agent, its peers still reach it",
    snapshot: () => {
      const b = cluster().agentState('node-2', 'host', 'timeout', 'no answer within 800 ms');
      // Unreadable for longer than readGraceSeconds (a newer failure is held back a round).
      b.agent('node-2', 'host').lastSeen = '2025-12-31T23:59:30.000Z';
      return b.build();
    },
    want: [{ id: 'coverage-gap:node-2/host' }],
  },
  {
    name: 'prober-starved: late probes, its own loss and latency held back',
    snapshot: () => {
      const b = cluster().starve('node-3', 'pod');
      b.lose(
        (c) => c.sourceNode === 'node-3' && c.sourceNetwork === 'pod' && c.targetNode !== 'node-3',
        0.3,
      );
      for (const c of b.cells)
        if (c.sourceNode === 'node-3' && c.sourceNetwork === 'pod' && c.rttSeconds !== null)
          c.rttSeconds = { min: 0.2, p50: 0.4, p90: 0.7, p99: 0.9, max: 1, mean: 0.45 };
      return b.build();
    },
    want: [{ id: 'prober-starved:node-3/pod', nodes: ['node-3'] }],
  },
  {
    name: 'near miss: a starved prober making a node look isolated is not isolation',
    snapshot: () =>
      cluster()
        .starve('node-3', 'pod')
        .starve('node-3', 'host')
        .lose((c) => c.sourceNode === 'node-3' && c.targetNode !== 'node-3', 0.8)
        .build(),
    want: [{ id: 'prober-starved:node-3/host' }, { id: 'prober-starved:node-3/pod' }],
  },
];

for (const c of cases) {
  test(`triage: ${c.name}`, (t) => {
    const found = triage(c.snapshot(), c.options);
    const ids = found.map((f) => f.id).sort();
    t.deepEqual(
      ids,
      c.want.map((w) => w.id).sort(),
      found.map((f) => `${f.id}: ${f.summary}`).join('\n'),
    );
    for (const w of c.want) {
      const f = found.find((x) => x.id === w.id);
      if (f === undefined) continue;
      t.is(f.id, `${f.kind}:${f.subject}`);
      if (w.nodes !== undefined) t.deepEqual(f.nodes, w.nodes, w.id);
      t.true(f.evidence.length > 0, `${f.id} has evidence`);
      t.true(f.nextSteps.length > 0, `${f.id} has next steps`);
    }
  });
}

test('every kind has a case that produces it', (t) => {
  const produced = new Set(cases.flatMap((c) => c.want.map((w) => w.id.split(':')[0])));
  t.deepEqual(
    FINDING_KINDS.filter((k) => !produced.has(k)),
    [],
  );
});

// --- what findings carry -------------------------------------------------------------------

const only = (fs: readonly Finding[], id: string): Finding => {
  const f = fs.find((x) => x.id === id);
  if (f === undefined) throw new Error(`no ${id} in ${fs.map((x) => x.id).join(', ')}`);
  return f;
};

test('isolated node: explains its pairs and the agents the controller cannot reach', (t) => {
  const f = only(triage(cluster({ nodes: 4 }).isolate('node-3').build()), 'node-isolated:node-3');
  t.true(f.explains?.includes('node-1<->node-3 (every path)'));
  t.true(f.explains?.includes("coverage-gap:node-3/pod (the controller can't reach it)"));
  t.true(f.explains?.includes("coverage-gap:node-3/host (the controller can't reach it)"));
  t.regex(f.summary, /could not be read/);
  t.true(f.evidence.some((e) => /can't read node-3\/pod: timeout/.test(e.text)));
});

test('isolated node: DNS and port checks it explains are credited to it', (t) => {
  const f = only(
    triage(
      cluster({ ports: PORTS, dnsReplicas: ['node-1', 'node-3'] })
        .isolate('node-3')
        .dnsFail((d) => d.server === 'node-3')
        .portTimeout('web')
        .build(),
    ),
    'node-isolated:node-3',
  );
  t.true(f.explains?.some((e) => e.startsWith('DNS lookups from node-1/pod')));
  t.true(f.explains?.includes('port checks to web (it sits behind the failing paths)'));
});

test('evidence is capped to the worst N with an "... and N more" line', (t) => {
  const f = only(
    triage(cluster({ nodes: 8 }).isolate('node-5', { readable: true }).build(), { maxEvidence: 5 }),
    'node-isolated:node-5',
  );
  const lines = f.evidence.filter(
    (e) => e.targetNode !== undefined && !e.text.includes('same node'),
  );
  t.is(lines.length, 5);
  t.regex(f.evidence.at(-1)!.text, /^… and \d+ more$/);
  t.true(lines.every((e) => e.value === 1));
  t.regex(
    lines[0]!.text,
    /node-\d → node-\d \S+ icmp\/tcp\/udp small: 180 of 180 lost \(timeout\)/,
  );
});

test('next steps carry real names and addresses', (t) => {
  const fs = triage(cluster().breakOverlay('node-2').build());
  const f = only(fs, 'overlay-broken:node-2');
  const cmds = f.nextSteps.map((s) => s.command ?? '').join('\n');
  t.regex(cmds, /kubectl debug node\/node-2 /);
  t.regex(cmds, /flannel\.1/);
  t.regex(cmds, /8472\|4789/);
  t.regex(cmds, /10\.244\.2\.2/, "the pod agent's address from its URL");
  t.notRegex(cmds, /<node|<pod/);

  const iso = only(triage(cluster().isolate('node-3').build()), 'node-isolated:node-3');
  t.true(iso.nextSteps.some((s) => s.command === 'kubectl describe node node-3'));
  t.true(iso.nextSteps.some((s) => s.command?.includes('ping -c 10 10.0.0.3') === true));

  const dns = only(triage(cluster().dnsReplicaDown('node-1').build()), 'dns-replica:node-1');
  t.true(dns.nextSteps.some((s) => s.command?.includes('k8s-app=kube-dns') === true));
  t.true(dns.nextSteps.some((s) => s.command?.includes('spec.nodeName=node-1') === true));

  const port = only(
    triage(cluster({ ports: PORTS }).portTimeout('web').build()),
    'port-blocked:web',
  );
  t.true(port.nextSteps.some((s) => s.command?.includes('nc -zv -w 3 10.244.3.9 8080') === true));
});

test('evidence values are the figures the text states', (t) => {
  const dns = only(triage(cluster().dnsReplicaDown('node-1').build()), 'dns-replica:node-1');
  t.regex(dns.evidence[0]!.text, /→ replica node-1: .* 0 of 12 answered \(timeout 12\)$/);
  t.is(dns.evidence[0]!.value, 0);
  const port = only(
    triage(
      cluster({ ports: PORTS }).portTimeout('web', 'node-1').portTimeout('web', 'node-2').build(),
    ),
    'port-blocked:web',
  );
  t.regex(
    port.evidence[0]!.text,
    /→ web \(10\.244\.3\.9:8080, expected open\): 0% open over 12 connects \(timeout 12\)/,
  );
  t.is(port.evidence[0]!.value, 0);
  t.deepEqual(port.nodes, ['node-1', 'node-2']);
  t.regex(port.summary, /only/);
  const iso = only(
    triage(cluster({ coverage: true }).isolate('node-3').build()),
    'node-isolated:node-3',
  );
  t.false(iso.evidence.some((e) => /coverage list/.test(e.text)));
  const notReady = cluster({ coverage: true }).isolate('node-3');
  notReady.coverage = notReady.coverage!.filter((c) => c.node !== 'node-3');
  const gone = only(triage(notReady.build()), 'node-isolated:node-3');
  t.true(gone.evidence.some((e) => /node-3 is not in the coverage list/.test(e.text)));
});

test('names that are not plain Kubernetes names are quoted in commands', (t) => {
  const b = cluster({ nodes: ['a;rm -rf /', 'b', 'c'] }).isolate('a;rm -rf /', { readable: true });
  const f = triage(b.build()).find((x) => x.kind === 'node-isolated');
  t.truthy(f);
  t.true(f!.nextSteps.some((s) => s.command === "kubectl describe node 'a;rm -rf /'"));
});

test('STAMP direction shows in a lossy pair’s summary', (t) => {
  const f = only(
    triage(cluster().lossy('node-2', 'node-1', 0.2, { oneWay: true }).build()),
    'pair-loss:node-1<->node-2',
  );
  t.regex(f.summary, /on the way from node-2 to node-1/);
  t.is(f.severity, 'warning');
});

test('the MTU black hole explains the MTU cells, not the small ones', (t) => {
  const fs = triage(
    cluster()
      .lossy('node-1', 'node-3', 0.2, { nets: ['host-to-host'] })
      .mtu()
      .build(),
  );
  // node-1 ↔ node-3 also loses 20% of its small probes: that loss is its own finding, while
  // the MTU-sized cells of the same links belong to the black hole.
  t.deepEqual(
    fs.map((f) => f.id),
    ['mtu-blackhole:cluster', 'pair-loss:node-1<->node-3'],
  );
  t.true(only(fs, 'pair-loss:node-1<->node-3').evidence.every((e) => e.size === 'small'));
});

test('a starved prober reports its numbers as held back, with its own health first', (t) => {
  const b = cluster().starve('node-1', 'host', 0.5);
  b.lose((c) => c.sourceNode === 'node-1' && c.sourceNetwork === 'host', 0.2);
  const f = only(triage(b.build()), 'prober-starved:node-1/host');
  t.regex(f.evidence[0]!.text, /50% of probes started late/);
  t.true(f.evidence.some((e) => e.text.endsWith('(held back)')));
  t.is(f.severity, 'info');
  t.deepEqual(f.explains, ['25 lossy results from node-1/host held back']);
});

test('order: severity, then kind, then subject; deterministic and input untouched', (t) => {
  const snap = cluster({ nodes: 5, ports: PORTS })
    .isolate('node-5', { readable: true })
    .lossy('node-1', 'node-2', 0.1)
    .starve('node-3', 'pod')
    .portOpen('db')
    .coverageGap('node-4', 'host')
    .build();
  const before = JSON.stringify(snap);
  const a = triage(snap);
  const b = triage(snap);
  t.deepEqual(a, b);
  t.is(JSON.stringify(snap), before);
  t.deepEqual(
    a.map((f) => f.id),
    [
      'node-isolated:node-5',
      'port-unexpectedly-open:db',
      'pair-loss:node-1<->node-2',
      'coverage-gap:node-4/host',
      'prober-starved:node-3/pod',
    ],
  );
  t.deepEqual([...a].sort(compareFindings), a);
});

test('invalid options are ignored, valid ones apply', (t) => {
  const snap = cluster().lossy('node-1', 'node-2', 0.2).build();
  t.deepEqual(
    triage(snap, { lossyRatio: Number.NaN, failRatio: 7, minProbes: 0.5 }).map((f) => f.id),
    ['pair-loss:node-1<->node-2'],
  );
  t.deepEqual(triage(snap, { minProbes: 100 }), []);
});

test('a malformed snapshot gives no findings instead of throwing', (t) => {
  const bad = {
    matrix: { cells: null, dns: 'x', ports: [null, 1], agents: [{}] },
    coverage: [null],
  };
  t.notThrows(() => triage(bad as unknown as Snapshot));
});

// --- property -------------------------------------------------------------------------------

const nodeName = fc.constantFrom('node-1', 'node-2', 'node-3', 'node-4', 'a/b', '');
const net = fc.constantFrom('pod' as const, 'host' as const);
const ratio = fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: null });
const count = fc.nat({ max: 80 });

const cellArb = fc.record({
  sourceNode: nodeName,
  sourceNetwork: net,
  targetNode: nodeName,
  targetNetwork: net,
  path: fc.constantFrom('pod-to-pod', 'pod-to-host', 'host-to-pod', 'host-to-host', 'x'),
  scope: fc.constantFrom('same-node', 'same-zone', 'cross-zone'),
  protocol: fc.constantFrom('udp' as const, 'icmp' as const, 'tcp' as const),
  size: fc.constantFrom('small' as const, 'mtu' as const),
  sent: count,
  lost: count,
  lossRatio: ratio,
  forwardLost: count,
  reverseLost: count,
  rttSeconds: fc.option(
    fc.record({
      min: fc.double({ min: 0, max: 2, noNaN: true }),
      p50: fc.double({ min: 0, max: 2, noNaN: true }),
      p90: fc.double({ min: 0, max: 2, noNaN: true }),
      p99: fc.double({ min: 0, max: 2, noNaN: true }),
      max: fc.double({ min: 0, max: 2, noNaN: true }),
      mean: fc.double({ min: 0, max: 2, noNaN: true }),
    }),
    { nil: null },
  ),
  lastFailure: fc.option(fc.constantFrom('timeout', 'refused', 'unreachable'), { nil: null }),
});

const outcomes = fc.dictionary(
  fc.constantFrom('noerror', 'timeout', 'refused', 'open', 'servfail'),
  count,
);

const dnsArb = fc.record({
  sourceNode: nodeName,
  sourceNetwork: net,
  serverKind: fc.constantFrom('service' as const, 'replica' as const),
  server: fc.constantFrom('service', 'node-1', 'node-2#2', 'replica-1'),
  query: fc.constantFrom('service', 'short', 'pod', 'external'),
  name: fc.constantFrom('kubernetes.default', 'example.com'),
  transport: fc.constantFrom('udp' as const, 'tcp' as const),
  sent: count,
  failed: count,
  answeredRatio: ratio,
  outcomes,
  lastOutcome: fc.option(fc.constantFrom('noerror', 'timeout'), { nil: null }),
  lastDetail: fc.constant(null),
  latencySeconds: fc.constant(null),
});

const portArb = fc.record({
  sourceNode: nodeName,
  sourceNetwork: net,
  target: fc.constantFrom('web', 'db', 'node-1/pod'),
  address: fc.constantFrom('10.0.0.1', 'db.local'),
  port: fc.integer({ min: 1, max: 65535 }),
  expected: fc.constantFrom('open' as const, 'closed' as const),
  sent: count,
  open: count,
  openRatio: ratio,
  outcomes,
  lastOutcome: fc.constant(null),
  lastDetail: fc.constant(null),
});

const apiArb = fc.record({
  sourceNode: nodeName,
  sourceNetwork: net,
  target: fc.constantFrom('service', '10.0.0.1:6443', '10.0.0.2:6443'),
  kind: fc.constantFrom('service' as const, 'endpoint' as const),
  address: fc.constantFrom('10.0.0.1', '10.96.0.1'),
  port: fc.integer({ min: 1, max: 65535 }),
  sent: count,
  failed: count,
  okRatio: ratio,
  outcomes,
  lastOutcome: fc.constant(null),
  lastDetail: fc.constant(null),
  readyz: fc.constantFrom(null, 200, 401),
  run: fc.option(
    fc.record({ ok: fc.boolean(), length: fc.integer({ min: 1, max: 20 }), previous: count }),
    { nil: null },
  ),
});

const agentArb = fc.record(
  {
    node: nodeName,
    network: net,
    url: fc.constantFrom('http://10.0.0.1:9870', 'http://[fd00::1]:9860', 'not a url'),
    state: fc.constantFrom(
      'ok' as const,
      'unreachable' as const,
      'timeout' as const,
      'http-error' as const,
      'invalid' as const,
    ),
    detail: fc.constantFrom('connect ECONNREFUSED', 'x'),
    zone: fc.constantFrom('', 'a', 'b'),
    self: fc.record({
      lateRatio: ratio,
      latenessP99Seconds: fc.option(fc.double({ min: 0, max: 5, noNaN: true }), { nil: null }),
      eventLoopP99Seconds: fc.record({ main: ratio, engine: ratio }),
    }),
    lastSeen: fc.constant(null),
  },
  { requiredKeys: ['node', 'network', 'url', 'state', 'zone', 'lastSeen'] },
);

const agentCov = fc.record({
  covered: fc.boolean(),
  reason: fc.constantFrom(
    'ready' as const,
    'missing' as const,
    'crash-loop' as const,
    'sandbox-error' as const,
  ),
  detail: fc.string({ maxLength: 10 }),
  pod: fc.option(fc.constantFrom('podmesh-agent-x'), { nil: null }),
});

const rttBase = fc.record({
  median: fc.double({ min: 0, max: 0.01, noNaN: true }),
  mad: fc.double({ min: 0, max: 0.01, noNaN: true }),
  samples: fc.nat({ max: 60 }),
});
const linkKey = (c: {
  sourceNode: string;
  sourceNetwork: string;
  targetNode: string;
  targetNetwork: string;
}): string => `${c.sourceNode}/${c.sourceNetwork}>${c.targetNode}/${c.targetNetwork}`;

const snapshotArb: fc.Arbitrary<Snapshot> = fc
  .record({
    matrix: fc.record({
      apiVersion: fc.constant('podmesh.io/v1' as const),
      kind: fc.constant('Matrix' as const),
      generatedAt: fc.constant('2026-01-01T00:00:00.000Z'),
      agents: fc.array(agentArb, { maxLength: 8 }),
      nodes: fc.array(nodeName, { maxLength: 5 }),
      zones: fc.dictionary(nodeName, fc.constantFrom('a', 'b', '')),
      cells: fc.array(cellArb, { maxLength: 120 }),
      dns: fc.array(dnsArb, { maxLength: 40 }),
      ports: fc.array(portArb, { maxLength: 20 }),
      apiserver: fc.array(apiArb, { maxLength: 30 }),
    }),
    coverage: fc.option(
      fc.array(fc.record({ node: nodeName, pod: agentCov, host: agentCov }), { maxLength: 5 }),
      { nil: undefined },
    ),
  })
  // The controller's baselines (the latency kinds), mostly for links the cells have.
  .chain((s) =>
    fc
      .option(
        fc
          .array(
            fc.tuple(
              fc.constantFrom('x/pod>y/host', ...s.matrix.cells.map(linkKey)),
              fc.record({ p50: rttBase, p99: rttBase }),
            ),
            { maxLength: 40 },
          )
          .map((es) => ({ minutes: 60, links: new Map(es) })),
        { nil: undefined },
      )
      .map((baselines) => ({ ...s, baselines })),
  );

test('property: never throws, ids unique and well-formed, sorted, confidence in [0, 1]', (t) => {
  fc.assert(
    fc.property(snapshotArb, (snap) => {
      const fs = triage(snap);
      const ids = fs.map((f) => f.id);
      if (new Set(ids).size !== ids.length) return false;
      for (const f of fs) {
        if (f.id !== `${f.kind}:${f.subject}`) return false;
        if (!FINDING_KINDS.includes(f.kind)) return false;
        if (!(f.confidence >= 0 && f.confidence <= 1)) return false;
        if (f.nextSteps.length === 0) return false;
        if (f.evidence.some((e) => 'rank' in e)) return false;
      }
      return [...fs].sort(compareFindings).every((f, i) => f === fs[i]);
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('property: a healthy cluster stays clean whatever its size and zones', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 7 }),
      fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 7, maxLength: 7 }),
      (n, zs) => {
        const names = Array.from({ length: n }, (_, i) => `node-${i + 1}`);
        const zones = Object.fromEntries(names.map((x, i) => [x, zs[i]!]));
        return triage(cluster({ nodes: names, zones, ports: PORTS }).build()).length === 0;
      },
    ),
    { numRuns: 30 },
  );
  t.pass();
});
