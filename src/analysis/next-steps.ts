// What to check next for each kind of finding, as commands with the real node, server and
// target names filled in. The checks follow the troubleshooting guide's order (Pod and node
// status, DNS, NetworkPolicy, node-to-node, CNI, firewall, capture); addresses come from the
// agents' own URLs when they are literal IPs, else from a kubectl lookup inside the command.

import { isIP } from 'node:net';
import type { Ctx } from './model.ts';
import { agentKey } from './model.ts';
import type { NextStep } from './types.ts';

const NS = 'podmesh';
const NETSHOOT = 'nicolaka/netshoot';
/** flannel's VXLAN port and the IANA one (Calico, Cilium and others). */
const VXLAN_PORTS = '8472|4789';

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

const nodePods = (node: string): string =>
  `kubectl get pods -A -o wide --field-selector spec.nodeName=${q(node)}`;

const DNS_PODS = 'kubectl -n kube-system get pods -l k8s-app=kube-dns -o wide';
const DNS_VIP = `$(kubectl -n kube-system get svc kube-dns -o jsonpath='{.spec.clusterIP}')`;

function replicaIp(node: string | undefined): string {
  return node === undefined
    ? `$(kubectl -n kube-system get pods -l k8s-app=kube-dns -o jsonpath='{.items[0].status.podIP}')`
    : `$(kubectl -n kube-system get pods -l k8s-app=kube-dns --field-selector spec.nodeName=${q(node)} -o jsonpath='{.items[0].status.podIP}')`;
}

export function isolatedSteps(ctx: Ctx, node: string, peer: string | undefined): NextStep[] {
  const steps: NextStep[] = [
    {
      text: `Check ${node}'s conditions and events: a node cut off goes NotReady once kubelet stops reporting.`,
      command: `kubectl describe node ${q(node)}`,
    },
    {
      text: `List what runs on ${node}; its Pods look Running until the node is marked NotReady.`,
      command: nodePods(node),
    },
  ];
  if (peer !== undefined)
    steps.push({
      text: `From ${peer}, check ${node}'s node address answers at all (no answer on both networks points below Kubernetes: link, switch port, routing).`,
      command: onNode(peer, `ping -c 10 ${nodeIp(ctx, node)}`),
    });
  steps.push(
    {
      text: `On ${node} itself (console or ssh: the API server may not reach it either), check the links are up (NO-CARRIER, DOWN), the addresses and the default route.`,
      command: 'ip -br link; ip -br addr; ip route',
    },
    {
      text: `Still on ${node}, look for a firewall rule that drops everything (a changed default policy).`,
      command: 'nft list ruleset | head -100; iptables-save | head -100',
    },
  );
  return steps;
}

export function overlaySteps(
  ctx: Ctx,
  hubs: readonly string[],
  peer: string | undefined,
): NextStep[] {
  const node = hubs[0];
  const steps: NextStep[] = [];
  if (node !== undefined) {
    steps.push(
      {
        text: `Check the CNI agent on ${node} (flannel, calico-node, cilium ...) is Running and not restarting, then read its log.`,
        command: `${nodePods(node)} | grep -Ei 'flannel|calico|cilium|weave|antrea|kube-router'`,
      },
      {
        text: `On ${node}, check the VXLAN device: present, UP, the right VNI, port and MTU, with forwarding entries for the other nodes.`,
        command: onNode(
          node,
          `sh -c 'ip -d link show flannel.1; bridge fdb show dev flannel.1; ip route'`,
        ),
      },
      {
        text: `On ${node}, look for a firewall rule dropping the overlay's UDP port (flannel 8472, VXLAN 4789); cloud security groups must allow it between nodes too.`,
        command: onNode(
          node,
          `sh -c "nft list ruleset | grep -nE '${VXLAN_PORTS}'; iptables-save | grep -nE '${VXLAN_PORTS}'"`,
        ),
      },
    );
    if (peer !== undefined)
      steps.push({
        text: `Capture on ${node} while a pod on ${peer} pings its pod agent: encapsulated packets that arrive but get no answer, or none arriving, tell which side drops them.`,
        command: `${onNode(node, `tcpdump -ni any 'udp port 8472 or udp port 4789' -c 20`)}   # meanwhile: ${inPod(peer, `ping -c 5 ${podIp(ctx, node)}`)}`,
      });
  } else {
    steps.push({
      text: 'Check the CNI agents on every node are Running and their configuration was not just changed.',
      command: `kubectl get pods -A -o wide | grep -Ei 'flannel|calico|cilium|weave|antrea|kube-router'`,
    });
  }
  steps.push({
    text: 'Check the CNI configuration the nodes use (backend, VXLAN port, MTU).',
    command:
      'kubectl get cm -A | grep -Ei "flannel|calico|cilium" ; kubectl -n kube-flannel get cm kube-flannel-cfg -o yaml',
  });
  return steps;
}

