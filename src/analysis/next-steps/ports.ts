// What to check next for a port that is dropped, refused, rejected or unexpectedly open:
// podmesh's own agent TCP port, or a configured port target. The three failing outcomes point at
// different things: refused (a TCP reset) at the listener, rejected (an ICMP unreachable) at a
// REJECT rule or a missing route, dropped (a timeout) at a DROP policy or a black hole.

import type { Ctx } from '../model.ts';

/** How the failing connects ended: a reset, an ICMP unreachable, or nothing (timeout). */
export type PortOutcome = 'refused' | 'rejected' | 'blocked';
import type { NextStep } from '../types.ts';
import { agentPods, inPod, NS, nodeIp, onNode, podIp, q } from './shell.ts';

export function agentPortSteps(
  ctx: Ctx,
  node: string,
  net: string,
  outcome: PortOutcome,
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
    outcome === 'refused'
      ? {
          text: `Refused: is the agent's TCP listener up, or does a rule reject the port with a reset (iptables' default REJECT answers with a port-unreachable, which Linux also reports as refused)?`,
          command: `${agentPods(node, net)} ; ${onNode(node, `sh -c "ss -lntp | grep ${port}; nft list ruleset | grep -n reject"`)}`,
        }
      : outcome === 'rejected'
        ? {
            text: `Rejected: an ICMP unreachable answers the SYN, a REJECT rule (admin-prohibited, host-prohibited, host-unreachable) or a router without a route; find the rule on ${node} or on the way.`,
            command: `kubectl -n ${NS} get networkpolicy ; ${onNode(node, `sh -c "nft list ruleset | grep -n -e reject -e ${port}; iptables-save | grep -n REJECT; ip route get ${ip}"`)}`,
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
  mode: PortOutcome | 'open',
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
  if (mode === 'rejected')
    return [
      {
        text: `Confirm by hand: "No route to host" (or "Network is unreachable") answered at once means an ICMP unreachable came back: a REJECT rule or a router without a route, not a silent drop.`,
        command: probe,
      },
      {
        text: `Look for REJECT rules about port ${port} or ${address} (NetworkPolicy engines that reject, host firewalls) and check the route to ${address}.`,
        command: `nft list ruleset | grep -n -e reject -e ${port}; iptables-save | grep -n REJECT; ip route get ${q(address)}`,
      },
      {
        text: 'Check NetworkPolicies that select the target or the sources.',
        command: 'kubectl get networkpolicy -A -o wide',
      },
    ];
  if (mode === 'refused')
    return [
      {
        text: `Confirm by hand: "Connection refused" means a TCP reset came back: nothing listens there, or a rule rejects with a reset (iptables' default REJECT, icmp port-unreachable, looks the same to the client).`,
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
      text: `Confirm by hand: a timeout means the SYN is dropped on the way (a DROP policy or firewall rule, or a black hole) with no answer at all.`,
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
