// What to check next for the latency kinds: where the delay is added along the path (mtr), what
// queues on the node (qdisc backlog, interface drops, softirq and CPU load), and, between zones,
// the path between them; with the real node names and addresses filled in.

import type { Ctx } from '../model.ts';
import type { NextStep } from '../types.ts';
import { nodeIp, onNode, q } from './shell.ts';

/** Steps for a slow node (`a` alone) or a slow pair (`a`, `b`). */
export function latencySteps(ctx: Ctx, a: string, b: string | undefined): NextStep[] {
  const steps: NextStep[] = [];
  if (b !== undefined)
    steps.push({
      text: `Measure the round trip from ${a} to ${b} outside podmesh and see at which hop the delay is added.`,
      command: onNode(a, `mtr -rwc 100 ${nodeIp(ctx, b)}`),
    });
  steps.push(
    {
      text: `Check ${a}'s queues: a large qdisc backlog or rising drops/overlimits means its link is saturated (a bulk transfer, a backup, a noisy neighbour).`,
      command: onNode(a, `sh -c 'tc -s qdisc show; ip -s link'`),
    },
    {
      text: `Check ${a}'s CPU: a node busy in softirq or steal time answers late on every path.`,
      command: `kubectl top node ${q(a)}`,
    },
  );
  return steps;
}

/** Steps for a slow zone pair, run from one node on each side. */
export function latencyZoneSteps(ctx: Ctx, a: string, b: string): NextStep[] {
  return [
    {
      text: `Measure the round trip from ${a} to ${b} hop by hop: the hop where the delay starts is the inter-zone link, a NAT or transit gateway, or a changed route.`,
      command: onNode(a, `mtr -rwc 100 ${nodeIp(ctx, b)}`),
    },
    {
      text: `Compare with the route ${a} takes to ${b} now: traffic between zones taking a longer way (a failed-over link, a route change) adds the same delay to every pair.`,
      command: onNode(a, `sh -c 'ip route get ${nodeIp(ctx, b)}; traceroute -n ${nodeIp(ctx, b)}'`),
    },
  ];
}
