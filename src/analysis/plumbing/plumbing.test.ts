// The plumbing rules: which CNI/proxy Pods count as unhealthy (not Ready, or ended within the
// restart window) and the near misses that must stay quiet (a restart hours ago, CoreDNS, one
// stray sandbox error, no Kubernetes at all); and the join with the IP-path findings: the
// overlay finding names the agent as its likely cause and the agent's finding names the overlay
// finding, neither absorbing the other.

import test from 'ava';
import { cluster } from '../../../test/support/fixtures.ts';
import { plumbing, withPlumbing } from '../../../test/support/plumbing.ts';
import { triage } from '../triage.ts';
import type { Finding } from '../types.ts';

const ids = (fs: readonly Finding[]): string[] => fs.map((f) => f.id).sort();
const only = (fs: readonly Finding[], id: string): Finding => {
  const f = fs.find((x) => x.id === id);
  if (f === undefined) throw new Error(`no ${id} in ${fs.map((x) => x.id).join(', ')}`);
  return f;
};

test('healthy plumbing (old restarts long ago): nothing', (t) => {
  t.deepEqual(ids(triage(withPlumbing(cluster().build(), plumbing()))), []);
});

test('near miss: a CNI Pod Ready again, its restart 3 hours ago, is not unhealthy', (t) => {
  const p = plumbing().restarted('node-2', 'calico-node', 180);
  t.deepEqual(ids(triage(withPlumbing(cluster().build(), p))), []);
});

test('near miss: a CNI Pod that restarted 16 min ago (outside the window) is not unhealthy', (t) => {
  const p = plumbing().restarted('node-2', 'calico-node', 16);
  t.deepEqual(ids(triage(withPlumbing(cluster().build(), p))), []);
});

test('a kube-proxy that restarted 4 min ago and is Ready again: a warning naming kube-proxy', (t) => {
  const fs = triage(
    withPlumbing(cluster().build(), plumbing().restarted('node-3', 'kube-proxy', 4, 'OOMKilled')),
  );
  t.deepEqual(ids(fs), ['cni-unhealthy:node-3']);
  const f = only(fs, 'cni-unhealthy:node-3');
  t.is(f.severity, 'warning');
  t.regex(f.title, /kube-proxy agent on node-3 is restarting/);
  t.regex(
    f.summary,
    /kube-system\/kube-proxy-node-3 \(kube-proxy\) is restarting \(last ended 4 min ago: OOMKilled\)/,
  );
  t.true(
    f.nextSteps.some(
      (s) =>
        s.command ===
        'kubectl -n kube-system logs kube-proxy-node-3 --all-containers --previous --tail=100',
    ),
  );
});

test('a crash-looping CNI Pod is critical, with its reason, restarts and next steps', (t) => {
  const f = only(
    triage(withPlumbing(cluster().build(), plumbing().crashLoop('node-2'))),
    'cni-unhealthy:node-2',
  );
  t.is(f.severity, 'critical');
  t.regex(f.summary, /not Ready \(CrashLoopBackOff; last ended 1 min ago: OOMKilled\), 7 restarts/);
  t.true(f.evidence.some((e) => e.target === 'kube-system/calico-node-node-2' && e.value === 7));
  t.true(
    f.nextSteps.some((s) => s.command === 'kubectl -n kube-system describe pod calico-node-node-2'),
  );
  t.false(/IP-path finding/.test(f.summary), 'no network finding to name');
});

test('near miss: CoreDNS restarting is not a CNI finding', (t) => {
  const p = plumbing().crashLoop('node-1', 'kube-dns');
  t.deepEqual(ids(triage(withPlumbing(cluster().build(), p))), []);
});

test('near miss: two sandbox errors (a Pod deleted while created) are not reported', (t) => {
  const p = plumbing().sandboxErrors('node-3', 2);
  t.deepEqual(ids(triage(withPlumbing(cluster().build(), p))), []);
});

test('sandbox errors: count, window, Pods and the last message as evidence', (t) => {
  const f = only(
    triage(withPlumbing(cluster().build(), plumbing().sandboxErrors('node-3', 5))),
    'cni-sandbox-errors:node-3',
  );
  t.regex(
    f.summary,
    /failed to create 5 Pod sandboxes in the last 10 min \(default\/web-1, default\/web-2\)/,
  );
  t.regex(f.evidence[0]?.text ?? '', /failed to setup network for sandbox/);
  t.true(f.nextSteps.some((s) => s.command?.includes('reason=FailedCreatePodSandBox') === true));
});

test('the overlay finding names the crash-looping CNI agent as its likely cause, and the agent names it back', (t) => {
  const fs = triage(
    withPlumbing(cluster().breakOverlay('node-2').build(), plumbing().crashLoop('node-2')),
  );
  t.deepEqual(ids(fs), ['cni-unhealthy:node-2', 'overlay-broken:node-2']);
  const ov = only(fs, 'overlay-broken:node-2');
  t.regex(
    ov.summary,
    /Likely cause: kube-system\/calico-node-node-2 \(calico-node\) on node-2 is not Ready/,
  );
  t.regex(
    ov.evidence[0]?.text ?? '',
    /^node-2: CNI agent kube-system\/calico-node-node-2/,
    'cause leads the evidence',
  );
  const cni = only(fs, 'cni-unhealthy:node-2');
  t.regex(
    cni.summary,
    /The IP-path finding overlay-broken:node-2 on this node is likely its symptom/,
  );
  t.is(ov.explains?.includes('cni-unhealthy:node-2') ?? false, false, 'neither absorbs the other');
});

