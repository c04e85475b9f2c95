// The one owner of time. Probes, the scheduler and the window store take a Clock so tests can
// run them on a FakeClock and step time by hand instead of sleeping.

export type TimerHandle = { readonly id: number };

export interface Clock {
  /** Wall-clock milliseconds since the epoch, with sub-millisecond precision. */
  nowMs(): number;
  /** Monotonic nanoseconds; only differences are meaningful. */
  monoNs(): bigint;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/**
 * Real time. Wall time is derived from the monotonic clock plus a fixed origin so that two
 * readings never go backwards when NTP steps the system clock mid-probe.
 */
export class SystemClock implements Clock {
  private readonly originMs = Date.now();
  private readonly originNs = process.hrtime.bigint();
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private nextId = 1;

  nowMs(): number {
    return this.originMs + Number(process.hrtime.bigint() - this.originNs) / 1e6;
  }

  monoNs(): bigint {
    return process.hrtime.bigint();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    const t = setTimeout(
      () => {
        this.timers.delete(id);
        fn();
      },
      Math.max(0, ms),
    );
    this.timers.set(id, t);
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    const t = this.timers.get(handle.id);
    if (t !== undefined) {
      clearTimeout(t);
      this.timers.delete(handle.id);
    }
  }
}

/**
 * Timers rounded to `slotMs` boundaries, one real timer per slot: a thousand probe timers a
 * second become at most 1000/slotMs wake-ups of the event loop. On the 2-vCPU VM the bench runs
 * on, each wake-up of an idle Node thread costs 110-175 µs of CPU, so wake-ups, not the probes,
 * are most of the prober's CPU. Readings of time pass straight through, so measurements keep
 * their full precision.
 *
 * `round`: 'early' (the default) fires timers early by less than one slot, never late: for
 * starting probes, so rounding never shows as scheduling lateness. 'late' fires them late by
 * less than one slot, never early: for timeouts, so a probe is never given less time to answer
 * than configured.
 *
 * `onFire(lateMs)` is told, each time a slot's timer fires, how long after the slot's time it
 * did: the event loop's delay, measured by timers the engine wakes for anyway (no sampling timer
 * of its own, whose wake-ups would cost as much as the probes'; see ProbeEngine).
 */
export class SlottedClock implements Clock {
  private readonly table: SlotTable;

  constructor(
    base: Clock,
    slotMs: number,
    private readonly round: 'early' | 'late' = 'early',
    onFire?: (lateMs: number) => void,
    table?: SlotTable,
  ) {
    this.table = table ?? new SlotTable(base, slotMs, onFire);
  }

  /**
   * The same slots rounded the other way: timers of both share one real timer per slot. Two
   * clocks with tables of their own would each set a timer for the same instant, and as the
   * event loop reads time in whole milliseconds the two can land in separate wake-ups.
   */
  withRound(round: 'early' | 'late'): SlottedClock {
    return new SlottedClock(this.table.base, this.table.slotMs, round, undefined, this.table);
  }

  nowMs(): number {
    return this.table.base.nowMs();
  }

  monoNs(): bigint {
    return this.table.base.monoNs();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const { slotMs } = this.table;
    const now = this.table.base.nowMs();
    const due = now + Math.max(0, ms);
    const slot =
      this.round === 'late'
        ? Math.ceil(due / slotMs) * slotMs
        : Math.max(Math.floor(due / slotMs) * slotMs, Math.ceil(now));
    return { id: this.table.add(slot, now, fn) };
  }

  clearTimeout(handle: TimerHandle): void {
    this.table.remove(handle.id);
  }
}

/** One real timer per slot for every SlottedClock that shares it. */
class SlotTable {
  private readonly slots = new Map<number, { timer: TimerHandle; fns: Map<number, () => void> }>();
  private readonly where = new Map<number, number>();
  private nextId = 1;

  constructor(
    readonly base: Clock,
    readonly slotMs: number,
    private readonly onFire?: (lateMs: number) => void,
  ) {}

  add(slot: number, now: number, fn: () => void): number {
    const id = this.nextId++;
    let s = this.slots.get(slot);
    if (s === undefined) {
      const fns = new Map<number, () => void>();
      const timer = this.base.setTimeout(() => {
        this.onFire?.(Math.max(0, this.base.nowMs() - slot));
        this.slots.delete(slot);
        for (const [fid, f] of fns) {
          this.where.delete(fid);
          f();
        }
      }, slot - now);
      s = { timer, fns };
      this.slots.set(slot, s);
    }
    s.fns.set(id, fn);
    this.where.set(id, slot);
    return id;
  }

  remove(id: number): void {
    const slot = this.where.get(id);
    if (slot === undefined) return;
    this.where.delete(id);
    const s = this.slots.get(slot);
    if (s === undefined) return;
    s.fns.delete(id);
    if (s.fns.size === 0) {
      this.base.clearTimeout(s.timer);
      this.slots.delete(slot);
    }
  }
}
