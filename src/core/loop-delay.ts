// Event-loop delay as podmesh reports it: how much later than asked the loop came round, not
// counting the sampling tick itself. Node's monitorEventLoopDelay records the whole interval
// between its timer's firings, so an idle loop sampled every 50 ms reads 50 ms; exported as is,
// that put a permanent 50 ms floor under podmesh_event_loop_delay_seconds and under the
// "prober starved" check (threshold 250 ms), which then fired on 200 ms of real delay.

import {
  createHistogram,
  monitorEventLoopDelay,
  type IntervalHistogram,
  type RecordableHistogram,
} from 'node:perf_hooks';

/** How often the loop is sampled: rare enough to cost nothing, often enough for a p99. */
export const LOOP_DELAY_RESOLUTION_MS = 50;

export interface LoopDelayQuantiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

/** A monitor of this thread's event loop, not yet enabled (see loopDelayQuantiles). */
export function loopDelayMonitor(): IntervalHistogram {
  return monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
}

/** One quantile (0-100) in seconds, the tick taken out; 0 before any sample. */
export function loopDelaySeconds(
  h: Pick<IntervalHistogram, 'percentile' | 'count'>,
  percentile: number,
  resolutionMs = LOOP_DELAY_RESOLUTION_MS,
): number {
  if (h.count === 0) return 0;
  return Math.max(0, h.percentile(percentile) / 1e9 - resolutionMs / 1000);
}

/** p50, p90 and p99 in seconds, the tick taken out. */
export function loopDelayQuantiles(
  h: Pick<IntervalHistogram, 'percentile' | 'count'>,
  resolutionMs = LOOP_DELAY_RESOLUTION_MS,
): LoopDelayQuantiles {
  return {
    p50: loopDelaySeconds(h, 50, resolutionMs),
    p90: loopDelaySeconds(h, 90, resolutionMs),
    p99: loopDelaySeconds(h, 99, resolutionMs),
  };
}

/**
 * Loop delay from timers the thread sets anyway: `record(lateMs)` for each timer, with how long
 * after its due time it fired. The probe engine's slot timers fire every slot while it probes,
 * so this sees what a monitor would without a timer of its own (a monitor's 20 wake-ups a
 * second cost as much CPU as the engine's own). Read it like a monitor with no tick:
 * loopDelayQuantiles(h, 0).
 */
export interface TimerLateness {
  readonly histogram: RecordableHistogram;
  readonly record: (lateMs: number) => void;
}

/** Up to an hour late, in ns; two significant digits (1%) is all a p99 of lateness needs. */
const LATENESS_MAX_NS = 3_600e9;

export function timerLateness(): TimerLateness {
  const histogram = createHistogram({ lowest: 1, highest: LATENESS_MAX_NS, figures: 2 });
  return {
    histogram,
    // The histogram takes whole numbers >= 1: nanoseconds, 1 ns standing for "on time".
    record: (lateMs) =>
      histogram.record(Math.min(LATENESS_MAX_NS, Math.max(1, Math.round(lateMs * 1e6)))),
  };
}
