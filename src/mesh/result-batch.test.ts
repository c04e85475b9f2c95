// The packed result batch (engine thread -> main thread): any batch of results comes back as it
// went in, in order, with lateness, STAMP details and failure details; a broken batch is
// refused and counted rather than read as garbage.

import test from 'ava';
import fc from 'fast-check';
import { FAILURE_REASONS, PROBE_KINDS, SIZE_CLASSES, type ProbeResult } from '../core/types.ts';
import { packResults, unpackResults } from './result-batch.ts';

const stamp = fc.record({
  forwardLost: fc.nat(1000),
  reverseLost: fc.nat(1000),
  duplicates: fc.nat(1000),
  reordered: fc.nat(1000),
  reflectorDwellSeconds: fc.double({ min: 0, max: 10, noNaN: true }),
});
const base = {
  peerId: fc.constantFrom('a/pod', 'b/host', 'node-with-a-long-name-0123/pod', 'c/pod'),
  kind: fc.constantFrom(...PROBE_KINDS),
  size: fc.constantFrom(...SIZE_CLASSES),
  sentAtMs: fc.integer({ min: 1_600_000_000_000, max: 2_000_000_000_000 }),
};
const success = fc.record(
  {
    ok: fc.constant(true as const),
    ...base,
    rttSeconds: fc.double({ min: 0, max: 60, noNaN: true }),
    stamp,
  },
  { requiredKeys: ['ok', 'peerId', 'kind', 'size', 'sentAtMs', 'rttSeconds'] },
);
const failure = fc.record(
  {
    ok: fc.constant(false as const),
    ...base,
    reason: fc.constantFrom(...FAILURE_REASONS),
    detail: fc.string(),
    stamp,
  },
  { requiredKeys: ['ok', 'peerId', 'kind', 'size', 'sentAtMs', 'reason'] },
);
const batch = fc.array(
  fc.tuple(
    fc.oneof(success, failure) as fc.Arbitrary<ProbeResult>,
    fc.double({ min: 0, max: 5000, noNaN: true }),
  ),
  { maxLength: 200 },
);

test('any batch unpacks to exactly what was packed, in order', (t) => {
  fc.assert(
    fc.property(batch, (results) => {
      const packed = packResults(results);
      const out: [ProbeResult, number][] = [];
      const unread = unpackResults(packed, (r, late) => out.push([r, late]));
      t.is(unread, 0);
      t.deepEqual(out, results);
      // Each peer id crosses once per batch, however many results it has.
      t.is(packed.peers.length, new Set(results.map(([r]) => r.peerId)).size);
    }),
  );
});

test('the numbers travel in one transferable buffer', (t) => {
  const r: ProbeResult = {
    ok: true,
    peerId: 'a/pod',
    kind: 'udp',
    size: 'small',
    sentAtMs: 1,
    rttSeconds: 0.001,
  };
  const packed = packResults([[r, 0]]);
  const copy = structuredClone(packed, { transfer: [packed.nums.buffer as ArrayBuffer] });
  t.is(packed.nums.byteLength, 0, 'transferred, not copied');
  const out: ProbeResult[] = [];
  unpackResults(copy, (x) => out.push(x));
  t.deepEqual(out, [r]);
});

test('a batch that does not hold together is refused and counted, not read', (t) => {
  const r: ProbeResult = {
    ok: false,
    peerId: 'a/pod',
    kind: 'tcp',
    size: 'small',
    sentAtMs: 1,
    reason: 'refused',
  };
  const good = packResults([
    [r, 0],
    [r, 0],
  ]);
  const seen: ProbeResult[] = [];
  // Cut mid-result.
  t.is(
    unpackResults({ ...good, nums: good.nums.slice(0, good.nums.length - 3) }, (x) => seen.push(x)),
    2,
  );
  // A peer index past the table: the rest of the batch is refused.
  const badPeer = good.nums.slice();
  badPeer[good.nums.length / 2] = 7;
  t.is(
    unpackResults({ ...good, nums: badPeer }, (x) => seen.push(x)),
    1,
  );
  t.is(seen.length, 1);
  t.deepEqual(seen[0], r);
});
