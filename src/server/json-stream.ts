// A large JSON body written in pieces rather than built as one string. The controller's matrix
// is 47 MB of JSON at 600 agents and 156 MB at 2,000 (bench section 10): express's res.json
// builds the whole string, then a Buffer copy of it, so every fetch of the web UI held about
// twice the body in memory at once, and two UIs four times. Here the body is cut into pieces
// of a bounded size, each written when the socket has taken the previous ones (backpressure),
// so a fetch holds a few hundred KB whatever the matrix's size; the CPU is the same.
//
// The bytes are exactly JSON.stringify(value)'s: the top-level object's keys in their order,
// each value stringified whole except arrays, which are stringified a slice at a time and
// joined (JSON.stringify of a slice, brackets removed, is that slice's part of the array's
// text: the same rules for holes, undefined and toJSON).

import type { Response } from 'express';

/** Elements of a top-level array per piece: ~250-500 KB of matrix cells. */
const ELEMENTS_PER_PIECE = 1000;

/**
 * The pieces of JSON.stringify(value) for a plain object `value` (anything else: one piece).
 * Lazy: a piece is made when asked for, so only the one being written is in memory.
 */
export function* jsonPieces(value: unknown, perPiece = ELEMENTS_PER_PIECE): Generator<string> {
  if (
    value === null ||
    typeof value !== 'object' ||
    Array.isArray(value) ||
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  ) {
    yield JSON.stringify(value);
    return;
  }
  yield '{';
  let first = true;
  for (const [key, v] of Object.entries(value)) {
    // What JSON.stringify leaves out of an object.
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    yield `${first ? '' : ','}${JSON.stringify(key)}:`;
    first = false;
    if (!Array.isArray(v) || v.length <= perPiece) {
      yield JSON.stringify(v);
      continue;
    }
    yield '[';
    for (let i = 0; i < v.length; i += perPiece) {
      const part = JSON.stringify(v.slice(i, i + perPiece));
      yield `${i === 0 ? '' : ','}${part.slice(1, -1)}`;
    }
    yield ']';
  }
  yield '}';
}

/**
 * Answers with `value` as JSON (res.json's status, Content-Type and bytes), written piece by
 * piece; stops early when the client goes away.
 */
export async function sendJsonStreamed(res: Response, value: unknown): Promise<void> {
  res.status(200).type('application/json; charset=utf-8');
  if (res.req.method === 'HEAD') {
    res.end();
    return;
  }
  let gone = false;
  const onClose = (): void => {
    gone = true;
  };
  res.once('close', onClose);
  try {
    // Several small pieces make one write of up to ~64 KB: fewer syscalls and chunk headers.
    let pending = '';
    for (const piece of jsonPieces(value)) {
      if (gone) return;
      pending += piece;
      if (pending.length < 65_536) continue;
      const more = res.write(pending);
      pending = '';
      if (!more) await drained(res);
    }
    if (!gone) res.end(pending);
  } finally {
    res.off('close', onClose);
  }
}

function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
