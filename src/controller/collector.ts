// Pulls every agent's row with bounded concurrency, a timeout each and a deadline for the whole
// round. An agent that doesn't answer, answers with an error, or sends something that isn't a
// valid row is marked with the reason; it never fails the round.
//
// An agent's endpoint is not trusted (anyone who can run a Pod with the agent's labels, or sit
// on the path, answers for it): redirects are refused rather than followed, so an answer can't
// point the controller at an internal address (a cloud metadata service) and read the outcome
// back from the matrix's detail; the body is read as it streams and abandoned at the size limit,
// so a huge or endless body costs the limit, not the controller's memory; and the round ends by
// its deadline whatever the agents do, so one round can't stall the next.
//
// Each row is turned into its part of the matrix as soon as it is read and validated, and the
// row is dropped (matrix.ts): a round holds the rows being read (at most `concurrency`), never
// all of them.
//
// A round is held for an agent that did not answer the round before either (a node cut off, an
// agent gone) only briefly: it is pulled like every other, but once the others have answered the
// round waits for it at most NOT_HELD_GRACE_MS from its start, then marks it timeout. Holding every
// round for the full pull timeout of an agent known not to answer delayed triage by that timeout
// (3 s by default) in every round of a cut (issue 17: a cut named within 10 s). An agent that is
// back answers a fresh pull in milliseconds; one slower than the grace answers its pull after the
// round ended, and that answer makes the next round hold for it again, so it is read then (two
// failed reads at most, within the grace coverage-gap gives a failed read). Each round pulls
// afresh (a pull still out from the round before, perhaps stuck in the cut's SYN retransmits, is
// aborted: one pull per agent at a time). When every agent failed the round before, the round
// waits for them all, as it always did.

import { setMaxListeners } from 'node:events';
import pLimit from 'p-limit';
import type { Clock } from '../core/clock.ts';
import { acceptedAgentRowSchema } from '../api/agent-row.ts';
import type { Matrix } from '../api/matrix.ts';
import { joinParts, rowPart, type AgentEndpoint, type Fetched, type RowPart } from './matrix.ts';
import type { PullFetch } from './pull-client.ts';

export interface CollectorOptions {
  readonly clock: Clock;
  readonly concurrency: number;
  /** How long one agent may take, from connecting to the last byte of its row. */
  readonly timeoutMs: number;
  /** The whole round's deadline: agents not answered by then are marked timeout. */
  readonly roundTimeoutMs?: number;
  /** Responses larger than this are refused (a row for 10,000 peers is well under it). */
  readonly maxBytes?: number;
  /** TLS and credentials for secured agents (pull-client.ts); default: the global fetch. */
  readonly fetch?: PullFetch;
}

const DEFAULT_MAX_BYTES = 32 * 1024 * 1024;
const DEFAULT_ROUND_TIMEOUT_MS = 30_000;
/** Longest detail taken from anything the agent's side controls (error messages). */
const MAX_DETAIL = 160;

/** Why a body read stopped early. */
class BodyTooLarge extends Error {}

/**
 * How long from its start a round waits for an agent that failed the round before (at most the
 * pull timeout): a reachable agent answers a pull in milliseconds, so this only bounds what a
 * cut-off agent costs each round.
 */
export const NOT_HELD_GRACE_MS = 500;

export class MatrixCollector {
  private readonly lastSeen = new Map<string, string>();
  /** Agents (node/network) whose read failed in the last round they were in. */
  private readonly failedLast = new Set<string>();
  /** Each agent's pull still out, to abort when the next round pulls it afresh. */
  private readonly out = new Map<string, AbortController>();

  constructor(private readonly opts: CollectorOptions) {}

