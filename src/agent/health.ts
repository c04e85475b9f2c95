// The agent's own state for the probes that ask about it: readiness (a Service routes peers'
// probes here only once the first peer list is in, and no longer while shutting down) and the
// `self` section of the results row (how punctual the prober is, how busy its event loops are).

import type { AgentRow } from '../api/agent-row.ts';
import type { Punctuality } from '../store/late-window.ts';

export class Readiness {
  private gotPeers = false;
  private stopping = false;

  /** Marks the first peer list in; true if this is it. */
  peersArrived(): boolean {
    const first = !this.gotPeers;
    this.gotPeers = true;
    return first;
  }

  stop(): void {
    this.stopping = true;
  }

  get stopped(): boolean {
    return this.stopping;
  }

  isReady(): boolean {
    return this.gotPeers && !this.stopping;
  }

  notReadyReason(): string {
    return this.stopping ? 'shutting down' : 'waiting for the first peer list';
  }
}

/** The prober's own health over the window. */
export function selfHealth(
  late: Punctuality,
  mainLoopP99: number | null,
  engineLoopP99: number | null,
): AgentRow['self'] {
  return {
    lateRatio: late.lateRatio,
    latenessP99Seconds: late.latenessP99Seconds,
    eventLoopP99Seconds: { main: mainLoopP99, engine: engineLoopP99 },
  };
}
