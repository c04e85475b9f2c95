// The window budget: what a full window holds per kind, the floor under which the config is
// refused (peer probes) or warned about (DNS, port targets), and the loader reporting it like
// any other problem. The alert rules that use the exported expectation are tested by promtool
// (alerts/tests/window.yaml).

import test from 'ava';
import { ConfigError, loadConfig } from './load.ts';
import { expectedPerWindow, windowProblems, type WindowInput } from './window-budget.ts';

const input = (o: {
  window?: number;
  probes?: number;
  dns?: number;
  dnsOn?: boolean;
  ports?: number;
  targets?: number;
}): WindowInput => ({
  window: { seconds: o.window ?? 60 },
  probes: { intervalMs: o.probes ?? 1000 },
  dns: { enabled: o.dnsOn ?? true, intervalMs: o.dns ?? 5000 },
  ports: { intervalMs: o.ports ?? 5000, targets: Array.from({ length: o.targets ?? 1 }) },
});

test('a full window holds window.seconds / interval runs per kind', (t) => {
  t.deepEqual(expectedPerWindow(input({})), { pair: 60, dns: 12, port: 12 });
  t.deepEqual(expectedPerWindow(input({ window: 10, probes: 500 })).pair, 20);
  t.deepEqual(expectedPerWindow(input({ probes: 5000 })).pair, 12);
});

test('the settings the fixed minimums shut out are fine now; fewer than 2 per window are not', (t) => {
  for (const ok of [
    {},
    { window: 10, probes: 500 },
    { probes: 5000 },
    { window: 10, probes: 5000 },
  ])
    t.deepEqual(windowProblems(input(ok)), { refuse: [], warn: [] }, JSON.stringify(ok));
  const slow = windowProblems(input({ window: 10, probes: 6000 }));
  t.is(slow.refuse.length, 1);
  t.regex(
    slow.refuse[0]!,
    /window\.seconds \(10\) and probes\.intervalMs \(6000\): a window holds 1\.67 probes/,
  );
  t.regex(slow.refuse[0]!, /PodmeshNodeUnreachable/);
  t.regex(
    slow.refuse[0]!,
    /raise window\.seconds to at least 12 or lower probes\.intervalMs to at most 5000/,
  );
  t.deepEqual(slow.warn, []);
});

test('DNS and port checks are warned about, and only when they are on', (t) => {
  const w = windowProblems(input({ window: 5 }));
  t.deepEqual(w.refuse, []);
  t.is(w.warn.length, 2);
  t.regex(w.warn[0]!, /dns\.intervalMs \(5000\).*the DNS alerts could never fire/);
  t.regex(w.warn[1]!, /ports\.intervalMs \(5000\).*the port alerts could never fire/);
  t.deepEqual(windowProblems(input({ window: 5, dnsOn: false, targets: 0 })).warn, []);
});

test('the loader refuses a window too short for the peer probes, with the others', (t) => {
  const err = t.throws(
    () =>
      loadConfig({
        fileText: 'window:\n  seconds: 5\nprobes:\n  intervalMs: 4000\n  timeoutMs: 5000\n',
      }),
    { instanceOf: ConfigError },
  );
  t.regex(err.message, /probes\.timeoutMs \(5000\) must not exceed/);
  const e2 = t.throws(
    () => loadConfig({ fileText: 'window:\n  seconds: 5\nprobes:\n  intervalMs: 4000\n' }),
    { instanceOf: ConfigError },
  );
  t.regex(e2.message, /a window holds 1\.25 probes per pair/);
  t.notThrows(() =>
    loadConfig({ fileText: 'window:\n  seconds: 10\nprobes:\n  intervalMs: 5000\n' }),
  );
});
