// @ts-check
// podmesh's web UI: polls the controller's /api/v1/matrix, /api/v1/findings and /api/v1/coverage
// and renders them with plain DOM calls (no framework, no build step, nothing from the internet).
// Data is only ever put into the page as text, never as HTML, since node, zone and server names
// come from the cluster. Tests select on the data-* attributes set here (data-source,
// data-target, data-state, data-finding-kind ...), so keep them stable.

// The shapes it reads are declared once, in src/api/ (zod schemas, types by z.infer): these
// typedefs import them for `npm run typecheck` (tsconfig.ui.json), and vanish at run time.
/**
 * @typedef {import('../api/matrix.ts').Cell} Cell
 * @typedef {import('../api/matrix.ts').DnsCell} DnsCell
 * @typedef {import('../api/matrix.ts').PortCell} PortCell
 * @typedef {import('../api/matrix.ts').Matrix} Matrix
 * @typedef {import('../api/findings.ts').OpenFinding} Finding
 * @typedef {import('../api/findings.ts').FindingsReport} FindingsReport
 * @typedef {import('../api/coverage.ts').AgentCoverage} AgentCoverage
 * @typedef {import('../api/coverage.ts').NodeCoverage} NodeCoverage
 * @typedef {import('../api/demo-faults.ts').DemoFault} DemoFault
 * @typedef {import('../api/demo-faults.ts').DemoFaultState} DemoFaultState
 * @typedef {'ok' | 'warn' | 'bad' | 'nodata' | 'self'} CellState
 * @typedef {{ ok: true, status: number, body: unknown } | { ok: false, status: number,
 *   error: string }} ApiAnswer
 */

const PATH_NETWORKS = /** @type {const} */ ({
  'pod-to-pod': ['pod', 'pod'],
  'pod-to-host': ['pod', 'host'],
  'host-to-pod': ['host', 'pod'],
  'host-to-host': ['host', 'host'],
});
const DNS_QUERY_ORDER = ['service', 'short', 'pod', 'external'];
const DNS_QUERY_LABELS = /** @type {Record<string, string>} */ ({
  service: 'Service FQDN',
  short: 'short name (search list)',
  pod: 'Pod / headless name',
  external: 'external name',
});
const SEVERITY_ORDER = /** @type {Record<string, number>} */ ({ critical: 0, warning: 1, info: 2 });

// Thresholds for the cell state (ok / warn / bad). The colour is continuous; these only sort
// cells into three words a reader and a test can check.
const LOSS_WARN = 0.01;
const LOSS_BAD = 0.2;
const LATENCY_WARN_S = 0.01;
const LATENCY_BAD_S = 0.1;
const DNS_WARN = 0.99;
const DNS_BAD = 0.8;
/**
 * A cell is stale when its newest result (measuredAt) is older than this before the matrix was
 * made: half the default 60 s window, so the cell's numbers describe a past the window is about
 * to forget. A core peer's cell is at most a probe interval old; a rotating peer's (peers.rotation)
 * up to its coverage period, and stale when that period is long (docs/scale.md).
 */
const STALE_AFTER_S = 30;

const params = new URLSearchParams(location.search);
const REFRESH_MS = clamp(Number(params.get('refresh') ?? 3000), 500, 60_000, 3000);

const state = {
  path: pick(params.get('path'), Object.keys(PATH_NETWORKS), 'pod-to-pod'),
  protocol: pick(params.get('protocol'), ['udp', 'icmp', 'tcp'], 'udp'),
  size: pick(params.get('size'), ['small', 'mtu'], 'small'),
  metric: pick(params.get('metric'), ['loss', 'p50', 'p99'], 'loss'),
  dnsQuery: params.get('dnsQuery') ?? '',
  dnsTransport: pick(params.get('dnsTransport'), ['udp', 'tcp'], 'udp'),
  /** @type {Matrix | undefined} */
  matrix: undefined,
  /** @type {FindingsReport | undefined} */
  findings: undefined,
  /** Key of the cell whose numbers the detail box shows, so a refresh keeps it. */
  detailKey: '',
  /** What the findings panel last rendered, so a refresh doesn't collapse what a reader opened. */
  findingsRendered: '',
};

/**
 * @param {number} v @param {number} lo @param {number} hi @param {number} dflt
 * @returns {number}
 */
function clamp(v, lo, hi, dflt) {
  return Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : dflt;
}

/** @param {string | null} v @param {string[]} allowed @param {string} dflt */
function pick(v, allowed, dflt) {
  return v !== null && allowed.includes(v) ? v : dflt;
}

