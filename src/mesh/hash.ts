// The hashes behind peer selection, the watcher ring and the rotation schedule: every agent and
// any other process (the bench, a controller) must compute the same numbers from the same names,
// so they are plain 32-bit integer arithmetic in JavaScript, no platform or library in between.
//
// Why not SHA-256 (what select.ts used, inside its sort comparator): selection hashes every
// candidate against this agent, 10,000 candidates at 5,000 nodes. Measured on a 2 vCPU VM
// (`npm run bench -- --only=selection` prints it again): one node:crypto createHash('sha256')
// of a (node, peer) pair costs 2.3-2.7 µs, FNV-1a over the same bytes plus the finaliser below
// 0.16-0.19 µs. Rendezvous hashing needs scores that are uniform and independent between agents,
// not collision-proof against an adversary (an attacker who controls node names controls the
// cluster), so a well-mixed non-cryptographic hash is enough. Plain FNV-1a is not well mixed in
// its high bits for names that differ only at the end (node-1, node-2, ...): the murmur3
// finaliser (fmix32) fixes that: the bench's chi-square of 100,000 scores over 64 buckets is
// 63.2 (a uniform hash: 63 ± 11).

/** FNV-1a, 32 bits, over the UTF-16 code units of s (names are ASCII in practice). */
export function fnv1a32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's 32-bit finaliser: every input bit flips each output bit with probability ~1/2. */
export function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A name's own hash, computed once per name and combined with others by pairScore(). */
export function nameHash(s: string): number {
  return fmix32(fnv1a32(s));
}

/**
 * The rendezvous score of (a, b) from their name hashes: mixed so that the order of b's under
 * one a says nothing about their order under another a. Not symmetric: (a, b) ≠ (b, a).
 */
export function pairScore(a: number, b: number): number {
  return fmix32((Math.imul(a, 0x9e3779b1) ^ b) + 0x7f4a7c15);
}
