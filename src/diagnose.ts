// `podmesh diagnose`: the controller's current findings, printed for a person at a terminal at
// 3 a.m. — what is wrong, the evidence, and the commands to confirm and fix it — or as JSON.
// Reads only the controller's HTTP API; imports no controller code.

import type { FindingsReport } from './api/findings.ts';
import type { Matrix } from './api/matrix.ts';

export interface DiagnoseOptions {
  readonly url: string;
  readonly json: boolean;
  readonly timeoutMs: number;
  readonly color: boolean;
}

/** Exit codes, documented in --help: scripts can tell "healthy" from "findings" from "can't tell". */
export const DIAGNOSE_EXIT = { healthy: 0, findings: 1, usage: 2, unreachable: 3 } as const;

/** The part of the matrix the summary line reads; either may be missing from what is served. */
type MatrixSummary = Partial<Pick<Matrix, 'agents' | 'nodes'>>;

async function getJson(url: string, timeoutMs: number): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as unknown };
  } catch {
    throw new Error(`${url} answered ${res.status} with something that is not JSON`);
  }
}

const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 } as const;

/** Renders a findings report (and a matrix summary, if any) as plain text. */
export function renderFindings(
  report: FindingsReport,
  matrix: MatrixSummary | undefined,
  color: boolean,
): string {
  const paint = (code: string, s: string): string => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const sev = {
    critical: (s: string) => paint('1;31', s),
    warning: (s: string) => paint('1;33', s),
    info: (s: string) => paint('1;36', s),
  };
  const out: string[] = [];
  const agents = matrix?.agents ?? [];
  const bad = agents.filter((a) => a.state !== 'ok');
  out.push(
    `podmesh diagnosis at ${report.generatedAt}` +
      (matrix !== undefined
        ? ` — ${matrix.nodes?.length ?? 0} nodes, ${agents.length - bad.length}/${agents.length} agents answering`
        : ''),
  );
  for (const a of bad)
    out.push(`  agent ${a.node}/${a.network}: ${a.state}${a.detail ? ` (${a.detail})` : ''}`);
  if (!report.triage) {
    out.push('', 'This controller runs without triage: no findings can be reported.');
    return out.join('\n') + '\n';
  }
  const findings = [...report.findings].sort(
    (a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity],
  );
  if (findings.length === 0) {
    out.push(
      '',
      paint('1;32', 'No findings: every measured path, DNS server and port looks fine.'),
    );
    return out.join('\n') + '\n';
  }
  out.push('', `${findings.length} finding${findings.length === 1 ? '' : 's'}:`);
  findings.forEach((f, i) => {
    out.push(
      '',
      `${i + 1}. ${sev[f.severity](f.severity.toUpperCase())}  ${f.title}`,
      `   kind ${f.kind}, subject ${f.subject}, confidence ${Math.round(f.confidence * 100)}%, since ${f.since}`,
    );
    if (f.summary !== '') out.push(...wrap(f.summary, 96).map((l) => `   ${l}`));
    if (f.evidence.length > 0) {
      out.push('   Evidence:');
      for (const e of f.evidence) out.push(`     - ${e.text}`);
    }
    if (f.changes !== undefined && f.changes.length > 0) {
      out.push('   What changed around its start:');
      for (const c of f.changes) out.push(`     - ${c.at} ${c.kind} on ${c.node}: ${c.detail}`);
    }
    if (f.nextSteps.length > 0) {
      out.push('   Next steps:');
      for (const s of f.nextSteps) {
        out.push(`     - ${s.text}`);
        if (s.command !== undefined) out.push(`         ${paint('2', '$')} ${s.command}`);
      }
    }
    if (f.explains !== undefined && f.explains.length > 0)
      out.push(`   Explains (not reported separately): ${f.explains.join(', ')}`);
  });
  return out.join('\n') + '\n';
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** Runs the command; returns the exit code and what to print (stdout, stderr). */
export async function diagnose(
  o: DiagnoseOptions,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const base = o.url.replace(/\/+$/, '');
  let findings: { status: number; body: unknown };
  try {
    findings = await getJson(`${base}/api/v1/findings`, o.timeoutMs);
  } catch (e) {
    const why =
      e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
    return {
      code: DIAGNOSE_EXIT.unreachable,
      stdout: '',
      stderr: `podmesh diagnose: cannot reach the controller at ${base}: ${why}\n  Is it running? In a cluster: kubectl -n podmesh port-forward deploy/podmesh-controller 9850 and use --url http://127.0.0.1:9850\n`,
    };
  }
  if (findings.status === 503)
    return {
      code: DIAGNOSE_EXIT.unreachable,
      stdout: '',
      stderr: `podmesh diagnose: the controller at ${base} has no findings yet (its first collection round is still running); try again in a few seconds\n`,
    };
  const report = findings.body as Partial<FindingsReport>;
  if (findings.status !== 200 || report.kind !== 'Findings' || !Array.isArray(report.findings))
    return {
      code: DIAGNOSE_EXIT.unreachable,
      stdout: '',
      stderr: `podmesh diagnose: ${base}/api/v1/findings answered ${findings.status} without a findings report; is this a podmesh controller?\n`,
    };
  if (o.json)
    return {
      code: report.findings.length > 0 ? DIAGNOSE_EXIT.findings : DIAGNOSE_EXIT.healthy,
      stdout: JSON.stringify(report, null, 2) + '\n',
      stderr: '',
    };
  let matrix: MatrixSummary | undefined;
  try {
    const m = await getJson(`${base}/api/v1/matrix`, o.timeoutMs);
    if (m.status === 200) matrix = m.body as MatrixSummary;
  } catch {
    // The findings are what matters; the agent summary is a bonus.
  }
  return {
    code: report.findings.length > 0 ? DIAGNOSE_EXIT.findings : DIAGNOSE_EXIT.healthy,
    stdout: renderFindings(report as FindingsReport, matrix, o.color),
    stderr: '',
  };
}
