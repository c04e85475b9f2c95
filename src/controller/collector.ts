// Pulls every agent's row with bounded concurrency and a timeout each. An agent that doesn't
// answer, answers with an error, or sends something that isn't a valid row is marked with the
// reason; it never fails the round.

import pLimit from 'p-limit';
import type { Clock } from '../core/clock.ts';
import { acceptedAgentRowSchema } from '../api/agent-row.ts';
import type { Matrix } from '../api/matrix.ts';
import { assembleMatrix, type AgentEndpoint, type Fetched } from './matrix.ts';
import type { PullFetch } from './pull-client.ts';

export interface CollectorOptions {
  readonly clock: Clock;
  readonly concurrency: number;
  readonly timeoutMs: number;
  /** Responses larger than this are refused (a row for 10,000 peers is well under it). */
  readonly maxBytes?: number;
  /** TLS and credentials for secured agents (pull-client.ts); default: the global fetch. */
  readonly fetch?: PullFetch;
}

const DEFAULT_MAX_BYTES = 32 * 1024 * 1024;

export class MatrixCollector {
  private readonly lastSeen = new Map<string, string>();

  constructor(private readonly opts: CollectorOptions) {}

  async collect(endpoints: readonly AgentEndpoint[]): Promise<Matrix> {
    const limit = pLimit(this.opts.concurrency);
    const fetched = await Promise.all(endpoints.map((e) => limit(() => this.fetchOne(e))));
    const matrix = assembleMatrix(fetched, this.opts.clock.nowMs(), this.lastSeen);
    for (const a of matrix.agents)
      if (a.lastSeen !== null) this.lastSeen.set(`${a.node}/${a.network}`, a.lastSeen);
    const live = new Set(endpoints.map((e) => `${e.node}/${e.network}`));
    for (const k of this.lastSeen.keys()) if (!live.has(k)) this.lastSeen.delete(k);
    return matrix;
  }

  private async fetchOne(endpoint: AgentEndpoint): Promise<Fetched> {
    let res: Response;
    try {
      res = await (this.opts.fetch ?? fetch)(`${endpoint.url}/api/v1/results`, {
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
    } catch (e) {
      const name = (e as Error).name;
      if (name === 'TimeoutError' || name === 'AbortError')
        return { endpoint, state: 'timeout', detail: `no answer within ${this.opts.timeoutMs} ms` };
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      return {
        endpoint,
        state: 'unreachable',
        detail: cause?.code ?? cause?.message ?? (e as Error).message,
      };
    }
    if (!res.ok) {
      await res.body?.cancel();
      return { endpoint, state: 'http-error', detail: `HTTP ${res.status}` };
    }
    let text: string;
    try {
      const declared = Number(res.headers.get('content-length') ?? '0');
      const max = this.opts.maxBytes ?? DEFAULT_MAX_BYTES;
      if (declared > max) {
        await res.body?.cancel();
        return {
          endpoint,
          state: 'invalid',
          detail: `response of ${declared} bytes is over the ${max}-byte limit`,
        };
      }
      text = await res.text();
      if (text.length > max)
        return { endpoint, state: 'invalid', detail: `response over the ${max}-byte limit` };
    } catch (e) {
      return {
        endpoint,
        state: 'timeout',
        detail: `reading the response: ${(e as Error).message}`,
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
        detail:
          `not an AgentResults row: ${first?.path.join('.') ?? ''} ${first?.message ?? ''}`.trim(),
      };
    }
    if (
      parsed.data.source.node !== endpoint.node ||
      parsed.data.source.network !== endpoint.network
    ) {
      return {
        endpoint,
        state: 'invalid',
        detail: `answered as ${parsed.data.source.node}/${parsed.data.source.network}, expected ${endpoint.node}/${endpoint.network}`,
      };
    }
    return { endpoint, state: 'ok', row: parsed.data };
  }
}