export function hostNetworkSteps(
  ctx: Ctx,
  a: string | undefined,
  b: string | undefined,
): NextStep[] {
  const steps: NextStep[] = [
    {
      text: 'Check the nodes are Ready and their addresses are what the others expect.',
      command: 'kubectl get nodes -o wide',
    },
  ];
  if (a !== undefined && b !== undefined)
    steps.push(
      {
        text: `From ${a}, check ${b}'s node address answers, and which route and interface reach it.`,
        command: onNode(a, `sh -c 'ping -c 10 ${nodeIp(ctx, b)}; ip route get ${nodeIp(ctx, b)}'`),
      },
      {
        text: `Look for firewall rules on ${b} dropping traffic from other nodes (the host agents use TCP 9870/9873 and UDP 9872; ICMP must pass for ping).`,
        command: onNode(b, `sh -c 'nft list ruleset; iptables-save'`),
      },
      {
        text: `Check ${b}'s interfaces for errors and drops.`,
        command: onNode(b, 'ip -s link'),
      },
    );
  else if (a !== undefined)
    steps.push(
      {
        text: `Look for firewall rules on ${a} dropping traffic from other nodes (the host agents use TCP 9870/9873 and UDP 9872; ICMP must pass for ping).`,
        command: onNode(a, `sh -c 'nft list ruleset; iptables-save'`),
      },
      {
        text: `Check ${a}'s routes, interfaces and error counters.`,
        command: onNode(a, `sh -c 'ip route; ip -s link'`),
      },
    );
  else
    steps.push({
      text: 'Check what changed in the node network: firewall rules, security groups, routes.',
    });
  return steps;
}

export function mtuSteps(ctx: Ctx, a: string | undefined, b: string | undefined): NextStep[] {
  const steps: NextStep[] = [];
  if (a !== undefined)
    steps.push({
      text: `Compare the MTUs on ${a}: the overlay device (flannel.1) must be the node interface's MTU minus the encapsulation (50 bytes for VXLAN), and every node must agree.`,
      command: onNode(a, `sh -c 'ip link | grep mtu'`),
    });
  if (a !== undefined && b !== undefined)
    steps.push(
      {
        text: `From ${a}, send full-size packets with Don't-Fragment to ${b}'s node (1472 + 28 = 1500 bytes); shrink -s until they pass to find the path MTU.`,
        command: onNode(a, `ping -M do -s 1472 -c 3 ${nodeIp(ctx, b)}`),
      },
      {
        text: `From a pod on ${a}, the same over the overlay (1422 + 28 = 1450 bytes for a 1500-byte underlay with VXLAN).`,
        command: inPod(a, `ping -M do -s 1422 -c 3 ${podIp(ctx, b)}`),
      },
    );
  steps.push({
    text: 'Path MTU discovery needs ICMP "fragmentation needed" to get through: look for rules dropping ICMP or fragments, then lower the CNI MTU (or fix the network) so both agree.',
    command: `nft list ruleset | grep -niE 'icmp|frag'`,
  });
  return steps;
}

