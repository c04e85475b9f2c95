// A read-only Reflector for what the controller reads once a round (the plumbing Pods, the
// sandbox-error Events, the NetworkPolicies): one place for what they share, the connection,
// clock, log, watchdog and the backoff defaults, and no change callback, since nothing is
// recomputed on a change: the round reads the objects held when it builds its snapshot.

import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import type { Clock } from '../core/clock.ts';
import { Reflector, type DiscoveryLog, type ReflectorOptions } from '../discovery/reflector.ts';

/** What every round-read watch of the controller is given (its watchers' options extend it). */
export interface RoundReflectorOptions {
  readonly kubeConfig: KubeConfig;
  readonly clock: Clock;
  readonly log: DiscoveryLog;
  readonly watchdogMs: number;
  /** Default 1 s, doubling to backoffMaxMs. */
  readonly backoffInitialMs?: number;
  /** Default 30 s. */
  readonly backoffMaxMs?: number;
}

/** Which objects to hold: the collection, its list call, selectors and what to drop. */
export type WatchedResource<T extends KubernetesObject> = Pick<
  ReflectorOptions<T>,
  'resource' | 'path' | 'list' | 'labelSelector' | 'fieldSelector' | 'trim'
>;

export function roundReflector<T extends KubernetesObject>(
  o: RoundReflectorOptions,
  what: WatchedResource<T>,
): Reflector<T> {
  return new Reflector<T>({
    kubeConfig: o.kubeConfig,
    clock: o.clock,
    log: o.log,
    watchdogMs: o.watchdogMs,
    backoffInitialMs: o.backoffInitialMs ?? 1000,
    backoffMaxMs: o.backoffMaxMs ?? 30_000,
    onChange: () => {},
    ...what,
  });
}
