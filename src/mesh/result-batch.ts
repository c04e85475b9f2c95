// Probe results packed for the trip from the engine thread to the main thread: numbers in one
// Float64Array (handed over, not copied), peer ids once per batch, failure details on the side.
// A thousand results a second as plain objects cost the structured clone on both threads and
// left a thousand short-lived objects a second for the main thread's garbage collector.

import {
  FAILURE_REASONS,
  PROBE_KINDS,
  SIZE_CLASSES,
  type FailureReason,
  type ProbeResult,
  type StampDetail,
} from '../core/types.ts';

/** One packed batch; plain data, so it crosses postMessage (transfer `nums.buffer`). */
export interface PackedResults {
  /** Peer ids the batch refers to, by index. */
  readonly peers: string[];
  /** FIELDS numbers per result. */
  readonly nums: Float64Array;
  /** [result index, detail] for failures that carry a detail string. */
  readonly details: [number, string][];
}

const PEER = 0;
const KIND = 1;
const SIZE = 2;
const SENT_AT = 3;
/** 1 success, 0 failure. */
const OK = 4;
/** RTT in seconds for a success, the index in FAILURE_REASONS for a failure. */
const VALUE = 5;
/** 1 when the STAMP fields below are present. */
const HAS_STAMP = 6;
const FWD = 7;
const REV = 8;
const DUP = 9;
const REO = 10;
const DWELL = 11;
const LATE = 12;
const FIELDS = 13;

/** Packs results with their scheduling lateness. */
export function packResults(batch: readonly (readonly [ProbeResult, number])[]): PackedResults {
  const peers: string[] = [];
  const peerIndex = new Map<string, number>();
  const nums = new Float64Array(batch.length * FIELDS);
  const details: [number, string][] = [];
  for (let k = 0; k < batch.length; k++) {
    const [r, late] = batch[k]!;
    let p = peerIndex.get(r.peerId);
    if (p === undefined) {
      p = peers.length;
      peers.push(r.peerId);
      peerIndex.set(r.peerId, p);
    }
    const o = k * FIELDS;
    nums[o + PEER] = p;
    nums[o + KIND] = PROBE_KINDS.indexOf(r.kind);
    nums[o + SIZE] = SIZE_CLASSES.indexOf(r.size);
    nums[o + SENT_AT] = r.sentAtMs;
    nums[o + LATE] = late;
    if (r.ok) {
      nums[o + OK] = 1;
      nums[o + VALUE] = r.rttSeconds;
    } else {
      nums[o + VALUE] = FAILURE_REASONS.indexOf(r.reason);
      if (r.detail !== undefined) details.push([k, r.detail]);
    }
    const st = r.stamp;
    if (st !== undefined) {
      nums[o + HAS_STAMP] = 1;
      nums[o + FWD] = st.forwardLost;
      nums[o + REV] = st.reverseLost;
      nums[o + DUP] = st.duplicates;
      nums[o + REO] = st.reordered;
      nums[o + DWELL] = st.reflectorDwellSeconds;
    }
  }
  return { peers, nums, details };
}

/**
 * Calls `sink` with each result of a packed batch, in order. A batch that doesn't hold
 * together (it came from this program's own engine thread, so that would be a bug) is dropped
 * whole and reported through the return value: the number of results it could not read.
 */
export function unpackResults(
  b: PackedResults,
  sink: (r: ProbeResult, latenessMs: number) => void,
): number {
  const n = b.nums.length / FIELDS;
  if (!Number.isInteger(n)) return Math.ceil(n);
  const details = new Map(b.details);
  for (let k = 0; k < n; k++) {
    const o = k * FIELDS;
    const peerId = b.peers[b.nums[o + PEER]!];
    const kind = PROBE_KINDS[b.nums[o + KIND]!];
    const size = SIZE_CLASSES[b.nums[o + SIZE]!];
    if (peerId === undefined || kind === undefined || size === undefined) return n - k;
    const sentAtMs = b.nums[o + SENT_AT]!;
    const stamp: StampDetail | undefined =
      b.nums[o + HAS_STAMP] === 1
        ? {
            forwardLost: b.nums[o + FWD]!,
            reverseLost: b.nums[o + REV]!,
            duplicates: b.nums[o + DUP]!,
            reordered: b.nums[o + REO]!,
            reflectorDwellSeconds: b.nums[o + DWELL]!,
          }
        : undefined;
    let r: ProbeResult;
    if (b.nums[o + OK] === 1) {
      r = { ok: true, peerId, kind, size, sentAtMs, rttSeconds: b.nums[o + VALUE]! };
    } else {
      const reason: FailureReason = FAILURE_REASONS[b.nums[o + VALUE]!] ?? 'error';
      const detail = details.get(k);
      r = {
        ok: false,
        peerId,
        kind,
        size,
        sentAtMs,
        reason,
        ...(detail !== undefined ? { detail } : {}),
      };
    }
    if (stamp !== undefined) r = { ...r, stamp };
    sink(r, b.nums[o + LATE]!);
  }
  return 0;
}
