// Test helpers: start real agents on loopback addresses with OS-assigned ports, wire them to
// each other through static peer sources, and read their HTTP endpoints.

import { pino, type Logger } from 'pino';
import { Agent } from '../../src/agent/agent.ts';
import { loadConfig } from '../../src/config/load.ts';
import { StaticPeerSource } from '../../src/discovery/peer-source.ts';
import { peerId, type Network, type Peer } from '../../src/core/types.ts';

export const silent = pino({ level: 'silent' });

export interface Spec {
  readonly node: string;
  readonly network?: Network;
  readonly zone?: string;
  readonly address: string;
  readonly ports?: { http: number; stamp: number; tcp: number };
}

export interface Running {
  readonly spec: Spec;
  readonly agent: Agent;
  readonly source: StaticPeerSource;
  readonly peer: Peer;
  readonly url: string;
}

/**
 * DNS checks are off unless a test opts in ('dns.enabled': true) and then passes `resolvConf`
 * content pointing at a DNS server it started: no test may query the machine's own resolver.
 */
export async function startAgent(
  spec: Spec,
  overrides: Record<string, unknown> = {},
  options: {
    readonly resolvConf?: string;
    readonly source?: StaticPeerSource;
    /** The agent's logger; silent unless a test reads what the agent logs. */
    readonly log?: Logger;
  } = {},
): Promise<Running> {
  if (overrides['dns.enabled'] === true && options.resolvConf === undefined)
    throw new Error('startAgent: a test that turns DNS on must pass resolvConf content');
  const config = loadConfig({
    overrides: {
      node: spec.node,
      network: spec.network ?? 'pod',
      zone: spec.zone ?? 'z1',
      address: spec.address,
      httpAddress: spec.address,
      httpPort: spec.ports?.http ?? 0,
      stampPort: spec.ports?.stamp ?? 0,
      tcpPort: spec.ports?.tcp ?? 0,
      'dns.enabled': false,
      ...overrides,
    },
  });
  const source = options.source ?? new StaticPeerSource([]);
  const agent = await Agent.start({
    config,
    log: options.log ?? silent,
    version: 'test',
    peerSource: source,
    ...(options.resolvConf !== undefined ? { resolvConf: options.resolvConf } : {}),
  });
  const network = spec.network ?? 'pod';
  const peer: Peer = {
    id: peerId(spec.node, network),
    node: spec.node,
    network,
    zone: spec.zone ?? 'z1',
    address: spec.address,
    httpPort: agent.httpPort,
    stampPort: agent.stampPort,
    tcpPort: agent.tcpPort,
  };
  return { spec, agent, source, peer, url: `http://${spec.address}:${agent.httpPort}` };
}

export function connect(
  all: readonly Running[],
  peers: readonly Peer[] = all.map((r) => r.peer),
): void {
  for (const r of all) r.source.set(peers);
}

export async function until<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  stepMs = 25,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Parses Prometheus text into {name, labels, value} samples. */
export function parseMetrics(
  text: string,
): { name: string; labels: Record<string, string>; value: number }[] {
  const out: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const lm of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[lm[1]!] = lm[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[4]) });
  }
  return out;
}

export async function scrape(url: string): Promise<ReturnType<typeof parseMetrics>> {
  const res = await fetch(`${url}/metrics`);
  if (!res.ok) throw new Error(`GET ${url}/metrics: ${res.status}`);
  return parseMetrics(await res.text());
}
