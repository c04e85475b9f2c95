// The labs' wait for triage's verdict: polls a controller until its open findings are exactly
// the ones wanted (each predicate matching one finding, nothing else), over a matrix the lab
// says is complete, and logs how long it took and what was seen on the way. One place for what
// lab-triage and lab-apiserver (and any lab asserting findings) mean by "named, nothing else".

import type { ExecutionContext } from 'ava';
import type { Finding } from '../../src/analysis/types.ts';
import type { Matrix } from '../../src/api/matrix.ts';

/** What the wait reads each poll: the controller's latest matrix and findings, if any. */
export interface FindingsSource {
  readonly matrix: () => Matrix | undefined;
  readonly findings: () => { readonly findings: readonly Finding[] } | undefined;
  /**
   * Whether the matrix is full enough that "no findings" means something (every cell the
   * scenario judges holds enough probes): before that an empty list proves nothing.
   */
  readonly complete: (m: Matrix) => boolean;
}

export const describeFindings = (fs: readonly Finding[]): string =>
  fs.length === 0 ? '(none)' : fs.map((f) => `${f.id} [${f.nodes.join(',')}]`).join('; ');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the open findings are exactly those `want` matches, one each, or throws after
 * `ms` with what was open and what was seen. Resolves with the findings and the time taken.
 */
export async function expectFindings(
  t: ExecutionContext,
  src: FindingsSource,
  what: string,
  want: readonly ((f: Finding) => boolean)[],
  ms: number,
): Promise<{ findings: readonly Finding[]; ms: number }> {
  const started = Date.now();
  const seen = new Set<string>();
  for (;;) {
    const m = src.matrix();
    const report = src.findings();
    const complete = m !== undefined && report !== undefined && src.complete(m);
    const last = report?.findings ?? [];
    for (const f of last) seen.add(f.id);
    if (complete && last.length === want.length && want.every((w) => last.filter(w).length === 1)) {
      const took = Date.now() - started;
      const others = [...seen].filter((id) => !last.some((f) => f.id === id));
      t.log(
        `${what}: after ${took} ms: ${describeFindings(last)}${others.length > 0 ? `; seen on the way: ${others.join(', ')}` : ''}`,
      );
      return { findings: last, ms: took };
    }
    if (Date.now() - started > ms)
      throw new Error(
        `${what}: not within ${ms} ms; findings now: ${describeFindings(last)}; seen: ${[...seen].join(', ')}`,
      );
    await sleep(250);
  }
}
