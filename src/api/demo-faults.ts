// The demo's fault injection on the wire (`podmesh demo` only): GET and POST
// /api/v1/demo/faults on the demo controller, the CLI's `podmesh demo --fault`, and the web UI's
// fault menu all speak this. A POST replaces the whole set; `{ "faults": [] }` heals everything.
// The endpoint exists only on the demo's controller (src/demo/demo.ts), which binds 127.0.0.1.

import { z } from 'zod';

const nodeName = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);

/** One fault, each in the demo's own responders (no root, no netem). */
export const demoFaultSchema = z.discriminatedUnion('kind', [
  /**
   * The node's STAMP reflectors leave `percent` % of the test packets sent to them unanswered:
   * loss in one direction only (towards the node), udp probes only.
   */
  z.strictObject({
    kind: z.literal('loss'),
    node: nodeName,
    percent: z.number().int().min(1).max(100),
  }),
  /** The node's reflectors drop every MTU-sized test packet and answer the small ones. */
  z.strictObject({ kind: z.literal('mtu'), node: nodeName }),
  /** The DNS replica on this node (the demo's replica label) answers every query SERVFAIL. */
  z.strictObject({ kind: z.literal('dns-servfail'), replica: nodeName }),
  /** The demo's port target of this name stops listening: connects are refused. */
  z.strictObject({ kind: z.literal('port-refused'), target: nodeName }),
]);
export type DemoFault = z.infer<typeof demoFaultSchema>;

export const DEMO_FAULT_KINDS = ['loss', 'mtu', 'dns-servfail', 'port-refused'] as const;

/** The body of POST /api/v1/demo/faults: the whole set of faults wanted. */
export const demoFaultsSchema = z.strictObject({
  faults: z.array(demoFaultSchema).max(32),
});
export type DemoFaults = z.infer<typeof demoFaultsSchema>;

/** The answer to GET and POST: the faults on, and what can be faulted (the UI's menu). */
export const demoFaultStateSchema = demoFaultsSchema.extend({
  targets: z.strictObject({
    nodes: z.array(nodeName),
    /** DNS replicas by the node label the agents report them under. */
    replicas: z.array(nodeName),
    ports: z.array(nodeName),
  }),
});
export type DemoFaultState = z.infer<typeof demoFaultStateSchema>;

/**
 * The CLI's short form, `node-2:loss=30`, `node-2:mtu`, `dns:node-1` (a replica answering
 * SERVFAIL) or `port:demo-web` (refused): one fault, or the reason it is not one.
 */
export function parseDemoFault(text: string): DemoFault | string {
  const loss = /^([^:]+):loss=(\d+)$/.exec(text);
  const mtu = /^([^:]+):mtu$/.exec(text);
  const dns = /^dns:(.+)$/.exec(text);
  const port = /^port:(.+)$/.exec(text);
  const candidate =
    dns !== null
      ? { kind: 'dns-servfail', replica: dns[1] }
      : port !== null
        ? { kind: 'port-refused', target: port[1] }
        : loss !== null
          ? { kind: 'loss', node: loss[1], percent: Number(loss[2]) }
          : mtu !== null
            ? { kind: 'mtu', node: mtu[1] }
            : undefined;
  if (candidate === undefined)
    return `"${text}" is not a fault: try NODE:loss=PERCENT, NODE:mtu, dns:NODE or port:TARGET`;
  const r = demoFaultSchema.safeParse(candidate);
  return r.success ? r.data : `"${text}": ${r.error.issues.map((i) => i.message).join('; ')}`;
}
