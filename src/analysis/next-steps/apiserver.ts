// What to check next when the API server is unreachable from some nodes (or all): the same
// check by hand from the node and from a Pod there, then what the failing way points at: the
// Service translation of `kubernetes` on the node (kube-proxy's rules, the CNI's service
// handling) when only the VIP fails, the path to the control plane (routes, firewall, security
// groups) when the endpoints fail directly too.

import type { NextStep } from '../types.ts';
import { inPod, onNode, q } from './shell.ts';

export interface ApiServerWay {
  readonly address: string;
  readonly port: number;
}

const curl = (w: ApiServerWay): string =>
  `curl -sk -m 5 -o /dev/null -w '%{http_code} connect %{time_connect}s tls %{time_appconnect}s\\n' https://${q(w.address)}:${w.port}/readyz`;

/**
 * `node` undefined: every node fails (the cluster-wide finding). `vip`/`endpoint`: an example
 * of each failing way, when that way fails.
 */
export function apiServerSteps(
  node: string | undefined,
  vip: ApiServerWay | undefined,
  endpoint: ApiServerWay | undefined,
): NextStep[] {
  const at = node ?? '<a node>';
  const steps: NextStep[] = [];
  const way = endpoint ?? vip;
  if (way !== undefined)
    steps.push(
      {
        text: `Try the API server by hand from ${at}'s own network (the kubelet's way) and from a Pod there: any HTTP status (401/403 included) means it was reached.`,
        command: onNode(at, curl(way)),
      },
      { text: `The same from the pod network on ${at}.`, command: inPod(at, curl(way)) },
    );
  steps.push({
    text: 'Which endpoints the `kubernetes` Service has: the addresses the VIP forwards to.',
    command:
      'kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes -o wide',
  });
  if (vip !== undefined && endpoint === undefined)
    steps.push({
      text: `Only the VIP fails${node !== undefined ? ` from ${node}` : ''} while the endpoints answer directly: the Service translation there. Look for the VIP in the node's kube-proxy rules and at kube-proxy (or the CNI's service proxy) on the node.`,
      command: `${onNode(at, `sh -c "iptables-save | grep -n -e ${q(vip.address)} -e default/kubernetes; nft list ruleset | grep -n ${q(vip.address)}; ipvsadm -Ln -t ${q(vip.address)}:${vip.port}"`)} ; kubectl -n kube-system get pods -o wide -l k8s-app=kube-proxy${node !== undefined ? ` --field-selector spec.nodeName=${q(node)}` : ''}`,
    });
  if (endpoint !== undefined)
    steps.push({
      text: `The endpoints fail directly${node !== undefined ? ` from ${node}` : ''}: the path to the control plane. Check the route, the node's firewall and any security group or firewall between the node and the control plane for port ${endpoint.port}.`,
      command: onNode(
        at,
        `sh -c "ip route get ${q(endpoint.address)}; nft list ruleset | grep -n -e ${q(endpoint.address)} -e ${endpoint.port}; iptables-save | grep -n ${endpoint.port}"`,
      ),
    });
  if (node === undefined)
    steps.push({
      text: 'From every node: is the API server up at all? Its health as the control plane sees it.',
      command: 'kubectl get --raw=/readyz?verbose',
    });
  return steps;
}
