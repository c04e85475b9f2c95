// Where RTT timestamps come from, as a user sees it: with the timestamping addon loaded, udp and
// icmp run on the engine's worker thread with kernel timestamps, tcp reports the kernel's handshake
// RTT (TCP_INFO),
// and /metrics and /api/v1/results say so. The user-space fallback (the addon unavailable) is
// test/timestamp-fallback.test.ts, in its own process because the addon load is per process.
// ICMP needs root here (raw socket through the addon) or a ping_group_range including our gid.

import { readFileSync } from 'node:fs';
import test from 'ava';
import type { AgentRow } from '../src/api/agent-row.ts';
import { loadTimestamping } from '../src/native/timestamping.ts';
import { connect, scrape, startAgent, until, type Running } from './support/agents.ts';

function icmpAllowed(): boolean {
  if (process.getuid?.() === 0) return true;
  const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8').split(/\s+/);
  const gid = process.getgid?.() ?? -1;
  return Number(lo) <= gid && gid <= Number(hi);
}

const addon = loadTimestamping();
const runIt = addon.ok && icmpAllowed() ? test : test.skip;
if (!addon.ok) console.log(`skipping: timestamping addon not loaded: ${addon.reason}`);

runIt(
  'with the addon: udp, icmp and tcp use kernel timestamps, icmp on the engine thread',
  async (t) => {
    const agents: Running[] = [];
    t.teardown(() => Promise.all(agents.map((a) => a.agent.stop())));
    const fast = { 'probes.intervalMs': 200, 'probes.timeoutMs': 150, 'window.seconds': 5 };
    for (let i = 1; i <= 2; i++)
      agents.push(await startAgent({ node: `ts${i}`, address: `127.43.1.${i}` }, fast));
    connect(agents);
    const row = await until(
      'icmp results answered',
      async () => {
        const r = (await (await fetch(`${agents[0]!.url}/api/v1/results`)).json()) as AgentRow;
        const icmp = r.peers[0]?.results.find((x) => x.protocol === 'icmp' && x.size === 'small');
        return icmp !== undefined && icmp.sent - icmp.lost >= 3 ? r : undefined;
      },
      10_000,
    );
    t.is(row.probes.icmp.thread, 'engine');
    t.is(row.probes.icmp.reason, 'ok');
    t.is(row.probes.timestamps.udp?.source, 'kernel');
    t.is(row.probes.timestamps.icmp?.source, 'kernel');
    t.is(row.probes.timestamps.tcp?.source, 'kernel');
    const samples = (await scrape(agents[0]!.url)).filter(
      (m) => m.name === 'podmesh_timestamp_source',
    );
    const sourceOf = (p: string): string | undefined =>
      samples.find((m) => m.labels['protocol'] === p && m.value === 1)?.labels['source'];
    t.is(samples.length, 3, JSON.stringify(samples));
    t.is(sourceOf('udp'), 'kernel');
    t.is(sourceOf('icmp'), 'kernel');
    t.is(sourceOf('tcp'), 'kernel');
  },
);
