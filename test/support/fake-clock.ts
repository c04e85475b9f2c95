// FakeClock: a Clock that moves only when a test calls advance(), for deterministic scheduler,
// window and discovery tests. Test support, not shipped: production code takes a Clock.

import type { Clock, TimerHandle } from '../../src/core/clock.ts';

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
}

/** A clock that only moves when a test calls advance(); timers fire in time order. */
export class FakeClock implements Clock {
  private current: number;
  private readonly timers: FakeTimer[] = [];
  private nextId = 1;

  constructor(startMs = 1_700_000_000_000) {
    this.current = startMs;
  }

  nowMs(): number {
    return this.current;
  }

  monoNs(): bigint {
    return BigInt(Math.round(this.current * 1e6));
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.timers.push({ id, at: this.current + Math.max(0, ms), fn });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    const i = this.timers.findIndex((t) => t.id === handle.id);
    if (i >= 0) this.timers.splice(i, 1);
  }

  pending(): number {
    return this.timers.length;
  }

  /**
   * Moves time forward by ms, firing due timers in order. Between timers it yields to the
   * microtask queue so promise chains started by one timer settle before the next fires.
   */
  async advance(ms: number): Promise<void> {
    const end = this.current + ms;
    for (;;) {
      await flushMicrotasks();
      let next: FakeTimer | undefined;
      for (const t of this.timers)
        if (t.at <= end && (next === undefined || t.at < next.at)) next = t;
      if (next === undefined) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.current = Math.max(this.current, next.at);
      next.fn();
    }
    this.current = end;
    await flushMicrotasks();
  }
}

async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}
