// The health recorder turns an engine's cumulative counts into counter increments: here, the
// sockets that failed and were reopened (issue 14.4), per kind, never counted twice.

import test from 'ava';
import { FakeClock } from '../../test/support/fake-clock.ts';
import { PairWindowStore } from '../store/pair-window.ts';
import { AgentMetrics } from './recorder.ts';

test('reopened sockets become podmesh_socket_reopens_total by kind, from cumulative totals', async (t) => {
  const clock = new FakeClock(1_700_000_000_000);
  const self = { node: 'node-a', network: 'pod' as const, zone: 'zone-a', address: '198.18.0.1' };
  const m = new AgentMetrics(self, new PairWindowStore(clock, 60_000), 'test');
  m.health.setEngineHealth(
    { socketReopens: { stamp_sender: 1, stamp_reflector: 0, icmp: 2 } },
    'worker',
    true,
  );
  m.health.setEngineHealth(
    { socketReopens: { stamp_sender: 1, stamp_reflector: 3, icmp: 2 } },
    'worker',
    true,
  );
  const text = await m.render();
  const line = (kind: string): RegExp =>
    new RegExp(
      `podmesh_socket_reopens_total\\{source_node="node-a",network="pod",kind="${kind}"\\} (\\d+)\\n`,
    );
  t.is(line('stamp_sender').exec(text)?.[1], '1');
  t.is(line('stamp_reflector').exec(text)?.[1], '3');
  t.is(line('icmp').exec(text)?.[1], '2');
});

test('what a full window holds is exported per kind, for the alert rules', async (t) => {
  const clock = new FakeClock(1_700_000_000_000);
  const self = { node: 'node-a', network: 'host' as const, zone: 'zone-a', address: '198.18.0.1' };
  const m = new AgentMetrics(self, new PairWindowStore(clock, 60_000), 'test');
  t.notRegex(await m.render(), /podmesh_window_expected_probes\{/);
  m.health.setWindowExpected({ pair: 20, dns: 2, port: 2 });
  const text = await m.render();
  for (const [kind, n] of [
    ['pair', 20],
    ['dns', 2],
    ['port', 2],
  ] as const)
    t.regex(
      text,
      new RegExp(
        `podmesh_window_expected_probes\\{source_node="node-a",network="host",kind="${kind}"\\} ${n}\\n`,
      ),
    );
});