export function asymmetricSteps(ctx: Ctx, from: string, to: string): NextStep[] {
  return [
    {
      text: `A stateful rule can let ${to} reach ${from} (replies pass as established) while new traffic from ${from} to ${to} is dropped: check NetworkPolicies and ${to}'s firewall.`,
      command: 'kubectl get networkpolicy -A',
    },
    {
      text: `Check ${to}'s firewall for rules matching ${from}.`,
      command: onNode(to, `sh -c 'nft list ruleset; iptables-save'`),
    },
    {
      text: `Compare the routes both ways: a reply leaving on another interface is dropped by reverse-path filtering (rp_filter).`,
      command: `${onNode(from, `ip route get ${nodeIp(ctx, to)}`)} ; ${onNode(to, `sh -c 'ip route get ${nodeIp(ctx, from)}; sysctl net.ipv4.conf.all.rp_filter'`)}`,
    },
  ];
}

export function zoneSteps(ctx: Ctx, a: string, b: string): NextStep[] {
  return [
    {
      text: "Traffic between two zones only: check the firewall, security groups, network ACLs and routes between the zones' subnets (VXLAN UDP 8472/4789 must be allowed too).",
      command: `kubectl get nodes -L topology.kubernetes.io/zone -o wide`,
    },
    {
      text: `Trace the path from ${a} to ${b} to see where it stops.`,
      command: onNode(a, `mtr -rwc 20 ${nodeIp(ctx, b)}`),
    },
  ];
}

export function lossSteps(ctx: Ctx, a: string, b: string | undefined): NextStep[] {
  const steps: NextStep[] = [];
  if (b !== undefined)
    steps.push({
      text: `Measure the loss from ${a} to ${b} outside podmesh and see at which hop it starts.`,
      command: onNode(a, `mtr -rwc 100 ${nodeIp(ctx, b)}`),
    });
  steps.push(
    {
      text: `Check ${a}'s interfaces for drops and errors (a bad cable, a full ring buffer, a flapping link).`,
      command: onNode(a, `sh -c 'ip -s link; ethtool -S eth0 | grep -iE "drop|err|miss"'`),
    },
    {
      text: `Check ${a}'s CPU and network load: a saturated node drops packets too.`,
      command: `kubectl top node ${q(a)}`,
    },
  );
  return steps;
}

export function agentPortSteps(
  ctx: Ctx,
  node: string,
  net: string,
  refused: boolean,
  peer: string | undefined,
): NextStep[] {
  const port = net === 'host' ? 9873 : 9863;
  const ip = net === 'host' ? nodeIp(ctx, node) : podIp(ctx, node);
  const probe = `nc -zv -w 3 ${ip} ${port}`;
  return [
    {
      text: `Try podmesh's TCP probe port on ${node}/${net} by hand${peer !== undefined ? ` from ${peer}` : ''}.`,
      command: peer !== undefined ? inPod(peer, probe) : probe,
    },
    refused
      ? {
          text: `Refused: is the agent's TCP listener up, or does a rule reject the port with a reset?`,
          command: `${agentPods(node, net)} ; ${onNode(node, `sh -c "ss -lntp | grep ${port}; nft list ruleset | grep -n reject"`)}`,
        }
      : {
          text: `Timed out: a NetworkPolicy or a firewall on ${node} drops TCP ${port} (UDP and ICMP to it still pass).`,
          command: `kubectl -n ${NS} get networkpolicy ; ${onNode(node, `sh -c "nft list ruleset | grep -n ${port}; iptables-save | grep -n ${port}"`)}`,
        },
  ];
}

