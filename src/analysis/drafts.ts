// Evidence lines and finding drafts: how a link, a cell or a list is put into words, capped to
// the worst few, and how a rule's draft becomes a finding (ids, sorted names, confidence).

import { cellCounts, cellRatio } from './links.ts';
import { cmp, finite, uniqSorted, type Ctx, type Draft, type Link, type Tally } from './model.ts';
import { wilson, type Counts } from './stats.ts';
import {
  FINDING_KINDS,
  type Cell,
  type Evidence,
  type FindingKind,
  type NextStep,
  type Severity,
} from './types.ts';

export const linkLabel = (l: Link): string =>
  `${l.sourceNode} → ${l.targetNode} ${l.path}${l.cls === 'local' ? ' (same node)' : ''}`;

export function pct(r: number): string {
  const p = r * 100;
  return p >= 10 || p === 0 ? `${Math.round(p)}%` : `${p.toFixed(1)}%`;
}

/** A whole-percent figure for an interval end (never "0.4%": intervals are rough). */
const whole = (r: number): string => `${Math.round(r * 100)}`;

/**
 * Counts with their point estimate and interval, as findings state them:
 * "12 of 60 lost (20%, 99% interval 10–36%)".
 */
export function lossFigures(c: Counts, confidence: number, noun = 'lost'): string {
  const w = wilson(c, confidence);
  const conf = `${Math.round(confidence * 1000) / 10}%`;
  return `${Math.round(c.lost)} of ${Math.round(c.sent)} ${noun} (${pct(w.ratio)}, ${conf} interval ${whole(w.lo)}–${whole(w.hi)}%)`;
}

/** The newest of some ISO times (measuredAt), or undefined when none parses. */
function newest(times: readonly unknown[]): string | undefined {
  let best: number | undefined;
  for (const x of times) {
    const ms = typeof x === 'string' ? Date.parse(x) : NaN;
    if (Number.isFinite(ms) && (best === undefined || ms > best)) best = ms;
  }
  return best === undefined ? undefined : new Date(best).toISOString();
}

/**
 * What an evidence line says about cells measured by rotating visits (peers.rotation): that the
 * pair is probed once a coverage period, not all the time, and when it was last measured.
 */
export function rotatingNote(cells: readonly Cell[], inVisits = false): string {
  const rotating = cells.filter((c) => c.rotating === true);
  if (rotating.length === 0) return '';
  const at = newest(rotating.map((c) => c.measuredAt));
  return `; a rotating pair (visited once a coverage period${inVisits ? ', counted in visits' : ''})${at !== undefined ? `, last measured ${at}` : ''}`;
}

/** One line for a link's pooled small-probe result. */
export function linkEvidence(l: Link, t: Tally): Evidence {
  const lost = Math.round(t.lost);
  // A rotating link's tally is in visits (links.ts rotatingViews), so possibly fractional.
  const small = l.cells.filter((c) => c.size === 'small');
  return {
    text: `${linkLabel(l)} ${t.protocols.join('/')} small: ${lost} of ${Math.round(t.sent)} lost${
      t.window !== undefined
        ? `, the newest in a row (window: ${t.window.lost} of ${t.window.sent})`
        : ''
    }${t.lastFailure !== null && lost > 0 ? ` (${t.lastFailure})` : ''}${rotatingNote(
      small,
      small.some((c) => c.rotating === true),
    )}`,
    sourceNode: l.sourceNode,
    targetNode: l.targetNode,
    path: l.path,
    size: 'small',
    value: t.ratio,
  };
}

export function cellEvidence(c: Cell, note = ''): Evidence {
  const r = cellRatio(c) ?? 0;
  const k = cellCounts(c);
  // A rotating cell's window view is weighted (links.ts rotatingViews): say its probes.
  const sent = c.rotating === true && k.fresh === 'window' ? finite(c.sent) : k.sent;
  const lost = Math.round(r * sent);
  const local = c.sourceNode === c.targetNode ? ' (same node)' : '';
  // A fresh view says which samples it rests on: the newest in a row, not the window.
  const fresh =
    k.fresh === 'failing'
      ? `, the newest in a row (window: ${finite(c.lost)} of ${finite(c.sent)})`
      : k.fresh === 'healed'
        ? `, the newest in a row since it healed (window: ${finite(c.lost)} of ${finite(c.sent)})`
        : '';
  return {
    text: `${c.sourceNode} → ${c.targetNode} ${c.path}${local} ${c.protocol} ${c.size}: ${lost} of ${sent} lost${fresh}${
      c.lastFailure !== null && lost > 0 ? ` (${c.lastFailure})` : ''
    }${rotatingNote([c])}${note}`,
    sourceNode: c.sourceNode,
    targetNode: c.targetNode,
    path: c.path,
    protocol: c.protocol,
    size: c.size,
    value: r,
  };
}

