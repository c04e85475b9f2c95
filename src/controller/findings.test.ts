// FindingTracker: open on first report, keep `since`, clear only after the grace rounds.

import test from 'ava';
import type { Finding } from '../api/findings.ts';
import { FindingTracker } from './findings.ts';

function finding(subject: string, title = `${subject} is isolated`): Finding {
  return {
    id: `node-isolated:${subject}`,
    kind: 'node-isolated',
    severity: 'critical',
    subject,
    nodes: [subject],
    title,
    summary: '',
    evidence: [],
    confidence: 0.9,
    nextSteps: [],
  };
}

test('opens once, keeps its start time and the latest text, clears after two silent rounds', (t) => {
  const tr = new FindingTracker(2);
  t.deepEqual(tr.update([finding('n1')], 1000), { opened: [finding('n1')], cleared: [] });
  const again = tr.update([finding('n1', 'n1 still isolated')], 2000);
  t.deepEqual(again, { opened: [], cleared: [] }, 'reported again: no new transition');
  t.is(tr.active()[0]?.since, new Date(1000).toISOString());
  t.is(tr.active()[0]?.finding.title, 'n1 still isolated');

  t.deepEqual(tr.update([], 3000), { opened: [], cleared: [] }, 'one silent round: still open');
  t.is(tr.active()[0]?.missedRounds, 1);
  const back = tr.update([finding('n1')], 4000);
  t.deepEqual(back.opened, [], 'back before the grace ran out: not a new finding');
  tr.update([], 5000);
  const gone = tr.update([], 6000);
  t.deepEqual(
    gone.cleared.map((f) => f.id),
    ['node-isolated:n1'],
  );
  t.deepEqual(tr.active(), []);
});

test('independent findings open and clear independently', (t) => {
  const tr = new FindingTracker(1);
  tr.update([finding('a'), finding('b')], 0);
  const r = tr.update([finding('b'), finding('c')], 1);
  t.deepEqual(
    r.opened.map((f) => f.subject),
    ['c'],
  );
  t.deepEqual(
    r.cleared.map((f) => f.subject),
    ['a'],
  );
  t.deepEqual(
    tr
      .active()
      .map((x) => x.finding.subject)
      .sort(),
    ['b', 'c'],
  );
});
