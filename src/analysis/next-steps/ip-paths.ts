// What to check next for the IP-path findings (isolated node, overlay, node network, MTU, one-way
// paths, zones, loss), following the troubleshooting guide's order: Pod and node status,
// node-to-node, CNI, firewall, capture; with the real node names and addresses filled in.

import type { Ctx } from '../model.ts';
import type { NextStep } from '../types.ts';
import { inPod, nodeIp, nodePods, onNode, podIp, q } from './shell.ts';

/** flannel's VXLAN port and the IANA one (Calico, Cilium and others). */
const VXLAN_PORTS = '8472|4789';

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