  async collect(endpoints: readonly AgentEndpoint[]): Promise<Matrix> {
    const roundMs = this.opts.roundTimeoutMs ?? DEFAULT_ROUND_TIMEOUT_MS;
    // Aborts every fetch still running (or still queued) when the deadline passes.
    const roundTimer = timeoutSignal(roundMs);
    const round = roundTimer.signal;
    const limit = pLimit(this.opts.concurrency);
    const parts: (RowPart | undefined)[] = endpoints.map(() => undefined);
    const keys = endpoints.map((e) => `${e.node}/${e.network}`);
    // Held for every agent that answered the round before (and for all when none did).
    const holdAll = keys.every((k) => this.failedLast.has(k));
    const held: Promise<void>[] = [];
    const brief: Promise<void>[] = [];
    let over = false;
    endpoints.forEach((e, i) => {
      const key = keys[i]!;
      this.out.get(key)?.abort(new DOMException('pulled afresh', 'AbortError'));
      const own = new AbortController();
      this.out.set(key, own);
      const onRound = (): void => own.abort(round.reason);
      round.addEventListener('abort', onRound, { once: true });
      const done = limit(() => this.fetchOne(e, own.signal, roundMs)).then((f) => {
        round.removeEventListener('abort', onRound);
        if (this.out.get(key) === own) this.out.delete(key);
        if (!over) parts[i] = rowPart(f);
        // Answered after its round ended: the next round holds for it again.
        else if (f.state === 'ok') this.failedLast.delete(key);
      });
      (holdAll || !this.failedLast.has(key) ? held : brief).push(done);
    });
    let graceTimer: NodeJS.Timeout | undefined;
    const grace =
      brief.length === 0
        ? Promise.resolve()
        : Promise.race([
            Promise.all(brief),
            new Promise<void>((resolve) => {
              graceTimer = setTimeout(resolve, Math.min(NOT_HELD_GRACE_MS, this.opts.timeoutMs));
            }),
          ]);
    const all = Promise.all([...held, grace]);
    // The fetches end soon after the abort (and the queued ones at once); the round does not
    // wait for them to, so a fetch that ignored its signal could not hold the round either.
    let onDeadline: (() => void) | undefined;
    const deadline = new Promise<void>((resolve) => {
      onDeadline = resolve;
      round.addEventListener('abort', onDeadline, { once: true });
    });
    try {
      await Promise.race([all, deadline]);
    } finally {
      over = true;
      if (onDeadline !== undefined) round.removeEventListener('abort', onDeadline);
      roundTimer.clear();
      clearTimeout(graceTimer);
    }
    const results = endpoints.map(
      (endpoint, i): RowPart =>
        parts[i] ??
        rowPart({
          endpoint,
          state: 'timeout',
          detail: round.aborted ? pastDeadline(roundMs) : notHeld(this.opts.timeoutMs),
        }),
    );
    for (const r of results) {
      const key = `${r.endpoint.node}/${r.endpoint.network}`;
      if (r.state === 'ok') this.failedLast.delete(key);
      else this.failedLast.add(key);
    }
    const matrix = joinParts(results, this.opts.clock.nowMs(), this.lastSeen);
    for (const a of matrix.agents)
      if (a.lastSeen !== null) this.lastSeen.set(`${a.node}/${a.network}`, a.lastSeen);
    const live = new Set(keys);
    for (const k of this.lastSeen.keys()) if (!live.has(k)) this.lastSeen.delete(k);
    for (const k of this.failedLast) if (!live.has(k)) this.failedLast.delete(k);
    return matrix;
  }

  private async fetchOne(
    endpoint: AgentEndpoint,
    round: AbortSignal,
    roundMs: number,
  ): Promise<Fetched> {
    if (round.aborted) return { endpoint, state: 'timeout', detail: pastDeadline(roundMs) };
    const pull = timeoutSignal(this.opts.timeoutMs, round);
    try {
      return await this.pull(endpoint, pull.signal, round, roundMs);
    } finally {
      pull.clear();
    }
  }

