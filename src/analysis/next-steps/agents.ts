// What to check next about podmesh's own agents: a node without a working agent (by the
// coverage reason), and a prober starved of CPU.

import type { NextStep } from '../types.ts';
import { agentPods, NS, onNode, q } from './shell.ts';

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