/** Evidence with an optional sort key, for lines whose stated value isn't "worse when higher". */
export type Ranked = Evidence & { readonly rank?: number };

const strip = ({ rank: _rank, ...e }: Ranked): Evidence => e;

/** Worst first (by rank, else value), at most `max`, then one "... and N more" line. */
export function capEvidence(list: readonly Ranked[], max: number): Evidence[] {
  const key = (e: Ranked): number => e.rank ?? e.value ?? -1;
  const sorted = [...list].sort((a, b) => key(b) - key(a) || cmp(a.text, b.text)).map(strip);
  if (sorted.length <= max) return sorted;
  const kept = sorted.slice(0, max);
  kept.push({ text: `… and ${sorted.length - max} more` });
  return kept;
}

/** An outcome count map as ["timeout 12", "refused 3"]: most first, empty and malformed left out. */
export function outcomeCounts(o: unknown): string[] {
  if (o === undefined || o === null || typeof o !== 'object') return [];
  return Object.entries(o as Record<string, unknown>)
    .filter((e): e is [string, number] => typeof e[1] === 'number' && e[1] > 0)
    .sort((a, b) => b[1] - a[1] || cmp(a[0], b[0]))
    .map(([k, n]) => `${k} ${n}`);
}

export function capList(list: readonly string[], max: number): string[] {
  const u = uniqSorted(list);
  if (u.length <= max) return u;
  return [...u.slice(0, max), `… and ${u.length - max} more`];
}

export interface DraftInput {
  readonly kind: FindingKind;
  readonly subject: string;
  readonly severity: Severity;
  readonly nodes: Iterable<string>;
  readonly zones?: Iterable<string>;
  readonly servers?: Iterable<string>;
  readonly targets?: Iterable<string>;
  readonly title: string;
  readonly summary: string;
  /** Put first, never cut (context such as "same node still works"). */
  readonly lead?: readonly Ranked[];
  readonly evidence: readonly Ranked[];
  readonly confidence: number;
  readonly nextSteps: readonly NextStep[];
  readonly explains?: Iterable<string>;
}

export function draft(ctx: Ctx, d: DraftInput): Draft {
  const conf = Number.isFinite(d.confidence) ? Math.min(1, Math.max(0, d.confidence)) : 0.5;
  return {
    id: `${d.kind}:${d.subject}`,
    kind: d.kind,
    severity: d.severity,
    subject: d.subject,
    nodes: uniqSorted(d.nodes),
    ...(d.zones !== undefined ? { zones: uniqSorted(d.zones) } : {}),
    ...(d.servers !== undefined ? { servers: uniqSorted(d.servers) } : {}),
    ...(d.targets !== undefined ? { targets: uniqSorted(d.targets) } : {}),
    title: d.title,
    summary: d.summary,
    evidence: [...(d.lead ?? []).map(strip), ...capEvidence(d.evidence, ctx.opts.maxEvidence)],
    confidence: Math.round(conf * 100) / 100,
    nextSteps: d.nextSteps,
    explains: [...(d.explains ?? [])],
  };
}

/** Whether a reason string is a finding id (vs. a plain description). */
export function isFindingId(s: string): boolean {
  const i = s.indexOf(':');
  return i > 0 && (FINDING_KINDS as readonly string[]).includes(s.slice(0, i));
}

export function addExplains(ctx: Ctx, id: string, line: string): void {
  const list = ctx.extraExplains.get(id) ?? [];
  if (!list.includes(line)) list.push(line);
  ctx.extraExplains.set(id, list);
}
