// The one key of a (peer, probe kind, size) pair: the scheduler's job key, the window store's
// series key and the metrics recorder's cache key are all this string. It is only ever built,
// never split back apart: whoever needs the parts keeps them next to it (a Job carries its
// target, a window series its peer, kind and size).

import type { ProbeKind, SizeClass } from './types.ts';

export function pairKey(peerId: string, kind: ProbeKind, size: SizeClass): string {
  return `${peerId}|${kind}|${size}`;
}
