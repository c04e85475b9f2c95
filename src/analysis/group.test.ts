// groupPairs as a table: which bad pairs a node (hub) explains, when it is the whole cluster,
// and when the pairs stay pairs (two nodes, a node only one peer can judge).

import test from 'ava';
import { addKnown, groupPairs } from './group.ts';

type Pair = readonly [string, string];

/** Every pair of the nodes judged. */
function fullMesh(nodes: readonly string[]): Map<string, Set<string>> {
  const known = new Map<string, Set<string>>();
  for (let i = 0; i < nodes.length; i++)
    for (let j = i + 1; j < nodes.length; j++) addKnown(known, nodes[i]!, nodes[j]!);
  return known;
}

const n = (k: number): string[] => Array.from({ length: k }, (_, i) => `n${i + 1}`);
const star = (hub: string, nodes: readonly string[]): Pair[] =>
  nodes.filter((x) => x !== hub).map((x) => (hub < x ? [hub, x] : [x, hub]) as Pair);

const cases: {
  name: string;
  bad: Pair[];
  known: Map<string, Set<string>>;
  cluster: boolean;
  hubs: string[];
  pairs: Pair[];
}[] = [
  { name: 'nothing bad', bad: [], known: fullMesh(n(4)), cluster: false, hubs: [], pairs: [] },
  {
    name: 'one bad pair of three nodes stays a pair',
    bad: [['n1', 'n2']],
    known: fullMesh(n(3)),
    cluster: false,
    hubs: [],
    pairs: [['n1', 'n2']],
  },
  {
    name: 'two nodes: never a hub',
    bad: [['n1', 'n2']],
    known: fullMesh(n(2)),
    cluster: false,
    hubs: [],
    pairs: [['n1', 'n2']],
  },
  {
    name: 'a node bad with all its peers is the hub',
    bad: star('n3', n(4)),
    known: fullMesh(n(4)),
    cluster: false,
    hubs: ['n3'],
    pairs: [],
  },
  {
    name: 'a hub plus an unrelated bad pair',
    bad: [...star('n5', n(5)), ['n1', 'n2']],
    known: fullMesh(n(5)),
    cluster: false,
    hubs: ['n5'],
    pairs: [['n1', 'n2']],
  },
  {
    name: 'two hubs of five',
    bad: [...star('n1', n(5)), ...star('n2', n(5)).filter(([a]) => a !== 'n1')],
    known: fullMesh(n(5)),
    cluster: false,
    hubs: ['n1', 'n2'],
    pairs: [],
  },
  {
    name: 'two hubs of four (the healthy pair keeps it from being cluster-wide)',
    bad: [
      ['n1', 'n2'],
      ['n1', 'n3'],
      ['n1', 'n4'],
      ['n2', 'n3'],
      ['n2', 'n4'],
    ],
    known: fullMesh(n(4)),
    cluster: false,
    hubs: ['n1', 'n2'],
    pairs: [],
  },
  {
    name: 'every pair of three bad: cluster-wide',
    bad: [
      ['n1', 'n2'],
      ['n1', 'n3'],
      ['n2', 'n3'],
    ],
    known: fullMesh(n(3)),
    cluster: true,
    hubs: ['n1', 'n2'],
    pairs: [],
  },
  {
    name: 'bad with 2 of 3 peers is under "most" (0.75): pairs',
    bad: [
      ['n1', 'n2'],
      ['n1', 'n3'],
    ],
    known: fullMesh(n(4)),
    cluster: false,
    hubs: [],
    pairs: [
      ['n1', 'n2'],
      ['n1', 'n3'],
    ],
  },
  {
    name: 'a node judged by one peer only is not a hub',
    bad: [['n1', 'n2']],
    known: (() => {
      const k = new Map<string, Set<string>>();
      addKnown(k, 'n1', 'n2');
      addKnown(k, 'n2', 'n3');
      return k;
    })(),
    cluster: false,
    hubs: [],
    pairs: [['n1', 'n2']],
  },
];

for (const c of cases) {
  test(`groupPairs: ${c.name}`, (t) => {
    const g = groupPairs(c.bad, c.known, 0.75);
    t.is(g.cluster, c.cluster);
    t.deepEqual([...g.hubs], c.hubs);
    t.deepEqual(
      g.pairs.map((p) => [...p]),
      c.pairs.map((p) => [...p]),
    );
  });
}

test('groupPairs: a hub lists all its bad peers, other hubs included', (t) => {
  const g = groupPairs(
    [
      ['n1', 'n2'],
      ['n1', 'n3'],
      ['n1', 'n4'],
      ['n2', 'n3'],
      ['n2', 'n4'],
    ],
    fullMesh(n(4)),
    0.75,
  );
  t.deepEqual(g.hubPeers.get('n1'), ['n2', 'n3', 'n4']);
  t.deepEqual(g.hubPeers.get('n2'), ['n1', 'n3', 'n4']);
});