  private async pull(
    endpoint: AgentEndpoint,
    signal: AbortSignal,
    round: AbortSignal,
    roundMs: number,
  ): Promise<Fetched> {
    const timedOut = (what: string): Fetched => ({
      endpoint,
      state: 'timeout',
      detail: round.aborted ? pastDeadline(roundMs) : `${what} within ${this.opts.timeoutMs} ms`,
    });
    let res: Response;
    try {
      // A secured agent is pulled through pull-client.ts, which never follows a redirect either.
      res = await (this.opts.fetch ?? fetch)(`${endpoint.url}/api/v1/results`, {
        signal,
        redirect: 'manual',
      });
    } catch (e) {
      const name = (e as Error).name;
      if (name === 'TimeoutError' || name === 'AbortError') return timedOut('no answer');
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      return {
        endpoint,
        state: 'unreachable',
        detail: bounded(cause?.code ?? cause?.message ?? (e as Error).message),
      };
    }
    // undici hands back the 3xx itself in manual mode; the spec's opaque redirect is status 0.
    if (res.type === 'opaqueredirect' || (res.status >= 300 && res.status < 400)) {
      await res.body?.cancel().catch(() => undefined);
      // Not followed, and the Location not repeated: only the status.
      return {
        endpoint,
        state: 'invalid',
        detail: `HTTP ${res.status}: a redirect, refused (an agent answers for itself)`,
      };
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      return { endpoint, state: 'http-error', detail: `HTTP ${res.status}` };
    }
    const max = this.opts.maxBytes ?? DEFAULT_MAX_BYTES;
    let text: string;
    try {
      const declared = Number(res.headers.get('content-length') ?? '0');
      if (declared > max) {
        await res.body?.cancel().catch(() => undefined);
        return {
          endpoint,
          state: 'invalid',
          detail: `response of ${declared} bytes is over the ${max}-byte limit`,
        };
      }
      text = await readBounded(res, max);
    } catch (e) {
      if (e instanceof BodyTooLarge)
        return { endpoint, state: 'invalid', detail: `response over the ${max}-byte limit` };
      const name = (e as Error).name;
      if (name === 'TimeoutError' || name === 'AbortError')
        return timedOut('the response was not read');
      return {
        endpoint,
        state: 'timeout',
        detail: bounded(`reading the response: ${(e as Error).message}`),
      };
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { endpoint, state: 'invalid', detail: 'response is not JSON' };
    }
    const parsed = acceptedAgentRowSchema.safeParse(json);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      return {
        endpoint,
        state: 'invalid',
        detail: bounded(
          `not an AgentResults row: ${first?.path.join('.') ?? ''} ${first?.message ?? ''}`.trim(),
        ),
      };
    }
    if (
      parsed.data.source.node !== endpoint.node ||
      parsed.data.source.network !== endpoint.network
    ) {
      return {
        endpoint,
        state: 'invalid',
        detail: bounded(
          `answered as ${parsed.data.source.node}/${parsed.data.source.network}, expected ${endpoint.node}/${endpoint.network}`,
        ),
      };
    }
    return { endpoint, state: 'ok', row: parsed.data };
  }
}

/**
 * A signal aborted (as a TimeoutError) after `ms`, or with `parent` if that aborts first, and
 * `clear` to drop the timer and the link to `parent` once the work is done. Not
 * AbortSignal.any([AbortSignal.timeout(ms), parent]): on Node 20 a timeout signal that only
 * AbortSignal.any() refers to can be garbage-collected before it fires (nodejs/node#57736), and
 * a pull of an agent that doesn't answer (a partitioned node) then ran until the round's
 * deadline or TCP's connect timeout: in the lab, rounds stalled for about 10 s and triage's
 * findings froze. A controller and a timer held here fire whatever the collector does.
 */
function timeoutSignal(ms: number, parent?: AbortSignal): { signal: AbortSignal; clear(): void } {
  const ac = new AbortController();
  // Every pull in flight listens on the round's signal (concurrency of them, 32 by default):
  // not a leak, so no MaxListenersExceededWarning for it.
  setMaxListeners(0, ac.signal);
  const timer = setTimeout(
    () => ac.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError')),
    ms,
  );
  const onParent = (): void => ac.abort(parent?.reason);
  if (parent?.aborted === true) onParent();
  else parent?.addEventListener('abort', onParent, { once: true });
  return {
    signal: ac.signal,
    clear: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParent);
    },
  };
}

/** The body as text, read chunk by chunk; throws BodyTooLarge (and cancels) past `max` bytes. */
async function readBounded(res: Response, max: number): Promise<string> {
  if (res.body === null) return '';
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      throw new BodyTooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

/** An agent the round waited for only briefly (see the header), not answered by then. */
function notHeld(timeoutMs: number): string {
  return `no answer within ${Math.min(NOT_HELD_GRACE_MS, timeoutMs)} ms (not waited for longer: no answer the round before either)`;
}

function pastDeadline(roundMs: number): string {
  return `no answer before the round's deadline of ${roundMs} ms`;
}

/** Text from the agent's side, as a short single line of printable characters. */
function bounded(s: string): string {
  // eslint-disable-next-line no-control-regex
  const line = s.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
  return line.length > MAX_DETAIL ? `${line.slice(0, MAX_DETAIL - 1)}…` : line;
}
