// The labs' controller: the real Controller over a lab's agents, with the settings every lab
// shares (a round every second, 800 ms to answer, 8 pulls at once: fast enough to time
// detection in seconds) and the lab's own options on top (its triage, Events, plumbing ...).
// One place for that set-up, so a lab says only what it does differently.

import { SystemClock } from '../../src/core/clock.ts';
import {
  Controller,
  StaticDirectory,
  type ControllerOptions,
} from '../../src/controller/controller.ts';
import type { LabAgent } from './lab.ts';

/** What a lab sets itself (its triage, above all); it overrides the shared defaults. */
export type LabControllerOptions = Partial<ControllerOptions>;

/** The directory of a lab's agents, as the controller pulls them. */
export function labDirectory(agents: readonly LabAgent[]): StaticDirectory {
  return new StaticDirectory(
    agents.map((a) => ({ node: a.node.name, network: a.network, url: a.url })),
  );
}

export function labController(
  lab: { readonly agents: readonly LabAgent[] },
  o: LabControllerOptions,
): Controller {
  return new Controller({
    clock: new SystemClock(),
    directory: labDirectory(lab.agents),
    pullIntervalMs: 1000,
    pullConcurrency: 8,
    pullTimeoutMs: 800,
    version: 'lab',
    log: () => undefined,
    ...o,
  });
}