/**
 * Creates an element; attributes starting with "data-" or "aria-" are set as attributes, the
 * rest as properties. Children are text or nodes: text is never parsed as HTML.
 * @param {string} tag
 * @param {Record<string, string | number | boolean | undefined>} [attrs]
 * @param {...(Node | string | null | undefined)} children
 * @returns {HTMLElement}
 */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined) continue;
    if (k.startsWith('data-') || k.startsWith('aria-') || k === 'scope' || k === 'role')
      el.setAttribute(k, String(v));
    else if (k === 'class') el.className = String(v);
    else /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (el))[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

/** @param {string} id @returns {HTMLElement} */
function byId(id) {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page has no #${id}`);
  return el;
}

/** @param {string} id */
function tbodyOf(id) {
  const t = byId(id).querySelector('tbody');
  if (t === null) throw new Error(`#${id} has no tbody`);
  return t;
}

// ---------- formatting ----------

/** @param {number | null | undefined} r */
function pct(r) {
  if (r === null || r === undefined) return '–';
  if (r === 0) return '0%';
  if (r < 0.001) return '<0.1%';
  if (r < 0.1) return `${(r * 100).toFixed(1)}%`;
  return `${Math.round(r * 100)}%`;
}

/** @param {number | null | undefined} s seconds */
function dur(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return '–';
  if (s < 0.001) return `${(s * 1000).toFixed(2)} ms`;
  if (s < 0.01) return `${(s * 1000).toFixed(1)} ms`;
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  return `${s.toFixed(s < 10 ? 2 : 1)} s`;
}

/** @param {string | null | undefined} iso */
function clock(iso) {
  if (iso === null || iso === undefined) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString();
}

/** @param {string | null | undefined} iso */
function ago(iso) {
  if (iso === null || iso === undefined) return 'never';
  const ms = Date.now() - Date.parse(iso);
  if (!Number.isFinite(ms)) return iso;
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

// ---------- colour scales ----------

/** Green → amber → red; log-ish so that 1% loss is already visibly off green. @param {number} r */
function lossColour(r) {
  const t = Math.min(1, Math.log10(1 + 99 * Math.max(0, r)) / 2);
  return `hsl(${Math.round(135 * (1 - t))} 62% ${Math.round(80 - 18 * t)}%)`;
}

// Latency: pale blue (fast) → blue → violet → magenta (slow), over 0.1 ms … 500 ms on a log scale.
const LATENCY_STOPS = [
  [195, 70, 88],
  [215, 70, 76],
  [265, 55, 70],
  [320, 60, 62],
];

/** @param {number} s seconds */
function latencyColour(s) {
  const t = Math.min(1, Math.max(0, (Math.log10(Math.max(s, 1e-4)) + 4) / (4 + Math.log10(0.5))));
  const x = t * (LATENCY_STOPS.length - 1);
  const i = Math.min(LATENCY_STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [LATENCY_STOPS[i] ?? [0, 0, 0], LATENCY_STOPS[i + 1] ?? [0, 0, 0]];
  const mix = (/** @type {number} */ k) =>
    Math.round((a[k] ?? 0) + ((b[k] ?? 0) - (a[k] ?? 0)) * f);
  return `hsl(${mix(0)} ${mix(1)}% ${mix(2)}%)`;
}

// ---------- the matrix heatmap ----------

/**
 * What one heatmap cell says under the chosen metric.
 * @param {Cell | undefined} c
 * @param {string} metric
 * @returns {{ state: CellState, text: string, value?: number, colour?: string }}
 */
function judgeCell(c, metric) {
  if (c === undefined || c.sent === 0) return { state: 'nodata', text: '–' };
  if (metric === 'loss') {
    if (c.lossRatio === null) return { state: 'nodata', text: '–' };
    const r = c.lossRatio;
    const st = r >= LOSS_BAD ? 'bad' : r >= LOSS_WARN ? 'warn' : 'ok';
    return { state: st, text: pct(r), value: r, colour: lossColour(r) };
  }
  const rtt = c.rttSeconds;
  if (rtt === null) {
    // Nothing came back: that's not "no data", it's a path that loses everything.
    if (c.lost > 0) return { state: 'bad', text: 'lost', colour: lossColour(1) };
    return { state: 'nodata', text: '–' };
  }
  const v = metric === 'p50' ? rtt.p50 : rtt.p99;
  const st = v >= LATENCY_BAD_S ? 'bad' : v >= LATENCY_WARN_S ? 'warn' : 'ok';
  return { state: st, text: dur(v), value: v, colour: latencyColour(v) };
}

/**
 * How long before the matrix was made the cell's newest result was sent, in seconds; undefined
 * when the agent doesn't say (rows before measuredAt).
 * @param {Cell} c @param {Matrix} m
 */
function cellAge(c, m) {
  if (c.measuredAt === undefined) return undefined;
  const s = (Date.parse(m.generatedAt) - Date.parse(c.measuredAt)) / 1000;
  return Number.isFinite(s) ? Math.max(0, s) : undefined;
}

/** "measured 12 s before this matrix, rotating peer", or '' without measuredAt. @param {Cell} c @param {Matrix} m */
function ageText(c, m) {
  const age = cellAge(c, m);
  if (age === undefined) return '';
  const peer =
    c.rotating === true
      ? 'rotating peer (visited once a coverage period)'
      : c.rotating === false
        ? 'core peer'
        : '';
  return `measured ${Math.round(age)} s before this matrix${age > STALE_AFTER_S ? ' (stale)' : ''}${peer !== '' ? `; ${peer}` : ''}`;
}

/** @param {Cell} c @param {Matrix} m */
function cellTooltip(c, m) {
  const age = ageText(c, m);
  const lines = [
    `${c.sourceNode} (${c.sourceNetwork}) → ${c.targetNode} (${c.targetNetwork})`,
    `${c.path} · ${c.scope} · ${c.protocol} ${c.size}`,
    ...(age !== '' ? [age] : []),
    `sent ${c.sent}, lost ${c.lost} (${pct(c.lossRatio)}); forward lost ${c.forwardLost}, reverse lost ${c.reverseLost}`,
  ];
  if (c.rttSeconds !== null) {
    const r = c.rttSeconds;
    lines.push(
      `rtt min ${dur(r.min)} · p50 ${dur(r.p50)} · p90 ${dur(r.p90)} · p99 ${dur(r.p99)} · max ${dur(r.max)}`,
    );
  } else lines.push('rtt: no answers');
  lines.push(c.lastFailure === null ? 'last failure: none' : `last failure: ${c.lastFailure}`);
  return lines.join('\n');
}

/**
 * Cloud node names share a long domain ("ip-10-0-1-17.eu-west-1.compute.internal"); the headers
 * drop what all nodes have in common after a dot, so the part that tells them apart shows.
 * @param {readonly string[]} nodes
 * @returns {{ label: (n: string) => string, suffix: string }}
 */
function shortener(nodes) {
  const same = { label: (/** @type {string} */ n) => n, suffix: '' };
  if (nodes.length < 2) return same;
  let common = nodes[0] ?? '';
  for (const n of nodes) while (common !== '' && !n.endsWith(common)) common = common.slice(1);
  const dot = common.indexOf('.');
  if (dot < 0) return same;
  const suffix = common.slice(dot);
  if (nodes.some((n) => n.length <= suffix.length)) return same;
  return { label: (n) => (n.endsWith(suffix) ? n.slice(0, -suffix.length) : n), suffix };
}

/** @param {Matrix} m @param {string} node @param {string} network */
function agentOf(m, node, network) {
  return m.agents.find((a) => a.node === node && a.network === network);
}

/** Nodes named by findings, to flag their row and column headers. */
function flaggedNodes() {
  /** @type {Map<string, string[]>} */
  const out = new Map();
  for (const f of state.findings?.findings ?? [])
    if (f.severity !== 'info')
      for (const n of f.nodes ?? []) out.set(n, [...(out.get(n) ?? []), f.title]);
  return out;
}

/**
 * A row or column header: the node name, its zone, and its agent's state when not answering.
 * @param {Matrix} m @param {string} node @param {string} network @param {'row' | 'col'} scope
 * @param {Map<string, string[]>} flagged @param {(n: string) => string} label
 */
function nodeHeader(m, node, network, scope, flagged, label) {
  const agent = agentOf(m, node, network);
  const zone = m.zones[node] ?? '';
  const notes = flagged.get(node);
  const th = h(
    'th',
    {
      scope,
      class: `node-head${notes !== undefined ? ' flagged' : ''}`,
      'data-node': node,
      'data-network': network,
      'data-agent-state': agent?.state ?? 'unknown',
      title: [
        `${node} (${network} agent)`,
        zone !== '' ? `zone ${zone}` : '',
        agent === undefined ? 'no such agent' : `agent: ${agent.state}`,
        ...(notes ?? []).map((t) => `finding: ${t}`),
      ]
        .filter((s) => s !== '')
        .join('\n'),
    },
    h('span', { class: 'node-name' }, notes !== undefined ? '⚠ ' : '', label(node)),
  );
  if (zone !== '') th.append(h('span', { class: 'node-zone' }, zone));
  if (agent !== undefined && agent.state !== 'ok')
    th.append(h('span', { class: 'agent-badge' }, agent.state));
  return th;
}

function renderMatrix() {
  const m = state.matrix;
  if (m === undefined) return;
  const [srcNet, dstNet] = PATH_NETWORKS[/** @type {keyof typeof PATH_NETWORKS} */ (state.path)];
  updateMatrixOptions(m);
  /** @type {Map<string, Cell>} */
  const index = new Map();
  for (const c of m.cells)
    if (c.path === state.path && c.protocol === state.protocol && c.size === state.size)
      index.set(`${c.sourceNode}|${c.targetNode}`, c);
  const flagged = flaggedNodes();
  const short = shortener(m.nodes);

  const table = byId('matrix');
  table.classList.toggle('dense', m.nodes.length > 10);
  // Past a dozen or so nodes the heatmap needs the page's whole width; findings go above it.
  document.querySelector('main')?.classList.toggle('stacked', m.nodes.length > 14);
  const head = h('tr', {}, h('th', { scope: 'col', class: 'corner' }, 'from ↓ / to →'));
  for (const t of m.nodes) head.append(nodeHeader(m, t, dstNet, 'col', flagged, short.label));
  const thead = table.querySelector('thead');
  thead?.replaceChildren(head);

  const counts = { ok: 0, warn: 0, bad: 0, nodata: 0, stale: 0 };
  const rows = [];
  for (const s of m.nodes) {
    const tr = h('tr', { 'data-source': s, 'data-source-network': srcNet });
    tr.append(nodeHeader(m, s, srcNet, 'row', flagged, short.label));
    for (const t of m.nodes) {
      const self = srcNet === dstNet && s === t;
      const c = index.get(`${s}|${t}`);
      const key = `${s}|${t}`;
      const j = self ? { state: 'self', text: '' } : judgeCell(c, state.metric);
      if (!self) counts[/** @type {'ok' | 'warn' | 'bad' | 'nodata'} */ (j.state)]++;
      const age = c !== undefined && !self ? cellAge(c, m) : undefined;
      const stale = age !== undefined && age > STALE_AFTER_S && j.state !== 'nodata';
      if (stale) counts.stale++;
      const td = h(
        'td',
        {
          class: `cell state-${j.state}${stale ? ' stale' : ''}`,
          'data-age': age !== undefined ? Math.round(age) : undefined,
          'data-stale': stale ? 'true' : undefined,
          'data-rotating': c?.rotating !== undefined && !self ? String(c.rotating) : undefined,
          'data-source': s,
          'data-target': t,
          'data-source-network': srcNet,
          'data-target-network': dstNet,
          'data-state': j.state,
          'data-value': 'value' in j ? j.value : undefined,
          'data-key': key,
          tabIndex: self ? -1 : 0,
          title: self
            ? `${s} (${srcNet}) to itself: not measured`
            : c !== undefined
              ? cellTooltip(c, m)
              : `${s} (${srcNet}) → ${t} (${dstNet}): no data for ${state.protocol} ${state.size}`,
        },
        j.text,
      );
      if ('colour' in j && j.colour !== undefined) td.style.backgroundColor = j.colour;
      tr.append(td);
    }
    rows.push(tr);
  }
  table.querySelector('tbody')?.replaceChildren(...rows);
  const metricName = state.metric === 'loss' ? 'loss' : `latency ${state.metric}`;
  byId('matrix-caption').textContent =
    `${metricName} from ${srcNet} agents (rows) to ${dstNet} agents (columns), ${state.protocol} ${state.size} probes`;
  const total = counts.ok + counts.warn + counts.bad + counts.nodata;
  const summary = byId('matrix-summary');
  summary.replaceChildren(
    `${total} pairs (${state.path}, ${state.protocol} ${state.size}, ${metricName}): `,
    h('span', { class: 'count count-ok' }, `${counts.ok} ok`),
    ' · ',
    h('span', { class: 'count count-warn' }, `${counts.warn} degraded`),
    ' · ',
    h('span', { class: 'count count-bad' }, `${counts.bad} failing`),
    ' · ',
    h('span', { class: 'count count-nodata' }, `${counts.nodata} no data`),
    counts.stale > 0 ? h('span', { class: 'count count-stale' }, ` (${counts.stale} stale)`) : '',
    short.suffix !== ''
      ? h('span', { class: 'suffix-note' }, ` (names without "${short.suffix}")`)
      : '',
  );
  summary.dataset['ok'] = String(counts.ok);
  summary.dataset['bad'] = String(counts.bad);
  renderLegend();
  renderDetail();
}

/** Marks protocol and size choices that have no data at all in this matrix. @param {Matrix} m */
function updateMatrixOptions(m) {
  const present = new Set(m.cells.map((c) => `${c.path}|${c.protocol}|${c.size}`));
  const mark = (/** @type {string} */ id, /** @type {(v: string) => boolean} */ has) => {
    const sel = /** @type {HTMLSelectElement} */ (byId(id));
    for (const o of sel.options) {
      const base = o.dataset['label'] ?? o.text;
      o.dataset['label'] = base;
      o.text = has(o.value) ? base : `${base} (no data)`;
    }
  };
  mark('sel-path', (v) => [...present].some((k) => k.startsWith(`${v}|`)));
  mark('sel-protocol', (v) => present.has(`${state.path}|${v}|${state.size}`));
  mark('sel-size', (v) => present.has(`${state.path}|${state.protocol}|${v}`));
}

function renderLegend() {
  const legend = byId('matrix-legend');
  /** @type {(HTMLElement | string)[]} */
  const items = [];
  if (state.metric === 'loss') {
    for (const r of [0, 0.01, 0.05, 0.2, 0.5, 1]) items.push(swatch(lossColour(r), pct(r)));
    items.push(
      h(
        'span',
        { class: 'legend-note' },
        `ok < ${pct(LOSS_WARN)} ≤ degraded < ${pct(LOSS_BAD)} ≤ failing`,
      ),
    );
  } else {
    for (const s of [0.0001, 0.001, 0.01, 0.1, 1]) items.push(swatch(latencyColour(s), dur(s)));
    items.push(
      h(
        'span',
        { class: 'legend-note' },
        `ok < ${dur(LATENCY_WARN_S)} ≤ degraded < ${dur(LATENCY_BAD_S)} ≤ failing; "lost": nothing answered`,
      ),
    );
  }
  items.push(
    swatch('', 'no data', 'swatch-nodata'),
    swatch('', 'self', 'swatch-self'),
    swatch('', `stale (measured over ${STALE_AFTER_S} s ago)`, 'swatch-stale'),
  );
  legend.replaceChildren(...items);
}

/** @param {string} colour @param {string} label @param {string} [cls] */
function swatch(colour, label, cls = '') {
  const box = h('span', { class: `swatch ${cls}`, 'aria-hidden': 'true' });
  if (colour !== '') box.style.backgroundColor = colour;
  return h('span', { class: 'legend-item' }, box, label);
}

/** The numbers of the cell last hovered or focused, kept across refreshes. */
function renderDetail() {
  const box = byId('cell-detail');
  const m = state.matrix;
  if (m === undefined || state.detailKey === '') return;
  const [s, t] = state.detailKey.split('|');
  const c = m.cells.find(
    (x) =>
      x.sourceNode === s &&
      x.targetNode === t &&
      x.path === state.path &&
      x.protocol === state.protocol &&
      x.size === state.size,
  );
  if (c === undefined) {
    box.replaceChildren(
      h(
        'p',
        { class: 'muted' },
        `${s} → ${t}: no data for ${state.path} ${state.protocol} ${state.size}.`,
      ),
    );
    return;
  }
  const r = c.rttSeconds;
  /** @type {[string, string][]} */
  const rows = [
    ['pair', `${c.sourceNode} (${c.sourceNetwork}) → ${c.targetNode} (${c.targetNetwork})`],
    ['probe', `${c.path} · ${c.scope} · ${c.protocol} ${c.size}`],
    ...(c.measuredAt !== undefined
      ? /** @type {[string, string][]} */ ([
          ['measured', `${clock(c.measuredAt)} (${ageText(c, m)})`],
        ])
      : []),
    ['sent / lost', `${c.sent} / ${c.lost} (${pct(c.lossRatio)})`],
    ['forward / reverse lost', `${c.forwardLost} / ${c.reverseLost}`],
    [
      'rtt',
      r === null
        ? 'no answers'
        : `min ${dur(r.min)} · p50 ${dur(r.p50)} · p90 ${dur(r.p90)} · p99 ${dur(r.p99)} · max ${dur(r.max)}`,
    ],
    [
      'last failure',
      // The closed reason of the last failure (timeout, refused ...): the cell has no time of it.
      c.lastFailure === null ? 'none' : c.lastFailure,
    ],
  ];
  const dl = h('dl', { class: 'detail-list' });
  for (const [k, v] of rows) dl.append(h('dt', {}, k), h('dd', {}, v));
  box.replaceChildren(dl);
}

/** @param {Event} ev */
function onCellPointed(ev) {
  const target = /** @type {HTMLElement | null} */ (ev.target);
  const td = target?.closest('td.cell');
  if (!(td instanceof HTMLElement) || td.dataset['state'] === 'self') return;
  const key = td.dataset['key'] ?? '';
  if (key === state.detailKey) return;
  state.detailKey = key;
  renderDetail();
}

// ---------- findings ----------

/**
 * @param {'waiting' | 'unavailable' | 'error'} kind
 * @param {string} text
 */
function findingsMessage(kind, text) {
  const box = byId('findings');
  const key = `${kind}:${text}`;
  if (state.findingsRendered === key) return;
  state.findingsRendered = key;
  box.dataset['state'] = kind;
  box.dataset['count'] = '0';
  box.replaceChildren(h('p', { class: `findings-${kind} muted` }, text));
  byId('findings-meta').textContent = '';
}

/** @param {FindingsReport} report */
function renderFindings(report) {
  state.findings = report;
  const list = Array.isArray(report.findings) ? [...report.findings] : [];
  list.sort(
    (a, b) =>
      (SEVERITY_ORDER[a.severity] ?? 3) - (SEVERITY_ORDER[b.severity] ?? 3) ||
      b.confidence - a.confidence ||
      a.id.localeCompare(b.id),
  );
  byId('findings-meta').textContent =
    report.matrixAt !== null && report.matrixAt !== undefined
      ? `from the matrix at ${clock(report.matrixAt)}`
      : '';
  const key = JSON.stringify(list);
  if (state.findingsRendered === key) return;
  state.findingsRendered = key;
  const box = byId('findings');
  box.dataset['count'] = String(list.length);
  if (list.length === 0) {
    box.dataset['state'] = 'none';
    box.replaceChildren(
      h(
        'div',
        { class: 'no-findings' },
        h('span', { class: 'check', 'aria-hidden': 'true' }, '✓'),
        h('p', {}, h('strong', {}, 'No findings.'), ' Every check triage looks at is healthy.'),
      ),
    );
    return;
  }
  box.dataset['state'] = 'some';
  const ol = h('ol', { class: 'findings-list' });
  for (const f of list) ol.append(findingItem(f));
  box.replaceChildren(ol);
}

/** @param {Finding} f */
function findingItem(f) {
  const li = h('li', {
    class: `finding severity-${f.severity}`,
    'data-finding-id': f.id,
    'data-finding-kind': f.kind,
    'data-severity': f.severity,
  });
  li.append(
    h(
      'div',
      { class: 'finding-head' },
      h('span', { class: `severity-badge severity-${f.severity}` }, f.severity),
      h('h3', { class: 'finding-title' }, f.title),
    ),
    h(
      'p',
      { class: 'finding-meta muted' },
      `${f.kind} · ${f.subject} · confidence ${pct(f.confidence)}` +
        (f.since !== undefined ? ` · open since ${clock(f.since)}` : ''),
    ),
    h('p', { class: 'finding-summary' }, f.summary),
  );
  const evidence = f.evidence ?? [];
  if (evidence.length > 0) {
    const ul = h('ul', { class: 'evidence' });
    for (const e of evidence) ul.append(h('li', {}, e.text));
    li.append(
      h(
        'details',
        { class: 'evidence-box', open: evidence.length <= 6 },
        h('summary', {}, `Evidence (${evidence.length})`),
        ul,
      ),
    );
  }
  // What the controller saw change on the finding's nodes and namespaces around its start.
  const changes = f.changes ?? [];
  if (changes.length > 0) {
    const ul = h('ul', { class: 'changes' });
    for (const c of changes)
      ul.append(h('li', { 'data-change-kind': c.kind }, `${clock(c.at)} ${c.detail}`));
    li.append(
      h(
        'details',
        { class: 'changes-box', open: true },
        h('summary', {}, `What changed around its start (${changes.length})`),
        ul,
      ),
    );
  }
  const steps = f.nextSteps ?? [];
  if (steps.length > 0) {
    const ol = h('ol', { class: 'next-steps' });
    for (const s of steps) {
      const item = h('li', {}, h('p', {}, s.text));
      if (s.command !== undefined && s.command !== '') {
        const code = h('code', { class: 'command' }, s.command);
        const button = h(
          'button',
          { type: 'button', class: 'copy', 'data-command': s.command, title: 'Copy the command' },
          'Copy',
        );
        item.append(h('div', { class: 'command-row' }, h('pre', {}, code), button));
      }
      ol.append(item);
    }
    li.append(h('h4', { class: 'next-steps-title' }, 'Next steps'), ol);
  }
  return li;
}

/** Copies a next step's command; falls back to selecting it where the Clipboard API is off (plain http). @param {Event} ev */
function onCopy(ev) {
  const target = /** @type {HTMLElement | null} */ (ev.target);
  const button = target?.closest('button.copy');
  if (!(button instanceof HTMLButtonElement)) return;
  const text = button.dataset['command'] ?? '';
  const done = (/** @type {string} */ label) => {
    button.textContent = label;
    setTimeout(() => (button.textContent = 'Copy'), 1500);
  };
  const fallback = () => {
    const code = button.parentElement?.querySelector('code');
    if (code === null || code === undefined) return done('Select it');
    const range = document.createRange();
    range.selectNodeContents(code);
    const sel = window.getSelection();
    sel?.removeAllRanges();
    sel?.addRange(range);
    // execCommand is deprecated but still the only copy path outside a secure context.
    done(document.execCommand('copy') ? 'Copied' : 'Selected');
  };
  if (navigator.clipboard !== undefined && window.isSecureContext)
    navigator.clipboard.writeText(text).then(() => done('Copied'), fallback);
  else fallback();
}

// ---------- DNS ----------

function renderDns() {
  const m = state.matrix;
  if (m === undefined) return;
  const querySel = /** @type {HTMLSelectElement} */ (byId('sel-dns-query'));
  const queries = [...new Set(m.dns.map((d) => d.query))].sort(
    (a, b) => rank(DNS_QUERY_ORDER, a) - rank(DNS_QUERY_ORDER, b) || a.localeCompare(b),
  );
  if (!queries.includes(state.dnsQuery)) state.dnsQuery = queries[0] ?? '';
  const wanted = queries.join('|');
  if (querySel.dataset['queries'] !== wanted) {
    querySel.dataset['queries'] = wanted;
    querySel.replaceChildren(
      ...queries.map((q) => h('option', { value: q }, DNS_QUERY_LABELS[q] ?? q)),
    );
  }
  querySel.value = state.dnsQuery;
  // As plain strings: the select's option values are checked against it.
  /** @type {Set<string>} */
  const transports = new Set(
    m.dns.filter((d) => d.query === state.dnsQuery).map((d) => d.transport),
  );
  const trSel = /** @type {HTMLSelectElement} */ (byId('sel-dns-transport'));
  for (const o of trSel.options) {
    o.disabled = !transports.has(o.value);
    o.text = `${o.value.toUpperCase()}${transports.has(o.value) ? '' : ' (not checked)'}`;
  }
  if (!transports.has(state.dnsTransport) && transports.size > 0)
    state.dnsTransport = transports.has('udp') ? 'udp' : ([...transports][0] ?? 'udp');
  trSel.value = state.dnsTransport;

  const table = byId('dns-matrix');
  const summary = byId('dns-summary');
  const short = shortener(m.nodes);
  byId('dns-controls').hidden = m.dns.length === 0;
  if (m.dns.length === 0) {
    table.querySelector('thead')?.replaceChildren();
    table.querySelector('tbody')?.replaceChildren();
    summary.textContent =
      'No DNS checks in this matrix (DNS probing is off, or no agent has run one yet).';
    return;
  }
  const cells = m.dns.filter(
    (d) => d.query === state.dnsQuery && d.transport === state.dnsTransport,
  );
  /** @type {Map<string, { kind: string, server: string }>} */
  const servers = new Map();
  for (const d of m.dns)
    servers.set(`${d.serverKind}/${d.server}`, { kind: d.serverKind, server: d.server });
  const cols = [...servers.values()].sort(
    (a, b) =>
      (a.kind === 'service' ? 0 : 1) - (b.kind === 'service' ? 0 : 1) ||
      a.server.localeCompare(b.server),
  );
  const sources = [...new Set(m.dns.map((d) => `${d.sourceNode}|${d.sourceNetwork}`))].sort();
  /** @type {Map<string, DnsCell>} */
  const index = new Map();
  for (const d of cells)
    index.set(`${d.sourceNode}|${d.sourceNetwork}|${d.serverKind}/${d.server}`, d);

  const head = h('tr', {}, h('th', { scope: 'col', class: 'corner' }, 'agent ↓ / server →'));
  for (const c of cols)
    head.append(
      h(
        'th',
        {
          scope: 'col',
          class: 'node-head',
          'data-server': c.server,
          'data-server-kind': c.kind,
        },
        h(
          'span',
          { class: 'node-name', title: c.server },
          c.kind === 'service' ? 'Service VIP' : short.label(c.server),
        ),
        h('span', { class: 'node-zone' }, c.kind === 'service' ? 'via resolv.conf' : 'replica'),
      ),
    );
  table.querySelector('thead')?.replaceChildren(head);
  const counts = { ok: 0, warn: 0, bad: 0, nodata: 0, stale: 0 };
  const rows = [];
  for (const src of sources) {
    const [node = '', network = ''] = src.split('|');
    const tr = h(
      'tr',
      { 'data-source': node, 'data-source-network': network },
      h(
        'th',
        { scope: 'row', class: 'node-head' },
        h('span', { class: 'node-name', title: node }, short.label(node)),
        h('span', { class: 'node-zone' }, `${network} agent`),
      ),
    );
    for (const c of cols) {
      const d = index.get(`${src}|${c.kind}/${c.server}`);
      const j = judgeDns(d);
      counts[j.state]++;
      const td = h(
        'td',
        {
          class: `cell state-${j.state}`,
          'data-source': node,
          'data-source-network': network,
          'data-server': c.server,
          'data-server-kind': c.kind,
          'data-state': j.state,
          'data-value': d?.answeredRatio ?? undefined,
          tabIndex: 0,
          title: d !== undefined ? dnsTooltip(d) : `${node} (${network}) → ${c.server}: no data`,
        },
        h('span', { class: 'cell-main' }, j.text),
      );
      if (d?.latencySeconds)
        td.append(h('span', { class: 'cell-sub' }, `p99 ${dur(d.latencySeconds.p99)}`));
      if (j.colour !== undefined) td.style.backgroundColor = j.colour;
      tr.append(td);
    }
    rows.push(tr);
  }
  table.querySelector('tbody')?.replaceChildren(...rows);
  const names = [...new Set(cells.map((d) => d.name))];
  summary.replaceChildren(
    `Answered ratio and p99 latency of "${state.dnsQuery}" lookups over ${state.dnsTransport.toUpperCase()}`,
    names.length === 1 ? ` (${names[0]})` : names.length > 1 ? ` (${names.length} names)` : '',
    ': ',
    h('span', { class: 'count count-ok' }, `${counts.ok} ok`),
    ' · ',
    h('span', { class: 'count count-warn' }, `${counts.warn} degraded`),
    ' · ',
    h('span', { class: 'count count-bad' }, `${counts.bad} failing`),
    ' · ',
    h('span', { class: 'count count-nodata' }, `${counts.nodata} no data`),
  );
}

/** @param {string[]} order @param {string} v */
function rank(order, v) {
  const i = order.indexOf(v);
  return i < 0 ? order.length : i;
}

/**
 * @param {DnsCell | undefined} d
 * @returns {{ state: 'ok' | 'warn' | 'bad' | 'nodata', text: string, colour?: string }}
 */
function judgeDns(d) {
  if (d === undefined || d.sent === 0 || d.answeredRatio === null)
    return { state: 'nodata', text: '–' };
  const r = d.answeredRatio;
  const st = r >= DNS_WARN ? 'ok' : r >= DNS_BAD ? 'warn' : 'bad';
  return { state: st, text: pct(r), colour: lossColour(1 - r) };
}

/** @param {DnsCell} d */
function dnsTooltip(d) {
  const outcomes = Object.entries(d.outcomes ?? {})
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return [
    `${d.sourceNode} (${d.sourceNetwork}) → ${d.serverKind === 'service' ? 'Service VIP' : `replica ${d.server}`}`,
    `${d.query}: ${d.name} over ${d.transport}`,
    `sent ${d.sent}, failed ${d.failed}, answered ${pct(d.answeredRatio)}`,
    `outcomes: ${outcomes === '' ? 'none' : outcomes}`,
    d.latencySeconds !== null
      ? `latency p50 ${dur(d.latencySeconds.p50)} · p99 ${dur(d.latencySeconds.p99)} · max ${dur(d.latencySeconds.max)}`
      : 'latency: no answers',
    `last outcome: ${d.lastOutcome ?? '–'}${d.lastDetail ? ` (${d.lastDetail})` : ''}`,
  ].join('\n');
}

// ---------- ports ----------

function renderPorts() {
  const m = state.matrix;
  if (m === undefined) return;
  const tbody = tbodyOf('ports');
  const table = byId('ports');
  byId('ports-empty').hidden = m.ports.length > 0;
  table.hidden = m.ports.length === 0;
  const sorted = [...m.ports].sort(
    (a, b) =>
      a.target.localeCompare(b.target) ||
      a.sourceNode.localeCompare(b.sourceNode) ||
      a.sourceNetwork.localeCompare(b.sourceNetwork),
  );
  tbody.replaceChildren(
    ...sorted.map((p) => {
      const st = judgePort(p);
      return h(
        'tr',
        {
          class: `state-row-${st.state}`,
          'data-source': p.sourceNode,
          'data-source-network': p.sourceNetwork,
          'data-target': p.target,
          'data-state': st.state,
        },
        h('td', {}, `${p.sourceNode} (${p.sourceNetwork})`),
        h('td', {}, p.target),
        h('td', { class: 'mono' }, `${p.address}:${p.port}`),
        h('td', {}, p.expected),
        h('td', {}, p.sent === 0 ? '–' : `${p.open} of ${p.sent} (${pct(p.openRatio)})`),
        h(
          'td',
          { title: outcomesText(p.outcomes) },
          `${p.lastOutcome ?? '–'}${p.lastDetail ? ` (${p.lastDetail})` : ''}`,
        ),
        h('td', {}, h('span', { class: `badge badge-${st.state}` }, st.text)),
      );
    }),
  );
}

/** @param {PortCell} p @returns {{ state: 'ok' | 'warn' | 'bad' | 'nodata', text: string }} */
function judgePort(p) {
  if (p.sent === 0 || p.openRatio === null) return { state: 'nodata', text: 'no data' };
  const good = p.expected === 'open' ? p.openRatio : 1 - p.openRatio;
  if (good >= 0.99)
    return { state: 'ok', text: p.expected === 'open' ? 'open' : 'closed, as expected' };
  if (p.expected === 'closed') return { state: 'bad', text: 'open, expected closed' };
  return good >= 0.8
    ? { state: 'warn', text: 'sometimes fails' }
    : { state: 'bad', text: 'not open' };
}

/** @param {Record<string, number> | undefined} o */
function outcomesText(o) {
  const parts = Object.entries(o ?? {})
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`);
  return parts.length === 0 ? 'no outcomes yet' : `outcomes: ${parts.join(', ')}`;
}

// ---------- agents and coverage ----------

function renderAgents() {
  const m = state.matrix;
  if (m === undefined) return;
  const down = m.agents.filter((a) => a.state !== 'ok').length;
  byId('agents-meta').textContent =
    `${m.agents.length} agents: ${m.agents.length - down} answering` +
    (down > 0 ? `, ${down} not answering` : '');
  tbodyOf('agents').replaceChildren(
    ...m.agents.map((a) => {
      const self = a.self;
      const late = self?.lateRatio ?? null;
      const health =
        self === undefined
          ? '–'
          : `late ${pct(late)} · lateness p99 ${dur(self.latenessP99Seconds)} · event loop p99 ${dur(self.eventLoopP99Seconds?.main)} / ${dur(self.eventLoopP99Seconds?.engine)}`;
      return h(
        'tr',
        {
          class: `state-row-${a.state === 'ok' ? 'ok' : 'bad'}`,
          'data-node': a.node,
          'data-network': a.network,
          'data-state': a.state,
        },
        h('th', { scope: 'row' }, a.node),
        h('td', {}, a.zone === '' ? '–' : a.zone),
        h('td', {}, a.network),
        h(
          'td',
          {},
          h(
            'span',
            { class: `badge badge-${a.state === 'ok' ? 'ok' : 'bad'}` },
            a.state === 'ok' ? 'answering' : a.state,
          ),
        ),
        h('td', { title: a.lastSeen ?? '' }, a.lastSeen === null ? 'never' : ago(a.lastSeen)),
        h('td', { class: late !== null && late > 0.05 ? 'warn-text' : '' }, health),
        h('td', { class: 'detail-text' }, a.detail ?? a.url),
      );
    }),
  );
}

/** @param {NodeCoverage[] | null} nodes */
function renderCoverage(nodes) {
  const table = byId('coverage');
  byId('coverage-unknown').hidden = nodes !== null;
  table.hidden = nodes === null;
  if (nodes === null) return;
  const cov = (/** @type {AgentCoverage} */ c) =>
    h(
      'td',
      { 'data-covered': String(c.covered), title: c.detail },
      h('span', { class: `badge badge-${c.covered ? 'ok' : 'bad'}` }, c.reason),
      c.detail !== '' && !c.covered ? h('span', { class: 'detail-text' }, ` ${c.detail}`) : null,
    );
  tbodyOf('coverage').replaceChildren(
    ...nodes.map((n) =>
      h(
        'tr',
        {
          'data-node': n.node,
          'data-state': n.pod.covered && n.host.covered ? 'ok' : 'bad',
        },
        h('th', { scope: 'row' }, n.node),
        cov(n.pod),
        cov(n.host),
      ),
    ),
  );
}

// ---------- header, banners, polling ----------

/** @param {string} text */
function showError(text) {
  const b = byId('error-banner');
  b.textContent = text;
  b.hidden = false;
  document.body.dataset['stale'] = 'true';
  byId('status-dot').dataset['state'] = 'error';
}

function clearError() {
  byId('error-banner').hidden = true;
  delete document.body.dataset['stale'];
}

/** @param {string} text */
function showInfo(text) {
  const b = byId('info-banner');
  b.textContent = text;
  b.hidden = text === '';
}

/** @param {string} url @returns {Promise<ApiAnswer>} */
async function getJson(url) {
  const res = await fetch(url, { cache: 'no-store', headers: { accept: 'application/json' } });
  const text = await res.text();
  /** @type {unknown} */
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    return { ok: false, status: res.status, error: `not JSON (HTTP ${res.status})` };
  }
  if (!res.ok) {
    const msg =
      typeof body === 'object' && body !== null && 'error' in body ? String(body.error) : '';
    return { ok: false, status: res.status, error: msg || `HTTP ${res.status}` };
  }
  return { ok: true, status: res.status, body };
}

/** @param {unknown} body @returns {body is Matrix} */
function looksLikeMatrix(body) {
  if (typeof body !== 'object' || body === null) return false;
  const b = /** @type {Record<string, unknown>} */ (body);
  return (
    Array.isArray(b['cells']) &&
    Array.isArray(b['nodes']) &&
    Array.isArray(b['agents']) &&
    typeof b['zones'] === 'object'
  );
}

function renderHeader() {
  const m = state.matrix;
  if (m === undefined) return;
  const t = byId('last-update');
  t.textContent = clock(m.generatedAt);
  t.setAttribute('datetime', m.generatedAt);
  byId('last-update-ago').textContent = `(${ago(m.generatedAt)})`;
  const findings = state.findings?.findings ?? [];
  const critical = findings.filter((f) => f.severity === 'critical').length;
  const down = m.agents.filter((a) => a.state !== 'ok').length;
  byId('overview').textContent =
    `${m.nodes.length} nodes · ${m.agents.length} agents${down > 0 ? ` (${down} not answering)` : ''}` +
    (state.findings !== undefined
      ? ` · ${findings.length} finding${findings.length === 1 ? '' : 's'}${critical > 0 ? ` (${critical} critical)` : ''}`
      : '');
}

/** Renders everything that depends on the matrix (or on the selections). */
function renderAll() {
  renderMatrix();
  renderDns();
  renderPorts();
  renderAgents();
  renderHeader();
}

async function refresh() {
  /** @type {string[]} */
  const problems = [];
  const [mRes, fRes, cRes] = await Promise.allSettled([
    getJson('/api/v1/matrix'),
    getJson('/api/v1/findings'),
    getJson('/api/v1/coverage'),
  ]);
  const unreachable = [mRes, fRes, cRes].find((r) => r.status === 'rejected');
  if (unreachable !== undefined) {
    const since =
      state.matrix !== undefined ? ` Showing data from ${clock(state.matrix.generatedAt)}.` : '';
    showError(
      `Cannot reach the podmesh controller at ${location.origin} (${String(/** @type {PromiseRejectedResult} */ (unreachable).reason)}); retrying every ${REFRESH_MS / 1000} s.${since}`,
    );
    return;
  }
  const m = /** @type {PromiseFulfilledResult<ApiAnswer>} */ (mRes).value;
  const f = /** @type {PromiseFulfilledResult<ApiAnswer>} */ (fRes).value;
  const c = /** @type {PromiseFulfilledResult<ApiAnswer>} */ (cRes).value;

  if (m.ok && looksLikeMatrix(m.body)) {
    state.matrix = m.body;
    showInfo('');
  } else if (!m.ok && m.status === 503) {
    showInfo(`Waiting for the controller's first collection round: ${m.error}.`);
  } else {
    problems.push(`/api/v1/matrix: ${m.ok ? 'not a matrix' : m.error}`);
  }

  if (f.ok && typeof f.body === 'object' && f.body !== null && 'findings' in f.body) {
    const report = /** @type {FindingsReport} */ (f.body);
    if (report.triage === false) {
      state.findings = undefined;
      findingsMessage(
        'unavailable',
        'This controller runs without triage, so it reports no findings.',
      );
    } else renderFindings(report);
  } else if (!f.ok && f.status === 404)
    findingsMessage('unavailable', 'This controller does not report findings (no triage).');
  else if (!f.ok && f.status === 503)
    findingsMessage('waiting', 'Triage runs after the first collection round.');
  else {
    findingsMessage(
      'error',
      `Findings could not be read: ${f.ok ? 'not a findings report' : f.error}.`,
    );
    problems.push(`/api/v1/findings: ${f.ok ? 'not a findings report' : f.error}`);
  }

  if (c.ok && typeof c.body === 'object' && c.body !== null && 'nodes' in c.body)
    renderCoverage(/** @type {NodeCoverage[] | null} */ (c.body.nodes));
  else problems.push(`/api/v1/coverage: ${c.ok ? 'not a coverage report' : c.error}`);

  if (problems.length > 0)
    showError(`The controller answered with errors: ${problems.join('; ')}.`);
  else clearError();
  if (state.matrix !== undefined) {
    renderAll();
    if (problems.length === 0) byId('status-dot').dataset['state'] = 'ok';
  }
  document.body.dataset['loaded'] = 'true';
}

async function loop() {
  try {
    await refresh();
  } catch (e) {
    // A rendering bug must not stop the polling; say it where a reader will see it.
    showError(`The UI failed to render the controller's data: ${String(e)}`);
    console.error(e);
  }
  setTimeout(() => void loop(), REFRESH_MS);
}

function syncUrl() {
  const p = new URLSearchParams(location.search);
  p.set('path', state.path);
  p.set('protocol', state.protocol);
  p.set('size', state.size);
  p.set('metric', state.metric);
  if (state.dnsQuery !== '') p.set('dnsQuery', state.dnsQuery);
  p.set('dnsTransport', state.dnsTransport);
  history.replaceState(null, '', `${location.pathname}?${p.toString()}`);
}

function wire() {
  /** @type {[string, 'path' | 'protocol' | 'size' | 'metric' | 'dnsQuery' | 'dnsTransport'][]} */
  const selects = [
    ['sel-path', 'path'],
    ['sel-protocol', 'protocol'],
    ['sel-size', 'size'],
    ['sel-metric', 'metric'],
    ['sel-dns-query', 'dnsQuery'],
    ['sel-dns-transport', 'dnsTransport'],
  ];
  for (const [id, key] of selects) {
    const sel = /** @type {HTMLSelectElement} */ (byId(id));
    if (key !== 'dnsQuery') sel.value = state[key];
    sel.addEventListener('change', () => {
      state[key] = sel.value;
      syncUrl();
      if (state.matrix !== undefined) renderAll();
    });
  }
  const matrix = byId('matrix');
  matrix.addEventListener('mouseover', onCellPointed);
  matrix.addEventListener('focusin', onCellPointed);
  byId('findings').addEventListener('click', onCopy);
  for (const form of document.querySelectorAll('form'))
    form.addEventListener('submit', (e) => e.preventDefault());
}

// ---------- the demo's fault menu ----------
// Shown only when the controller answers GET /api/v1/demo/faults, which only `podmesh demo`'s
// does. Each action POSTs the whole set of faults wanted (src/api/demo-faults.ts).

/** @type {DemoFaultState | undefined} */
let demoFaults;

/** @param {DemoFault} f @returns {string} */
function faultSubject(f) {
  return f.kind === 'loss' || f.kind === 'mtu'
    ? f.node
    : f.kind === 'dns-servfail'
      ? f.replica
      : f.target;
}

/** @param {DemoFault} f @returns {string} */
function faultText(f) {
  if (f.kind === 'loss') return `${f.percent}% of probes towards ${f.node} lost`;
  if (f.kind === 'mtu') return `MTU-sized probes towards ${f.node} lost`;
  if (f.kind === 'dns-servfail') return `DNS replica ${f.replica} answers SERVFAIL`;
  return `${f.target} refuses connections`;
}

function renderFaultMenu() {
  if (demoFaults === undefined) return;
  const kind = /** @type {HTMLSelectElement} */ (byId('fault-kind')).value;
  const t = demoFaults.targets;
  const names = kind === 'dns-servfail' ? t.replicas : kind === 'port-refused' ? t.ports : t.nodes;
  const sel = /** @type {HTMLSelectElement} */ (byId('fault-target'));
  const keep = sel.value;
  sel.replaceChildren(...names.map((n) => h('option', { value: n }, n)));
  if (names.includes(keep)) sel.value = keep;
  byId('fault-percent-label').hidden = kind !== 'loss';
  const list = byId('fault-list');
  list.replaceChildren(
    ...demoFaults.faults.map((f) =>
      h('li', { 'data-fault-kind': f.kind, 'data-fault-subject': faultSubject(f) }, faultText(f)),
    ),
  );
  if (demoFaults.faults.length === 0)
    list.append(h('li', { class: 'muted' }, 'no faults: healthy'));
  list.dataset['count'] = String(demoFaults.faults.length);
}

/** @param {DemoFault[]} faults */
async function postFaults(faults) {
  const err = byId('fault-error');
  const res = await fetch('/api/v1/demo/faults', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ faults }),
  });
  /** @type {unknown} */
  const body = await res.json().catch(() => undefined);
  if (res.ok && typeof body === 'object' && body !== null && 'faults' in body) {
    demoFaults = /** @type {DemoFaultState} */ (body);
    err.hidden = true;
  } else {
    err.textContent = `The fault was not applied: ${
      typeof body === 'object' && body !== null && 'error' in body
        ? String(body.error)
        : `HTTP ${res.status}`
    }`;
    err.hidden = false;
  }
  renderFaultMenu();
}

