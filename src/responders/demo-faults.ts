// Faults the demo (`podmesh demo`, src/demo/) can put into an agent's STAMP reflector, so a
// newcomer can watch the heatmap, the findings and /metrics react without root or netem.
//
// Why a BroadcastChannel: the reflector runs on the agent's engine thread (src/mesh/engine.ts),
// and the demo's agents all live in one process, so one in-process channel reaches every engine
// without a message type threaded through the agent, engine handle and worker protocol. Only an
// engine whose spec carries `responders.demoFaultsFor` (set by code, from AgentOptions.demoFaults,
// which only startDemo passes: no setting, env var or config key can turn it on) listens; every
// other reflector's fault slot stays null, and the per-packet cost is that one null check.

/** What one reflector does wrong; null (the default) answers everything as usual. */
export interface ReflectorFault {
  /** Share of test packets left unanswered, 0..1 (a forward-direction loss for the sender). */
  readonly dropShare: number;
  /** Only test packets with more than this many UDP payload bytes are dropped (0: any size). */
  readonly minBytes: number;
}

/** The message on the channel: each demo node's reflector fault, absent nodes healthy. */
export type ReflectorFaultTable = Readonly<Record<string, ReflectorFault>>;

export const DEMO_FAULT_CHANNEL = 'podmesh-demo-faults';

/**
 * UDP payload size above which a test packet counts as an MTU probe: small STAMP probes carry
 * tens of bytes, MTU probes fill the path's MTU (at least 576 bytes of IP packet, settings.ts).
 */
export const MTU_PROBE_MIN_BYTES = 500;

/** Whether a test packet of `bytes` is dropped under `fault`; `random` in [0, 1). */
export function faultDrops(fault: ReflectorFault, bytes: number, random: number): boolean {
  return bytes > fault.minBytes && random < fault.dropShare;
}

/** The fault of `node` in a message from the channel (anything malformed reads as healthy). */
export function faultFor(message: unknown, node: string): ReflectorFault | null {
  if (typeof message !== 'object' || message === null) return null;
  const f = (message as Record<string, unknown>)[node];
  if (typeof f !== 'object' || f === null) return null;
  const { dropShare, minBytes } = f as Partial<ReflectorFault>;
  if (typeof dropShare !== 'number' || typeof minBytes !== 'number') return null;
  return { dropShare, minBytes };
}
