// Plumbing snapshots for triage tests: every node runs a Ready calico-node and kube-proxy, node-1
// a CoreDNS replica, and the builder breaks them the ways the guide describes (a crash loop, a
// recent restart, sandbox errors), at a fixed "now" so ages are exact.

import type {
  NodePlumbing,
  PlumbingPod,
  PlumbingReport,
  Snapshot,
} from '../../src/analysis/types.ts';

export const PLUMBING_AT = Date.parse('2026-01-01T12:00:00Z');
const MIN = 60_000;

function pod(node: string, component: string, o: Partial<PlumbingPod> = {}): PlumbingPod {
  const role = component === 'kube-proxy' ? 'proxy' : component === 'kube-dns' ? 'dns' : 'cni';
  return {
    namespace: 'kube-system',
    name: `${component === 'kube-dns' ? 'coredns' : component}-${node}`,
    component,
    role,
    ready: true,
    restarts: 0,
    ...o,
  };
}

export class PlumbingBuilder {
  private readonly nodes: Map<
    string,
    { pods: PlumbingPod[]; sandbox?: NodePlumbing['sandboxErrors'] }
  >;

  constructor(nodes: readonly string[]) {
    this.nodes = new Map(
      nodes.map((n, i) => [
        n,
        {
          pods: [
            pod(n, 'calico-node', {
              restarts: 2,
              lastTermination: {
                container: 'calico-node',
                reason: 'Error',
                atMs: PLUMBING_AT - 30 * 24 * 60 * MIN,
              },
            }),
            pod(n, 'kube-proxy'),
            ...(i === 0 ? [pod(n, 'kube-dns')] : []),
          ],
        },
      ]),
    );
  }

  private set(node: string, component: string, o: Partial<PlumbingPod>): this {
    const e = this.nodes.get(node)!;
    const i = e.pods.findIndex((p) => p.component === component);
    const next = pod(node, component, { ...(e.pods[i] ?? {}), ...o });
    if (i < 0) e.pods.push(next);
    else e.pods[i] = next;
    return this;
  }

  /** Not Ready, waiting in CrashLoopBackOff, last ended `agoMin` minutes ago. */
  crashLoop(node: string, component = 'calico-node', agoMin = 1): this {
    return this.set(node, component, {
      ready: false,
      restarts: 7,
      waitingReason: 'CrashLoopBackOff',
      lastTermination: {
        container: component,
        reason: 'OOMKilled',
        atMs: PLUMBING_AT - agoMin * MIN,
      },
    });
  }

  /** Ready again, its container having ended `agoMin` minutes ago. */
  restarted(node: string, component: string, agoMin: number, reason = 'Error'): this {
    return this.set(node, component, {
      ready: true,
      restarts: 3,
      lastTermination: { container: component, reason, atMs: PLUMBING_AT - agoMin * MIN },
    });
  }

  sandboxErrors(node: string, count: number): this {
    this.nodes.get(node)!.sandbox = {
      count,
      pods: ['default/web-1', 'default/web-2'],
      lastAtMs: PLUMBING_AT - MIN,
      lastMessage: 'plugin type="calico" failed (add): failed to setup network for sandbox',
    };
    return this;
  }

  build(): PlumbingReport {
    return {
      atMs: PLUMBING_AT,
      sandboxWindowMs: 10 * MIN,
      nodes: [...this.nodes].map(([node, e]) => ({
        node,
        pods: e.pods,
        ...(e.sandbox !== undefined ? { sandboxErrors: e.sandbox } : {}),
      })),
    };
  }
}

export function plumbing(nodes = ['node-1', 'node-2', 'node-3']): PlumbingBuilder {
  return new PlumbingBuilder(nodes);
}

export function withPlumbing(s: Snapshot, p: PlumbingBuilder | PlumbingReport): Snapshot {
  return { ...s, plumbing: p instanceof PlumbingBuilder ? p.build() : p };
}
