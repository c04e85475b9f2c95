// How many completed runs one sliding window holds at the configured intervals, and the
// settings under which the alert rules could never judge a window. The agent exports the
// expectation (podmesh_window_expected_probes), and the rules (alerts/podmesh-rules.yaml) let a
// series count once its window holds half of it (capped at the rule pack's fixed minimum), so
// every interval and window length works, down to the floor below: a window expected to hold
// fewer than two runs is now and then empty, its series come and go, and no `for` clock can
// run out on them.

/** The families whose windowed ratios feed the alert rules (the `kind` label). */
export const WINDOW_KINDS = ['pair', 'dns', 'port'] as const;
export type WindowKind = (typeof WINDOW_KINDS)[number];

/** The settings the budget reads: a subset of Config. */
export interface WindowInput {
  readonly window: { readonly seconds: number };
  readonly probes: { readonly intervalMs: number };
  readonly dns: { readonly enabled: boolean; readonly intervalMs: number };
  readonly ports: { readonly intervalMs: number; readonly targets: readonly unknown[] };
}

/** Fewest runs a window must be expected to hold for the alert rules to work with it. */
export const MIN_EXPECTED_PER_WINDOW = 2;

const INTERVAL_KEY: Readonly<Record<WindowKind, string>> = {
  pair: 'probes.intervalMs',
  dns: 'dns.intervalMs',
  port: 'ports.intervalMs',
};
const WHAT: Readonly<Record<WindowKind, string>> = {
  pair: 'probes per pair, protocol and size',
  dns: 'lookups per DNS server, name and transport',
  port: 'connects per port target',
};
const ALERTS: Readonly<Record<WindowKind, string>> = {
  pair: 'PodmeshNodeUnreachable, PodmeshPodNetworkCrossNodeFailing, PodmeshPairLossHigh, PodmeshPairLatencyHigh and PodmeshMTUBlackHole',
  dns: 'the DNS alerts',
  port: 'the port alerts',
};

function intervalOf(c: WindowInput, kind: WindowKind): number {
  return kind === 'pair'
    ? c.probes.intervalMs
    : kind === 'dns'
      ? c.dns.intervalMs
      : c.ports.intervalMs;
}

/** window.seconds / interval per kind: what a full window holds when every run is on time. */
export function expectedPerWindow(c: WindowInput): Record<WindowKind, number> {
  const per = (kind: WindowKind): number => (c.window.seconds * 1000) / intervalOf(c, kind);
  return { pair: per('pair'), dns: per('dns'), port: per('port') };
}

export interface WindowProblems {
  /** The config is refused: the peer probes, podmesh's core, could never alert. */
  readonly refuse: readonly string[];
  /** Logged at start: an optional check (DNS, port targets) that is on could never alert. */
  readonly warn: readonly string[];
}

/** Settings under which a family's alerts can never fire, each with the way out. */
export function windowProblems(c: WindowInput): WindowProblems {
  const expected = expectedPerWindow(c);
  const refuse: string[] = [];
  const warn: string[] = [];
  for (const kind of WINDOW_KINDS) {
    if (kind === 'dns' && !c.dns.enabled) continue;
    if (kind === 'port' && c.ports.targets.length === 0) continue;
    const n = expected[kind];
    if (n >= MIN_EXPECTED_PER_WINDOW) continue;
    const interval = intervalOf(c, kind);
    const key = INTERVAL_KEY[kind];
    const minWindow = Math.ceil((MIN_EXPECTED_PER_WINDOW * interval) / 1000);
    const maxInterval = Math.floor((c.window.seconds * 1000) / MIN_EXPECTED_PER_WINDOW);
    const text =
      `window.seconds (${c.window.seconds}) and ${key} (${interval}): a window holds ` +
      `${Number(n.toFixed(2))} ${WHAT[kind]}, fewer than the ${MIN_EXPECTED_PER_WINDOW} the alert ` +
      `rules need (a window that is now and then empty makes its series come and go), so ` +
      `${ALERTS[kind]} could never fire; raise window.seconds to at least ${minWindow} or ` +
      `lower ${key} to at most ${maxInterval}`;
    (kind === 'pair' ? refuse : warn).push(text);
  }
  return { refuse, warn };
}
