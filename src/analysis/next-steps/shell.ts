// The pieces every next step's command is made of: shell quoting, a node's and a pod agent's
// address (the agents' own URLs when they are literal IPs, else a kubectl lookup inside the
// command), and shells on a node or in a throwaway Pod there.

import { isIP } from 'node:net';
import { agentKey, type Ctx } from '../model.ts';

export const NS = 'podmesh';
const NETSHOOT = 'nicolaka/netshoot';

/** Quotes a value for a POSIX shell unless it is plainly safe (Kubernetes names are). */
export function q(s: string): string {
  return /^[A-Za-z0-9._:/@=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function urlHost(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const h = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return isIP(h) !== 0 ? h : undefined;
  } catch {
    return undefined;
  }
}

/** The node's address: its host agent's IP, or a kubectl lookup of its InternalIP. */
export function nodeIp(ctx: Ctx, node: string): string {
  return (
    urlHost(ctx.agents.get(agentKey(node, 'host'))?.url) ??
    `$(kubectl get node ${q(node)} -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')`
  );
}

/** The pod agent's IP on that node, or a kubectl lookup of it. */
export function podIp(ctx: Ctx, node: string): string {
  return (
    urlHost(ctx.agents.get(agentKey(node, 'pod'))?.url) ??
    `$(kubectl -n ${NS} get pods -l podmesh.io/network=pod --field-selector spec.nodeName=${q(node)} -o jsonpath='{.items[0].status.podIP}')`
  );
}

/** A shell in the node's own network namespace (kubectl debug node shares it). */
export function onNode(node: string, cmd: string): string {
  return `kubectl debug node/${q(node)} -it --image=${NETSHOOT} -- ${cmd}`;
}

/** A throwaway Pod on the node's pod network. */
export function inPod(node: string, cmd: string): string {
  return `kubectl run podmesh-debug -it --rm --restart=Never --image=${NETSHOOT} --overrides='{"spec":{"nodeName":${JSON.stringify(node).replace(/'/g, '')}}}' -- ${cmd}`;
}

export function agentPods(node: string, net?: string): string {
  return `kubectl -n ${NS} get pods -o wide -l app.kubernetes.io/name=podmesh${net !== undefined ? `,podmesh.io/network=${q(net)}` : ''} --field-selector spec.nodeName=${q(node)}`;
}

export const nodePods = (node: string): string =>
  `kubectl get pods -A -o wide --field-selector spec.nodeName=${q(node)}`;
