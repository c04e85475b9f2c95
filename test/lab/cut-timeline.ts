// Where the time to name a cut goes, measured in the lab rather than guessed: the controller's
// rounds (when each started pulling and when its findings were published, seen through its
// directory, which it asks for the endpoints at a round's start and for coverage right before
// triage), and the agents' rows themselves, polled by the test every 200 ms: when each cell to
// or from the cut node first ends in a failure, and when triage run on those rows (the cut
// node's agents marked unreachable, as a round marks them) first names the cut. The gap between
// "the rows prove it" and "published" is the controller's; the gap before it is the probes'.

import { acceptedAgentRowSchema } from '../../src/api/agent-row.ts';
import type { NodeCoverage } from '../../src/api/coverage.ts';
import { cutView } from '../../src/analysis/fresh.ts';
import { triage } from '../../src/analysis/triage.ts';
import type { AgentDirectory } from '../../src/controller/controller.ts';
import { assembleMatrix, type AgentEndpoint, type Fetched } from '../../src/controller/matrix.ts';

/** A directory that records when each round started and when it reached triage. */
export class RoundRecorder implements AgentDirectory {
  readonly starts: number[] = [];
  readonly triaged: number[] = [];
  constructor(private readonly list: readonly AgentEndpoint[]) {}
  endpoints(): readonly AgentEndpoint[] {
    this.starts.push(Date.now());
    return this.list;
  }
  coverage(): readonly NodeCoverage[] | undefined {
    this.triaged.push(Date.now());
    return undefined;
  }
  /** The rounds that started after `from`, as "start→triaged" offsets from it. */
  since(from: number): string {
    const out: string[] = [];
    for (let i = 0; i < this.starts.length; i++) {
      const s = this.starts[i]!;
      if (s < from - 10_000) continue;
      const e = this.triaged[i];
      out.push(`${s - from}→${e === undefined ? '?' : e - from}`);
    }
    return out.join(', ');
  }
}

/** Polls the reachable agents' rows; see the header. */
export class RowWatcher {
  /** Cell key → ms after the start when its trailing run first was a failure. */
  readonly firstFail = new Map<string, number>();
  /** Cell key → ms after the start when its failure run first reached 2. */
  readonly secondFail = new Map<string, number>();
  /** Link (its small probes) → ms after the start when its failures first proved a cut. */
  readonly linkProven = new Map<string, number>();
  /** When triage on the polled rows first named the finding. */
  provenAt: number | undefined;
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(
    private readonly all: readonly AgentEndpoint[],
    private readonly cutNode: string,
    private readonly findingId: string,
    private readonly started: number,
  ) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped && this.provenAt === undefined) {
      const at = Date.now() - this.started;
      const fetched = await Promise.all(
        this.all.map(async (endpoint): Promise<Fetched> => {
          if (endpoint.node === this.cutNode)
            return { endpoint, state: 'timeout', detail: 'cut off' };
          try {
            const res = await fetch(`${endpoint.url}/api/v1/results`, {
              signal: AbortSignal.timeout(1000),
            });
            const row = acceptedAgentRowSchema.parse(await res.json());
            return { endpoint, state: 'ok', row };
          } catch (e) {
            return { endpoint, state: 'unreachable', detail: String(e) };
          }
        }),
      );
      const matrix = assembleMatrix(fetched, Date.now(), new Map());
      for (const c of matrix.cells) {
        if (c.sourceNode !== this.cutNode && c.targetNode !== this.cutNode) continue;
        const key = `${c.sourceNode}/${c.sourceNetwork}->${c.targetNode}/${c.targetNetwork} ${c.protocol}/${c.size}`;
        const r = c.run;
        if (r == null || r.ok) continue;
        if (!this.firstFail.has(key)) this.firstFail.set(key, at);
        if (r.length >= 2 && !this.secondFail.has(key)) this.secondFail.set(key, at);
      }
      const links = new Map<string, { sent: number; lost: number; run: unknown }[]>();
      for (const c of matrix.cells) {
        if (c.sourceNode !== this.cutNode && c.targetNode !== this.cutNode) continue;
        if (c.size !== 'small') continue;
        const key = `${c.sourceNode}/${c.sourceNetwork}->${c.targetNode}/${c.targetNetwork}`;
        links.set(key, [...(links.get(key) ?? []), { sent: c.sent, lost: c.lost, run: c.run }]);
      }
      for (const [key, cells] of links)
        if (!this.linkProven.has(key) && cutView(cells) !== undefined) this.linkProven.set(key, at);
      const found = triage({ matrix, coverage: undefined });
      if (found.some((f) => f.id === this.findingId)) this.provenAt = at;
      else await new Promise((r) => setTimeout(r, 200));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** Each link's proof, in the order they came. */
  links(): string {
    return [...this.linkProven].map(([k, at]) => `${k} ${at}`).join(', ');
  }

  /** first failure (earliest..latest cell), second failure (earliest..latest), proven. */
  summary(): string {
    const span = (m: Map<string, number>): string => {
      const v = [...m.values()];
      return v.length === 0
        ? 'none'
        : `${Math.min(...v)}..${Math.max(...v)} ms (${v.length} cells)`;
    };
    return `first failure ${span(this.firstFail)}; second failure ${span(this.secondFail)}; links proven ${span(this.linkProven)}; the rows prove it at ${this.provenAt ?? 'never'} ms`;
  }
}
