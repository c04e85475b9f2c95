// The controller's findings bookkeeping with an injected triage: one podmesh_finding_active
// series per open finding (removed when it clears), an Event when a finding opens and when it
// clears (once each, not every round), and the report /api/v1/findings serves.

import test from 'ava';
import type { Finding } from '../src/api/findings.ts';
import { SystemClock } from '../src/core/clock.ts';
import { Controller, StaticDirectory, type EventSink } from '../src/controller/controller.ts';
import { parseMetrics } from './support/agents.ts';

function finding(kind: Finding['kind'], subject: string): Finding {
  return {
    id: `${kind}:${subject}`,
    kind,
    severity: kind === 'pair-loss' ? 'warning' : 'critical',
    subject,
    nodes: subject.split('->'),
    title: `${kind} ${subject}`,
    summary: 'test',
    evidence: [{ text: 'e' }],
    confidence: 0.8,
    nextSteps: [{ text: 'look', command: 'kubectl get pods -o wide' }],
  };
}

test('findings: metric series, Events on open and clear, and the report', async (t) => {
  let now: Finding[] = [];
  const events: string[] = [];
  const sink: EventSink = {
    coverageLost: () => undefined,
    coverageRestored: () => undefined,
    findingOpened: (f) => events.push(`opened ${f.id}`),
    findingCleared: (f) => events.push(`cleared ${f.id}`),
  };
  const c = new Controller({
    clock: new SystemClock(),
    directory: new StaticDirectory([]),
    pullIntervalMs: 1000,
    pullConcurrency: 1,
    pullTimeoutMs: 500,
    version: 'test',
    events: sink,
    triage: () => now,
    log: () => undefined,
  });
  t.is(c.findings(), undefined, 'nothing before the first round');
  const active = async () =>
    parseMetrics(await c.registry.metrics())
      .filter((s) => s.name === 'podmesh_finding_active')
      .map((s) => `${s.labels.kind}|${s.labels.subject}|${s.labels.severity}=${s.value}`)
      .sort();

  await c.round();
  t.deepEqual(c.findings()?.findings, []);
  t.is(c.findings()?.triage, true);
  t.deepEqual(await active(), []);

  now = [finding('node-isolated', 'n3'), finding('pair-loss', 'n1->n2')];
  await c.round();
  await c.round();
  t.deepEqual(await active(), ['node-isolated|n3|critical=1', 'pair-loss|n1->n2|warning=1']);
  t.deepEqual(events, ['opened node-isolated:n3', 'opened pair-loss:n1->n2'], 'once per opening');
  const report = c.findings();
  t.is(report?.findings.length, 2);
  t.truthy(report?.findings[0]?.since);
  const opened = parseMetrics(await c.registry.metrics()).find(
    (s) => s.name === 'podmesh_findings_opened_total' && s.labels.kind === 'node-isolated',
  );
  t.is(opened?.value, 1);

  now = [finding('pair-loss', 'n1->n2')];
  await c.round();
  t.is(c.findings()?.findings.length, 2, 'a finding fades for a round before it clears');
  await c.round();
  t.deepEqual(await active(), ['pair-loss|n1->n2|warning=1'], 'its series is removed');
  t.deepEqual(events.slice(2), ['cleared node-isolated:n3']);
  t.deepEqual(
    c.findings()?.findings.map((f) => f.id),
    ['pair-loss:n1->n2'],
  );
});

test('a triage that throws keeps the last findings and the controller goes on', async (t) => {
  let explode = false;
  const logs: string[] = [];
  const c = new Controller({
    clock: new SystemClock(),
    directory: new StaticDirectory([]),
    pullIntervalMs: 1000,
    pullConcurrency: 1,
    pullTimeoutMs: 500,
    version: 'test',
    triage: () => {
      if (explode) throw new Error('boom');
      return [finding('node-isolated', 'n3')];
    },
    log: (_l, msg) => logs.push(msg),
  });
  await c.round();
  explode = true;
  await c.round();
  await c.round();
  t.deepEqual(
    c.findings()?.findings.map((f) => f.id),
    ['node-isolated:n3'],
  );
  t.true(logs.some((m) => m.includes('triage failed: Error: boom')));
});

test('without triage the report says so', async (t) => {
  const c = new Controller({
    clock: new SystemClock(),
    directory: new StaticDirectory([]),
    pullIntervalMs: 1000,
    pullConcurrency: 1,
    pullTimeoutMs: 500,
    version: 'test',
    log: () => undefined,
  });
  await c.round();
  t.is(c.findings()?.triage, false);
  t.deepEqual(c.findings()?.findings, []);
});