async function injectFault() {
  if (demoFaults === undefined) return;
  const kind = /** @type {HTMLSelectElement} */ (byId('fault-kind')).value;
  const target = /** @type {HTMLSelectElement} */ (byId('fault-target')).value;
  const percent = Number(/** @type {HTMLInputElement} */ (byId('fault-percent')).value);
  /** @type {DemoFault} */
  const f =
    kind === 'loss'
      ? { kind: 'loss', node: target, percent }
      : kind === 'mtu'
        ? { kind: 'mtu', node: target }
        : kind === 'dns-servfail'
          ? { kind: 'dns-servfail', replica: target }
          : { kind: 'port-refused', target };
  // A node has one reflector fault (loss or mtu), anything else one fault of its kind.
  const slot = (/** @type {DemoFault} */ x) =>
    `${x.kind === 'mtu' ? 'loss' : x.kind}/${faultSubject(x)}`;
  await postFaults([...demoFaults.faults.filter((x) => slot(x) !== slot(f)), f]);
}

async function setUpFaultMenu() {
  // Only the demo's controller sets this header (src/server/controller-app.ts, DEMO_HEADER).
  const probe = await fetch('/healthz', { cache: 'no-store' }).catch(() => undefined);
  if (probe?.headers.get('x-podmesh-demo') !== 'faults') return;
  const a = await getJson('/api/v1/demo/faults').catch(() => undefined);
  if (a === undefined || !a.ok || typeof a.body !== 'object' || a.body === null) return;
  if (!('faults' in a.body) || !('targets' in a.body)) return;
  demoFaults = /** @type {DemoFaultState} */ (a.body);
  byId('demo-faults').hidden = false;
  byId('fault-kind').addEventListener('change', renderFaultMenu);
  byId('fault-inject').addEventListener('click', () => void injectFault());
  byId('fault-heal').addEventListener('click', () => void postFaults([]));
  renderFaultMenu();
}

wire();
void setUpFaultMenu();
void loop();
