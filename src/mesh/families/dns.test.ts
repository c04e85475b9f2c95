// DNS planning and the search-list walk: job keys and transports, replica label names, and the
// glibc rules for going on to the next candidate, against a scripted probe on a fake clock.

import test from 'ava';
import { FakeClock } from '../../../test/support/fake-clock.ts';
import type { DnsOutcome, DnsQuery, DnsResult } from '../../probes/dns.ts';
import type { DnsJob } from '../../probes/dns-job.ts';
import { planDnsJobs, replicaTargets, runDnsLookup } from './dns.ts';

function scripted(clock: FakeClock, answers: Record<string, DnsOutcome>, latencyMs = 1) {
  const asked: string[] = [];
  return {
    asked,
    run(q: DnsQuery, timeoutMs: number): Promise<DnsResult> {
      asked.push(q.name);
      const outcome = answers[q.name] ?? 'nxdomain';
      const ms = outcome === 'timeout' ? timeoutMs : latencyMs;
      return new Promise((resolve) => {
        clock.setTimeout(
          () =>
            resolve({
              ok: outcome !== 'timeout',
              outcome,
              answers: outcome === 'noerror' ? 1 : 0,
              addresses: [],
              truncatedRetried: false,
              seconds: ms / 1000,
              sentAtMs: clock.nowMs(),
              transport: q.transport,
            }),
          ms,
        );
      });
    },
  };
}

const CANDIDATES = ['k.ns.svc.cl.', 'k.svc.cl.', 'k.cl.', 'k.'];
const job: DnsJob = {
  key: 'service|service|short|udp',
  serverKind: 'service',
  server: 'service',
  address: '127.0.0.1',
  port: 53,
  query: 'short',
  candidates: CANDIDATES,
  transport: 'udp',
};

async function lookup(answers: Record<string, DnsOutcome>, timeoutMs = 1000) {
  const clock = new FakeClock();
  const probe = scripted(clock, answers);
  const pending = runDnsLookup(probe, clock, job, timeoutMs);
  // Small steps, so the walk's promise chain settles at the time it really ends.
  for (let ms = 0; ms <= timeoutMs + 10; ms++) await clock.advance(1);
  return { r: await pending, asked: probe.asked };
}

test('walks the candidates in order until one has records', async (t) => {
  const { r, asked } = await lookup({ 'k.svc.cl.': 'noerror' });
  t.deepEqual(asked, ['k.ns.svc.cl.', 'k.svc.cl.']);
  t.is(r.outcome, 'noerror');
  t.is(r.answeredBy, 'k.svc.cl.');
  t.is(r.tried, 2);
  t.true(r.answered);
  t.true(Math.abs(r.seconds - 0.002) < 1e-6, `the whole walk is timed: ${r.seconds}`);
});

test('goes on after nodata and servfail, stops at a timeout like glibc', async (t) => {
  const a = await lookup({ 'k.ns.svc.cl.': 'servfail', 'k.svc.cl.': 'nodata', 'k.cl.': 'noerror' });
  t.deepEqual(a.asked, CANDIDATES.slice(0, 3));
  t.is(a.r.outcome, 'noerror');
  const b = await lookup({ 'k.svc.cl.': 'timeout', 'k.cl.': 'noerror' });
  t.deepEqual(b.asked, CANDIDATES.slice(0, 2));
  t.is(b.r.outcome, 'timeout');
  t.false(b.r.answered);
  t.is(b.r.answeredBy, undefined);
});

test('all nxdomain is nxdomain (an answer, not a server failure); a nodata on the way wins', async (t) => {
  const a = await lookup({});
  t.deepEqual(a.asked, CANDIDATES);
  t.is(a.r.outcome, 'nxdomain');
  t.true(a.r.answered);
  const b = await lookup({ 'k.svc.cl.': 'nodata' });
  t.is(b.r.outcome, 'nodata');
});

test('jobs: udp for every query, tcp only where asked; keys carry labels, never addresses', (t) => {
  const jobs = planDnsJobs(
    [
      { kind: 'service', name: 'service', address: '10.96.0.10', port: 53, tcpPort: 53 },
      { kind: 'replica', name: 'n1', address: '10.244.0.5', port: 53, tcpPort: 5353 },
    ],
    [
      { kind: 'service', name: 's', candidates: ['s.'], tcp: true },
      { kind: 'pod', name: '', candidates: [], tcp: false },
      { kind: 'external', name: 'e', candidates: ['e.'], tcp: false },
    ],
  );
  t.deepEqual(
    jobs.map((j) => `${j.key}@${j.port}`),
    [
      'service|service|service|udp@53',
      'service|service|service|tcp@53',
      'service|service|external|udp@53',
      'replica|n1|service|udp@53',
      'replica|n1|service|tcp@5353',
      'replica|n1|external|udp@53',
    ],
  );
});

test('replica names: node name, #2 for a second one on a node, replica-n when unknown', (t) => {
  const r = (address: string, node: string, order: string) => ({
    address,
    port: 53,
    tcpPort: 53,
    node,
    order,
  });
  const names = replicaTargets([
    r('10.0.0.3', 'b', 'pod-z'),
    r('10.0.0.1', 'a', 'pod-y'),
    r('10.0.0.2', 'b', 'pod-x'),
    r('10.0.0.4', '', 'pod-w'),
    r('10.0.0.1', 'a', 'pod-y'),
  ]).map((s) => `${s.name}=${s.address}`);
  t.deepEqual(names.sort(), ['a=10.0.0.1', 'b#2=10.0.0.3', 'b=10.0.0.2', 'replica-1=10.0.0.4']);
});
