// The user-space fallback as a user sees it: with the timestamping addon unavailable (forced
// here with PODMESH_TIMESTAMPS=userspace, set before anything loads it), the agent keeps
// probing, says once in its log which kinds lost kernel timestamps and why, labels every kind
// `userspace` in /metrics and the results row, and ICMP moves to the main thread's raw-socket
// (root only; without root ICMP is reported off with reason `permission`).

import { Writable } from 'node:stream';
import test from 'ava';
import { pino } from 'pino';
import type { AgentRow } from '../src/api/agent-row.ts';
import { TIMESTAMPS_ENV } from '../src/native/timestamping.ts';
import { connect, scrape, startAgent, until, type Running } from './support/agents.ts';

process.env[TIMESTAMPS_ENV] = 'userspace';

test('without the addon: user-space timestamps, labelled, logged once per kind', async (t) => {
  const logged: { level: number; msg: string; protocol?: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done): void {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        logged.push(JSON.parse(line) as { level: number; msg: string; protocol?: string });
      done();
    },
  });
  const log = pino({ level: 'info' }, sink);
  const root = process.getuid?.() === 0;
  const agents: Running[] = [];
  t.teardown(() => Promise.all(agents.map((a) => a.agent.stop())));
  const fast = { 'probes.intervalMs': 200, 'probes.timeoutMs': 150, 'window.seconds': 5 };
  for (let i = 1; i <= 2; i++)
    agents.push(
      await startAgent({ node: `fb${i}`, address: `127.43.2.${i}` }, fast, i === 1 ? { log } : {}),
    );
  connect(agents);
  const row = await until(
    'udp results answered',
    async () => {
      const r = (await (await fetch(`${agents[0]!.url}/api/v1/results`)).json()) as AgentRow;
      const ok = (p: string): boolean => {
        const c = r.peers[0]?.results.find((x) => x.protocol === p && x.size === 'small');
        return c !== undefined && c.sent - c.lost >= 3;
      };
      return ok('udp') && (!root || ok('icmp')) ? r : undefined;
    },
    10_000,
  );
  t.is(row.probes.timestamps.udp?.source, 'userspace');
  t.regex(row.probes.timestamps.udp?.detail ?? '', /PODMESH_TIMESTAMPS=userspace/);
  t.is(row.probes.timestamps.tcp?.source, 'userspace');
  if (root) {
    t.is(row.probes.icmp.thread, 'main');
    t.is(row.probes.timestamps.icmp?.source, 'userspace');
  } else {
    t.is(row.probes.icmp.reason, 'permission');
  }
  const samples = (await scrape(agents[0]!.url)).filter(
    (m) => m.name === 'podmesh_timestamp_source',
  );
  t.true(samples.length >= 2);
  t.true(samples.every((m) => m.labels['source'] === 'userspace' && m.value === 1));
  // One warning per kind, each saying why.
  const warned = logged.filter((l) => l.level === 40 && /user-space timestamps/.test(l.msg));
  t.deepEqual(warned.map((l) => l.protocol).sort(), root ? ['icmp', 'tcp', 'udp'] : ['tcp', 'udp']);
});