export function portSteps(
  target: string,
  address: string,
  port: number,
  mode: 'blocked' | 'refused' | 'open',
  from: string | undefined,
): NextStep[] {
  const hostPort = `${address} ${port}`;
  const probe =
    from !== undefined
      ? inPod(from, `nc -zv -w 3 ${q(address)} ${port}`)
      : `nc -zv -w 3 ${q(address)} ${port}`;
  if (mode === 'open')
    return [
      {
        text: `${target} (${hostPort}) should be closed to these sources: find the NetworkPolicy meant to deny it and check its selectors match.`,
        command: 'kubectl get networkpolicy -A -o wide',
      },
      {
        text: 'NetworkPolicy is only enforced when the CNI supports it (flannel alone does not): check which policy engine runs.',
        command: `kubectl get pods -A -o wide | grep -Ei 'calico|cilium|weave|antrea|kube-router'`,
      },
      { text: `Confirm by hand that the connection is accepted.`, command: probe },
    ];
  if (mode === 'refused')
    return [
      {
        text: `Confirm by hand: "Connection refused" means nothing listens there, or a rule rejects it.`,
        command: probe,
      },
      {
        text: `On the host or Pod behind ${address}, check something listens on port ${port}.`,
        command: `ss -lntp | grep ':${port} '`,
      },
      {
        text: 'If it is a Service, check it has ready endpoints.',
        command: `kubectl get endpointslices -A -o wide | grep -w ${port}`,
      },
    ];
  return [
    {
      text: `Confirm by hand: a timeout means the SYN is dropped on the way (policy or firewall).`,
      command: probe,
    },
    {
      text: 'Check NetworkPolicies that select the target or the sources (ingress and egress, ports and protocol).',
      command: 'kubectl get networkpolicy -A -o wide',
    },
    {
      text: `On the node behind ${address}, look for firewall rules about port ${port}.`,
      command: `nft list ruleset | grep -n ${port}; iptables-save | grep -n ${port}`,
    },
  ];
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

export function coverageSteps(
  node: string,
  net: string | undefined,
  reason: string,
  pod: string | null,
): NextStep[] {
  const podRef =
    pod !== null ? q(pod) : `$(${agentPods(node, net).replace(' -o wide', ' -o name')} | head -1)`;
  const steps: NextStep[] = [
    { text: `List podmesh's agents on ${node}.`, command: agentPods(node, net) },
  ];
  switch (reason) {
    case 'missing':
    case 'unschedulable':
      steps.push({
        text: `No agent was placed on ${node}: check its taints and the DaemonSets' status.`,
        command: `kubectl describe node ${q(node)} | grep -A5 Taints ; kubectl -n ${NS} get ds -o wide`,
      });
      break;
    case 'crash-loop':
      steps.push({
        text: 'Read the log of the crashed container.',
        command: `kubectl -n ${NS} logs ${podRef} --previous`,
      });
      break;
    case 'sandbox-error':
      steps.push(
        {
          text: 'The Pod sandbox could not be created, usually the CNI: read the events.',
          command: `kubectl -n ${NS} describe pod ${podRef}`,
        },
        {
          text: `Check the CNI configuration and plugin binaries on ${node}.`,
          command: onNode(node, `sh -c 'ls -la /host/etc/cni/net.d/ /host/opt/cni/bin/'`),
        },
      );
      break;
    case 'unreachable':
    case 'timeout':
    case 'http-error':
    case 'invalid':
      steps.push(
        {
          text: `The controller can't read this agent's results: check the agent is Ready and what the controller logs about it.`,
          command: `kubectl -n ${NS} logs deploy/podmesh-controller --tail=50`,
        },
        { text: "Read the agent's own log.", command: `kubectl -n ${NS} logs ${podRef} --tail=50` },
      );
      break;
    default:
      steps.push({
        text: "Read the Pod's events and status.",
        command: `kubectl -n ${NS} describe pod ${podRef}`,
      });
  }
  return steps;
}

function metricsUrl(url: string | undefined): string {
  try {
    return new URL('/metrics', url).toString();
  } catch {
    return 'http://<agent address>/metrics';
  }
}

export function starvedSteps(node: string, net: string, url: string | undefined): NextStep[] {
  return [
    {
      text: `Check ${node}'s CPU: a busy node or CPU throttling delays the prober, whose late probes then look like latency or loss.`,
      command: `kubectl top node ${q(node)} ; kubectl -n ${NS} top pods -l podmesh.io/network=${q(net)}`,
    },
    {
      text: "Check the agent's CPU request and limit (a tight limit throttles it in bursts).",
      command: `kubectl -n ${NS} get pods -l podmesh.io/network=${q(net)} --field-selector spec.nodeName=${q(node)} -o jsonpath='{.items[0].spec.containers[0].resources}'`,
    },
    {
      text: 'Watch its late ratio come down before trusting its latency again.',
      command: `curl -s ${q(metricsUrl(url))} | grep podmesh_probe_late_ratio`,
    },
  ];
}
