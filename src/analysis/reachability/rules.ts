// The IP-path rules, broadest cause first, each taking the links it explains so narrower rules
// never report them again: zone pair, isolated node, a cut in progress (held back, no finding),
// one-way path, overlay, node network, MTU black hole, the rotating links of the causes named so
// far, and last the loss nothing broader explains. (An agent's TCP port blocked runs
// before all of them, in triage.ts, since it takes cells rather than links.)
//
// Links are judged on small probes pooled over protocols (links.ts); MTU-sized probes are only
// read by the MTU rule and by pair-loss. Each rule's file says what evidence it needs and why.

import type { Rule } from '../model.ts';
import { asymmetric } from './asymmetric.ts';
import { hostNetwork } from './host-network.ts';
import { isolation } from './isolation.ts';
import { mtuBlackholes } from './mtu.ts';
import { overlay } from './overlay.ts';
import { pairLoss } from './pair-loss.ts';
import { pendingCuts } from './pending-cut.ts';
import { rotatingLinks } from './rotating.ts';
import { zonePairs } from './zone-pair.ts';

/** Every IP-path rule in order; each one sees only what the earlier ones left. */
export const REACHABILITY_RULES: readonly Rule[] = [
  zonePairs,
  isolation,
  pendingCuts,
  asymmetric,
  overlay,
  hostNetwork,
  mtuBlackholes,
  rotatingLinks,
  pairLoss,
];

export const reachability: Rule = (ctx) => REACHABILITY_RULES.flatMap((rule) => rule(ctx));
