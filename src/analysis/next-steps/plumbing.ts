// What to check next about the cluster's plumbing: a CNI or kube-proxy Pod unhealthy on a node
// (its status, the log of the crashed container, its memory limit), and a node whose kubelet
// cannot set up Pod sandboxes (the Events, the CNI's configuration and binaries, its IPAM).

import type { NextStep } from '../types.ts';
import { onNode, q } from './shell.ts';

export function cniUnhealthySteps(
  node: string,
  pods: readonly { namespace: string; name: string }[],
): NextStep[] {
  const steps: NextStep[] = [
    {
      text: `List the plumbing Pods on ${node}.`,
      command: `kubectl get pods -A -o wide --field-selector spec.nodeName=${q(node)} | grep -Ei 'calico|cilium|flannel|kube-proxy|aws-node|antrea|kube-router|weave|NAME'`,
    },
  ];
  for (const p of pods.slice(0, 2))
    steps.push(
      {
        text: `Read ${p.name}'s status and events: the last termination reason (OOMKilled, Error) and probe failures.`,
        command: `kubectl -n ${q(p.namespace)} describe pod ${q(p.name)}`,
      },
      {
        text: `Read the log of ${p.name}'s container that ended.`,
        command: `kubectl -n ${q(p.namespace)} logs ${q(p.name)} --all-containers --previous --tail=100`,
      },
    );
  steps.push({
    text: 'Compare its memory use with its limit (OOMKilled restarts) and check for a recent rollout.',
    command: `kubectl top pod -A --containers | grep -Ei 'calico|cilium|flannel|kube-proxy|aws-node|antrea|kube-router|weave' ; kubectl get ds -A -o wide`,
  });
  return steps;
}

export function sandboxErrorSteps(node: string, pod: string | undefined): NextStep[] {
  return [
    {
      text: `Read the sandbox errors the kubelet reported on ${node}.`,
      command: `kubectl get events -A --field-selector reason=FailedCreatePodSandBox --sort-by=.lastTimestamp | grep -F ${q(node)}`,
    },
    ...(pod !== undefined
      ? [{ text: `Read the failing Pod's events.`, command: `kubectl describe pod ${pod}` }]
      : []),
    {
      text: `Check the CNI configuration and plugin binaries on ${node} (a missing or half-written conflist, a missing binary).`,
      command: onNode(node, `sh -c 'ls -la /host/etc/cni/net.d/ /host/opt/cni/bin/'`),
    },
    {
      text: `Check the CNI agent on ${node} and its IP address management (an exhausted Pod CIDR or ENI/IP pool fails every new Pod).`,
      command: `kubectl get pods -A -o wide --field-selector spec.nodeName=${q(node)} ; kubectl get node ${q(node)} -o jsonpath='{.spec.podCIDRs}'`,
    },
  ];
}
