// Which of a STAMP session's recent sequence numbers have been answered: one bit per number over
// the last `size` the sender sent, in a ring, so a duplicate answer is recognised anywhere in the
// window a late answer is still accepted in, in fixed memory.
//
// Why not a Set of the last N answered numbers (what the UDP probe kept before): at steady state
// every session holds N numbers in a hash set plus an array for their order, about 50 KB per
// peer at N = 1,024. A soak of the agent at 1,000 probes/s to 200 peers (`npm run bench --
// --only=soak`) showed the engine thread's live heap after each full GC climbing from 6.4 to
// 11.4 MB in 6 minutes, and the agent's RSS with it, until every session was full (8.5 minutes
// for a peer answering 2 probes a second, 17 for one answering half of the time): ~10 MB of heap
// for 200 peers, and ~500 KB more per 10 peers. The bits cost size / 8 bytes per peer.

/** A ring of answered bits over the sequence numbers [next − size, next). */
export class AnsweredWindow {
  private readonly bits: Uint32Array;
  private readonly mask: number;
  /** The sequence number the sender sends next (u32). */
  private next = 0;

  /** `size`: a power of two, at least 32. */
  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 32 || (size & (size - 1)) !== 0)
      throw new RangeError(`AnsweredWindow size must be a power of two >= 32, got ${size}`);
    this.bits = new Uint32Array(size >>> 5);
    this.mask = size - 1;
  }

  /**
   * The sender sent `seq` (each number once, in order, u32 wrapping): its bit starts clear. It
   * is the bit `seq − size` had, which leaves the window now.
   */
  sent(seq: number): void {
    const i = (seq >>> 0) & this.mask;
    this.bits[i >>> 5]! &= ~(1 << (i & 31));
    this.next = (seq + 1) >>> 0;
  }

  /** How many numbers back from the next one `seq` is: 1 for the last sent (u32 wrapping). */
  age(seq: number): number {
    return (this.next - seq) | 0;
  }

  /** `seq` was sent within the window. */
  holds(seq: number): boolean {
    const age = this.age(seq);
    return age > 0 && age <= this.size;
  }

  /** `seq` is in the window and was answered. */
  answered(seq: number): boolean {
    if (!this.holds(seq)) return false;
    const i = (seq >>> 0) & this.mask;
    return (this.bits[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  /** Marks `seq` answered; a number outside the window is ignored (nothing to remember). */
  markAnswered(seq: number): void {
    if (!this.holds(seq)) return;
    const i = (seq >>> 0) & this.mask;
    this.bits[i >>> 5]! |= 1 << (i & 31);
  }
}
