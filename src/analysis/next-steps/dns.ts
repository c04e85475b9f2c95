// What to check next for the DNS findings: a replica, the Service VIP, every server, one
// source's lookups, or the upstream resolvers.

import type { NextStep } from '../types.ts';
import { NS, onNode, q } from './shell.ts';

const DNS_PODS = 'kubectl -n kube-system get pods -l k8s-app=kube-dns -o wide';
const DNS_VIP = `$(kubectl -n kube-system get svc kube-dns -o jsonpath='{.spec.clusterIP}')`;

function replicaIp(node: string | undefined): string {
  return node === undefined
    ? `$(kubectl -n kube-system get pods -l k8s-app=kube-dns -o jsonpath='{.items[0].status.podIP}')`
    : `$(kubectl -n kube-system get pods -l k8s-app=kube-dns --field-selector spec.nodeName=${q(node)} -o jsonpath='{.items[0].status.podIP}')`;
}

export function dnsReplicaSteps(
  node: string | undefined,
  server: string,
  name: string,
): NextStep[] {
  const sel = node === undefined ? '' : ` --field-selector spec.nodeName=${q(node)}`;
  return [
    {
      text: `Check the DNS Pod${node !== undefined ? ` on ${node}` : ''}: Running, Ready, restarts, OOMKilled.`,
      command: `${DNS_PODS}${sel}`,
    },
    {
      text: `Read its log for errors (plugin errors, "no nameservers found", upstream timeouts).`,
      command: `kubectl -n kube-system logs --tail=100 $(kubectl -n kube-system get pods -l k8s-app=kube-dns${sel} -o name | head -1)`,
    },
    {
      text: `Ask replica ${server} directly.`,
      command: `kubectl run podmesh-dnsutils -it --rm --restart=Never --image=infoblox/dnsutils -- dig +tries=1 +time=2 @${replicaIp(node)} ${q(name)}`,
    },
    {
      text: 'Check its CPU and memory against its limits.',
      command: 'kubectl -n kube-system top pods -l k8s-app=kube-dns',
    },
  ];
}

export function dnsServiceSteps(name: string): NextStep[] {
  return [
    {
      text: 'Check the DNS Service and that its EndpointSlices list the ready replicas.',
      command:
        'kubectl -n kube-system get svc kube-dns ; kubectl -n kube-system get endpointslices -l kubernetes.io/service-name=kube-dns -o wide',
    },
    {
      text: "The Service VIP is kube-proxy's (or the CNI's) work: check kube-proxy runs on every node and read its log and mode.",
      command:
        'kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide ; kubectl -n kube-system logs -l k8s-app=kube-proxy --tail=50 ; kubectl -n kube-system get cm kube-proxy -o yaml | grep mode',
    },
    {
      text: 'Compare the VIP with a replica from the same Pod.',
      command: `kubectl run podmesh-dnsutils -it --rm --restart=Never --image=infoblox/dnsutils -- sh -c 'dig +tries=1 +time=2 @${DNS_VIP} ${q(name)}; dig +tries=1 +time=2 @${replicaIp(undefined)} ${q(name)}'`,
    },
    {
      text: 'On a node, check the VIP has its NAT rules (nftables, iptables or IPVS, by kube-proxy mode).',
      command: `nft list ruleset | grep -n ${DNS_VIP}; iptables-save -t nat | grep -n ${DNS_VIP}; ipvsadm -Ln | grep -A3 ${DNS_VIP}`,
    },
  ];
}

export function dnsAllSteps(): NextStep[] {
  return [
    { text: 'Check the DNS Pods are Running and Ready.', command: DNS_PODS },
    {
      text: 'Read their logs for errors.',
      command: 'kubectl -n kube-system logs -l k8s-app=kube-dns --tail=100',
    },
    {
      text: 'Check the Corefile for a recent change or a syntax error.',
      command: 'kubectl -n kube-system get cm coredns -o yaml',
    },
    {
      text: 'Look for NetworkPolicies that drop DNS (UDP and TCP 53) to kube-system.',
      command: 'kubectl get networkpolicy -A -o yaml | grep -nE "port: 53|dns"',
    },
  ];
}

export function dnsSourceSteps(node: string): NextStep[] {
  return [
    {
      text: `Every DNS server fails from ${node} only: look for something on ${node} or its Pods' egress dropping port 53.`,
      command: onNode(node, `sh -c "nft list ruleset | grep -nw 53; iptables-save | grep -nw 53"`),
    },
    {
      text: 'Check NetworkPolicies with egress rules that could miss DNS.',
      command: 'kubectl get networkpolicy -A -o yaml | grep -nE "egress|port: 53"',
    },
    {
      text: `Check the resolver configuration the agents on ${node} use.`,
      command: `kubectl -n ${NS} exec $(kubectl -n ${NS} get pods -l podmesh.io/network=pod --field-selector spec.nodeName=${q(node)} -o name | head -1) -- cat /etc/resolv.conf`,
    },
  ];
}

export function dnsUpstreamSteps(name: string): NextStep[] {
  return [
    {
      text: 'Only names outside the cluster fail: check where the cluster DNS forwards them (the forward plugin in the Corefile).',
      command: 'kubectl -n kube-system get cm coredns -o yaml | grep -n -A3 forward',
    },
    {
      text: 'Read the DNS logs for upstream errors and timeouts.',
      command:
        'kubectl -n kube-system logs -l k8s-app=kube-dns --tail=200 | grep -iE "error|timeout|upstream"',
    },
    {
      text: `Ask a replica for ${name}, and check the nodes' own resolvers (the default upstream) answer it.`,
      command: `kubectl run podmesh-dnsutils -it --rm --restart=Never --image=infoblox/dnsutils -- dig +tries=1 +time=2 @${replicaIp(undefined)} ${q(name)}`,
    },
  ];
}