test("an unhealthy agent on another node is not named as the overlay's cause", (t) => {
  const fs = triage(
    withPlumbing(cluster().breakOverlay('node-2').build(), plumbing().crashLoop('node-3')),
  );
  t.deepEqual(ids(fs), ['cni-unhealthy:node-3', 'overlay-broken:node-2']);
  t.false(/Likely cause/.test(only(fs, 'overlay-broken:node-2').summary));
  t.false(/IP-path finding/.test(only(fs, 'cni-unhealthy:node-3').summary));
});

test('without Kubernetes (no plumbing in the snapshot) the kinds are silent and the overlay names no cause', (t) => {
  const fs = triage(cluster().breakOverlay('node-2').build());
  t.deepEqual(ids(fs), ['overlay-broken:node-2']);
  t.false(/Likely cause/.test(only(fs, 'overlay-broken:node-2').summary));
});

test('a CNI rollout gone bad on most nodes is one cluster finding', (t) => {
  const p = plumbing(['node-1', 'node-2', 'node-3', 'node-4'])
    .crashLoop('node-1', 'cilium')
    .crashLoop('node-2', 'cilium')
    .crashLoop('node-3', 'cilium');
  const fs = triage(withPlumbing(cluster({ nodes: 4 }).build(), p));
  t.deepEqual(ids(fs), ['cni-unhealthy:cluster']);
  const f = only(fs, 'cni-unhealthy:cluster');
  t.deepEqual(f.nodes, ['node-1', 'node-2', 'node-3']);
  t.regex(f.title, /cilium unhealthy on 3 of 4 nodes/);
});

test('near miss: two of four nodes unhealthy stay two node findings', (t) => {
  const p = plumbing(['node-1', 'node-2', 'node-3', 'node-4'])
    .crashLoop('node-1')
    .crashLoop('node-2');
  t.deepEqual(ids(triage(withPlumbing(cluster({ nodes: 4 }).build(), p))), [
    'cni-unhealthy:node-1',
    'cni-unhealthy:node-2',
  ]);
});

test('an overlay finding on a pair names the CNI agent of either node, and is named back', (t) => {
  const snap = cluster({ nodes: 4 })
    .lose(
      (c) =>
        ((c.sourceNode === 'node-1' && c.targetNode === 'node-2') ||
          (c.sourceNode === 'node-2' && c.targetNode === 'node-1')) &&
        c.targetNetwork === 'pod',
      1,
    )
    .build();
  const p = plumbing(['node-1', 'node-2', 'node-3', 'node-4']).restarted('node-1', 'cilium', 3);
  const fs = triage(withPlumbing(snap, p));
  t.deepEqual(ids(fs), ['cni-unhealthy:node-1', 'overlay-broken:node-1<->node-2']);
  t.regex(
    only(fs, 'overlay-broken:node-1<->node-2').summary,
    /Likely cause: kube-system\/cilium-node-1 \(cilium\) on node-1 is restarting/,
  );
  t.regex(
    only(fs, 'cni-unhealthy:node-1').summary,
    /The IP-path finding overlay-broken:node-1<->node-2 on this node is likely its symptom/,
  );
});

test('a cluster-wide overlay failure during a bad CNI rollout: each names the other', (t) => {
  const nodes = ['node-1', 'node-2', 'node-3', 'node-4'];
  const p = nodes.reduce((b, n) => b.crashLoop(n, 'cilium'), plumbing(nodes));
  const fs = triage(withPlumbing(cluster({ nodes: 4 }).breakOverlay().build(), p));
  t.deepEqual(ids(fs), ['cni-unhealthy:cluster', 'overlay-broken:cluster']);
  t.regex(
    only(fs, 'overlay-broken:cluster').summary,
    /Likely cause: kube-system\/cilium-node-1 \(cilium\) on node-1 is not Ready .* \(and 1 more\)\./,
  );
  t.regex(
    only(fs, 'cni-unhealthy:cluster').summary,
    /The IP-path finding overlay-broken:cluster on these nodes is likely its symptom/,
  );
});

test('near miss: a node cut off is not called the symptom of its CNI agent (rather its cause)', (t) => {
  const fs = triage(
    withPlumbing(
      cluster({ nodes: 4 }).isolate('node-3').build(),
      plumbing(['node-1', 'node-2', 'node-3', 'node-4']).crashLoop('node-3'),
    ),
  );
  t.true(fs.some((f) => f.id === 'node-isolated:node-3'));
  t.false(/IP-path finding/.test(only(fs, 'cni-unhealthy:node-3').summary));
});
