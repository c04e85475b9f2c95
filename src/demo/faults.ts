// The demo's fault injection (`podmesh demo --fault`, POST /api/v1/demo/faults, the UI's fault
// menu): applies a set of DemoFaults (src/api/demo-faults.ts) to the demo's own responders, so a
// newcomer can break the mesh without root and watch the heatmap, findings and /metrics react.
//   loss / mtu     -> the node's STAMP reflectors, over the in-process channel the demo agents'
//                     engines listen on (src/responders/demo-faults.ts)
//   dns-servfail   -> the demo DNS replica of that node answers SERVFAIL (dns-server.ts)
//   port-refused   -> the demo port target stops listening (DemoPortTarget below)
// Every apply replaces the whole set, so healing is applying [].

import net from 'node:net';
import { BroadcastChannel } from 'node:worker_threads';
import { demoFaultsSchema, type DemoFault, type DemoFaultState } from '../api/demo-faults.ts';
import {
  DEMO_FAULT_CHANNEL,
  MTU_PROBE_MIN_BYTES,
  type ReflectorFaultTable,
} from '../responders/demo-faults.ts';
import type { DnsServer } from './dns-server.ts';

/** A TCP port the demo's port checks connect to; "refusing" closes it, healing reopens it. */
export class DemoPortTarget {
  private server: net.Server | undefined;
  constructor(
    readonly name: string,
    readonly address: string,
    readonly port: number,
  ) {}

  get listening(): boolean {
    return this.server !== undefined;
  }

  async open(): Promise<void> {
    if (this.server !== undefined) return;
    // Accepts and hangs up: the port check only times the handshake.
    const server = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.address, () => resolve());
    });
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export interface DemoFaultTargets {
  /** The demo's node names. */
  readonly nodes: readonly string[];
  /** The DNS replicas, by the node label the agents know them by. */
  readonly replicas: ReadonlyMap<string, DnsServer>;
  readonly ports: readonly DemoPortTarget[];
}

/** What is wrong with `faults` for these targets (unknown names, one thing faulted twice). */
export function checkFaults(faults: readonly DemoFault[], t: DemoFaultTargets): string[] {
  const errors: string[] = [];
  const seen = new Set<string>();
  for (const f of faults) {
    const [what, known] =
      f.kind === 'loss' || f.kind === 'mtu'
        ? [f.node, t.nodes]
        : f.kind === 'dns-servfail'
          ? [f.replica, [...t.replicas.keys()]]
          : [f.target, t.ports.map((p) => p.name)];
    if (!known.includes(what))
      errors.push(`${f.kind}: no ${what} in the demo (known: ${known.join(', ')})`);
    const key = `${f.kind === 'mtu' ? 'loss' : f.kind}/${what}`;
    if (seen.has(key)) errors.push(`${f.kind}: ${what} has two faults of this kind`);
    seen.add(key);
  }
  return errors;
}

/** The reflectors' table for a set of faults: a node's loss and mtu faults, one per node. */
export function reflectorTable(faults: readonly DemoFault[]): ReflectorFaultTable {
  const table: Record<string, { dropShare: number; minBytes: number }> = {};
  for (const f of faults)
    if (f.kind === 'loss') table[f.node] = { dropShare: f.percent / 100, minBytes: 0 };
    else if (f.kind === 'mtu') table[f.node] = { dropShare: 1, minBytes: MTU_PROBE_MIN_BYTES };
  return table;
}

export class DemoFaultInjector {
  private current: readonly DemoFault[] = [];
  private readonly channel = new BroadcastChannel(DEMO_FAULT_CHANNEL);

  constructor(private readonly targets: DemoFaultTargets) {
    this.channel.unref();
  }

  faults(): readonly DemoFault[] {
    return this.current;
  }

  /** The wire body (src/api/demo-faults.ts): the current faults and what can be faulted. */
  body(): DemoFaultState {
    const t = this.targets;
    return {
      faults: [...this.current],
      targets: {
        nodes: [...t.nodes],
        replicas: [...t.replicas.keys()],
        ports: t.ports.map((p) => p.name),
      },
    };
  }

  /** Validates a body from the wire, then applies it. */
  async applyBody(body: unknown): Promise<void> {
    const parsed = demoFaultsSchema.safeParse(body);
    if (!parsed.success)
      throw new Error(
        parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '),
      );
    await this.apply(parsed.data.faults);
  }

  /** Replaces the faults; rejects (changing nothing) with the reasons when a name is unknown. */
  async apply(faults: readonly DemoFault[]): Promise<void> {
    const errors = checkFaults(faults, this.targets);
    if (errors.length > 0) throw new Error(errors.join('; '));
    this.channel.postMessage(reflectorTable(faults));
    for (const [node, server] of this.targets.replicas)
      server.setServfail(faults.some((f) => f.kind === 'dns-servfail' && f.replica === node));
    for (const p of this.targets.ports)
      if (faults.some((f) => f.kind === 'port-refused' && f.target === p.name)) await p.close();
      else await p.open();
    this.current = [...faults];
  }

  close(): void {
    this.channel.close();
  }
}
