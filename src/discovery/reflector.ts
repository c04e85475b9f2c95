// The reflector: one Kubernetes resource kept in sync in memory, for a process that runs for
// months against an API server that goes away. It wraps @kubernetes/client-node's ListWatch
// with what that lacks for a long-running agent: restart on error with capped exponential
// backoff, a watchdog that replaces a watch gone silent, a watch that can be cut off for good
// while its request is still being set up, and a cache that only drops an object when the
// server says so. Generic over the resource; kubernetes.ts decides which resources and what
// they mean for podmesh. client-node's makeInformer() builds the same ListWatch but on a plain
// Watch of its own, which could neither be cut off nor trim objects, so ListWatch is used directly.

import {
  ListWatch,
  Watch,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { Clock, TimerHandle } from '../core/clock.ts';

/** The slice of a pino logger discovery uses; pino's Logger fits. */
export interface DiscoveryLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** How one resource is keeping in sync; the agent exports it as discovery metrics. */
export interface ResourceSyncStats {
  readonly resource: string;
  readonly synced: boolean;
  /** Wall time of the last successful list or watch event; undefined before the first. */
  readonly lastSyncMs: number | undefined;
  /** Informer restarts after an error. */
  readonly errorRestarts: number;
  /** Informer restarts because the watch went silent. */
  readonly watchdogRestarts: number;
  /** Full lists served (the first one included). */
  readonly lists: number;
}

export interface ReflectorOptions<T extends KubernetesObject> {
  readonly resource: string;
  readonly kubeConfig: KubeConfig;
  /** Collection path the watch goes to. */
  readonly path: string;
  readonly labelSelector?: string;
  /** Server-side field selector for the watch (the list function applies its own). */
  readonly fieldSelector?: string;
  readonly list: () => Promise<KubernetesListObject<T>>;
  /** Drops fields we never read before the object is cached (by us and by the informer). */
  readonly trim?: (o: T) => void;
  readonly clock: Clock;
  readonly log: DiscoveryLog;
  readonly watchdogMs: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly onChange: () => void;
}

/**
 * A Watch that remembers its requests so a superseded informer can be cut off for good: the
 * client's ListWatch.stop() misses a watch whose request is still being set up.
 */
class TrackedWatch extends Watch {
  private readonly controllers = new Set<AbortController>();
  private killed = false;

  constructor(
    kc: KubeConfig,
    private readonly hooks: {
      /** Every event the server sends, bookmarks included. */
      readonly event: (phase: string) => void;
      /** The server accepted a watch (200) and is streaming. */
      readonly established: () => void;
      readonly trim: (obj: unknown) => void;
    },
  ) {
    super(kc);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    let ended = false;
    const c = await super.watch(
      path,
      queryParams,
      (phase, obj, raw) => {
        if (this.killed) return;
        this.hooks.event(phase);
        if (phase !== 'ERROR' && phase !== 'BOOKMARK') this.hooks.trim(obj);
        callback(phase, obj, raw);
      },
      (err) => {
        ended = true;
        done(err);
      },
    );
    if (this.killed) c.abort();
    else {
      this.controllers.add(c);
      // A refused watch has already called done by now; one still open was answered 200.
      if (!ended) this.hooks.established();
    }
    return c;
  }

  kill(): void {
    this.killed = true;
    for (const c of this.controllers) c.abort();
    this.controllers.clear();
  }
}

/** What the source needs from a Reflector of any resource type. */
export interface ReflectorHandle {
  readonly lastSyncMs: number | undefined;
  start(): void;
  stop(): void;
  stats(): ResourceSyncStats;
}

class SupersededError extends Error {
  constructor() {
    super('informer superseded');
  }
}

/**
 * One resource kept in sync: a client-node ListWatch plus what it lacks for a long-running
 * agent — restart on error with capped exponential backoff, and a watchdog for silent watches.
 * After an error the same informer resumes its watch from the last resourceVersion, as
 * client-go does, so a dropped connection or an API server restart costs no full list (the
 * server answers 410 if that version is too old, and the informer lists then). A watch the
 * watchdog gives up on can't be trusted to end quietly, so that one is replaced by a fresh
 * informer that lists first. Either way objects only go when the server says so.
 */
export class Reflector<T extends KubernetesObject> implements ReflectorHandle {
  objects = new Map<string, T>();
  synced = false;
  lastSyncMs: number | undefined;
  private lastActivityMs = 0;
  private startedAtMs = 0;
  private backoffMs: number;
  private generation = 0;
  private live: { gen: number; informer: ListWatch<T>; watch: TrackedWatch } | undefined;
  private retryTimer: TimerHandle | undefined;
  private watchdogTimer: TimerHandle | undefined;
  private stopped = true;
  private errorRestarts = 0;
  private watchdogRestarts = 0;
  private lists = 0;
  private failing = false;
  private readonly watchPath: string;

  constructor(private readonly o: ReflectorOptions<T>) {
    this.backoffMs = o.backoffInitialMs;
    // Ask the server to end each watch before the watchdog would: a healthy watch then
    // reconnects on its own schedule, and bookmarks keep a quiet one's resourceVersion fresh.
    // client-node's Watch appends its own parameters to whatever query the path carries.
    const timeoutSeconds = Math.max(1, Math.floor(o.watchdogMs / 2000));
    this.watchPath = `${o.path}?allowWatchBookmarks=true&timeoutSeconds=${timeoutSeconds}`;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.launch();
  }

  stop(): void {
    this.stopped = true;
    this.retire();
    if (this.retryTimer !== undefined) this.o.clock.clearTimeout(this.retryTimer);
    if (this.watchdogTimer !== undefined) this.o.clock.clearTimeout(this.watchdogTimer);
    this.retryTimer = undefined;
    this.watchdogTimer = undefined;
  }

  stats(): ResourceSyncStats {
    return {
      resource: this.o.resource,
      synced: this.synced,
      lastSyncMs: this.lastSyncMs,
      errorRestarts: this.errorRestarts,
      watchdogRestarts: this.watchdogRestarts,
      lists: this.lists,
    };
  }

  private launch(): void {
    const gen = ++this.generation;
    const isLive = (): boolean => this.live?.gen === gen && !this.stopped;
    const watch = new TrackedWatch(this.o.kubeConfig, {
      event: (phase) => {
        if (!isLive()) return;
        this.touch();
        if (phase !== 'ERROR' && this.synced) this.markSynced();
      },
      // The server took our resourceVersion and streams from it: we are in sync now.
      established: () => {
        if (!isLive()) return;
        this.touch();
        if (this.synced) this.markSynced();
      },
      trim: (obj) => this.o.trim?.(obj as T),
    });
    const listFn = async (): Promise<KubernetesListObject<T>> => {
      const list = await this.o.list();
      // A list that finishes after a restart must not start a second watch.
      if (!isLive()) throw new SupersededError();
      if (this.o.trim !== undefined) for (const o of list.items) this.o.trim(o);
      this.replaceAll(list.items);
      return list;
    };
    const informer = new ListWatch<T>(
      this.watchPath,
      watch,
      listFn,
      false,
      this.o.labelSelector,
      this.o.fieldSelector,
    );
    informer.on('add', (obj) => isLive() && this.upsert(obj));
    informer.on('update', (obj) => isLive() && this.upsert(obj));
    informer.on('delete', (obj) => isLive() && this.remove(obj));
    // "connect" fires on the first start and when a watch the server ended cleanly resumes.
    informer.on('connect', () => isLive() && this.touch());
    informer.on('error', (err) => isLive() && this.failed(err));
    this.live = { gen, informer, watch };
    this.startedAtMs = this.o.clock.nowMs();
    this.touch();
    this.armWatchdog();
    informer.start().catch((err: unknown) => isLive() && this.failed(err));
  }

  /** Cuts the current informer off; its late callbacks are ignored by generation. */
  private retire(): void {
    const live = this.live;
    this.live = undefined;
    if (live === undefined) return;
    live.watch.kill();
    live.informer.stop().catch(() => {});
  }

  private failed(err: unknown): void {
    // One failure, one retry: a second report of the same failure changes nothing.
    if (this.stopped || this.retryTimer !== undefined) return;
    const now = this.o.clock.nowMs();
    // An informer that ran fine for a while before failing starts the backoff afresh.
    if (now - this.startedAtMs >= this.o.backoffMaxMs) this.backoffMs = this.o.backoffInitialMs;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.o.backoffMaxMs);
    this.errorRestarts++;
    const fields = { resource: this.o.resource, retryInMs: delay, err: describeError(err) };
    // The first failure is news; the retries of an ongoing outage are not.
    if (this.failing) this.o.log.debug(fields, 'kubernetes informer still failing');
    else this.o.log.warn(fields, 'kubernetes informer failed; keeping the last known state');
    this.failing = true;
    this.retryTimer = this.o.clock.setTimeout(() => {
      this.retryTimer = undefined;
      if (this.stopped) return;
      const live = this.live;
      if (live === undefined) {
        this.launch();
        return;
      }
      // The client's ListWatch stops itself after an error; start() resumes the watch from
      // its resourceVersion, or lists if it has none.
      this.startedAtMs = this.o.clock.nowMs();
      this.touch();
      this.armWatchdog();
      live.informer.start().catch((e: unknown) => this.live === live && this.failed(e));
    }, delay);
  }

  private armWatchdog(): void {
    if (this.watchdogTimer !== undefined) this.o.clock.clearTimeout(this.watchdogTimer);
    const due = this.lastActivityMs + this.o.watchdogMs - this.o.clock.nowMs();
    this.watchdogTimer = this.o.clock.setTimeout(() => this.checkWatchdog(), Math.max(1, due));
  }

  private checkWatchdog(): void {
    this.watchdogTimer = undefined;
    // Only a running informer is watched; one waiting out a backoff re-arms when it resumes.
    if (this.stopped || this.live === undefined || this.retryTimer !== undefined) return;
    const silentMs = this.o.clock.nowMs() - this.lastActivityMs;
    if (silentMs < this.o.watchdogMs) {
      this.armWatchdog();
      return;
    }
    this.watchdogRestarts++;
    this.o.log.warn(
      { resource: this.o.resource, silentMs },
      'kubernetes watch silent for too long; restarting it',
    );
    this.retire();
    this.launch();
  }

  private touch(): void {
    this.lastActivityMs = this.o.clock.nowMs();
  }

  private markSynced(): void {
    this.lastSyncMs = this.o.clock.nowMs();
    if (this.failing) {
      this.failing = false;
      this.o.log.info({ resource: this.o.resource }, 'kubernetes informer recovered');
    }
  }

  private replaceAll(items: readonly T[]): void {
    const next = new Map<string, T>();
    for (const o of items) next.set(keyOf(o), o);
    this.objects = next;
    this.synced = true;
    this.lists++;
    this.touch();
    this.markSynced();
    this.o.onChange();
  }

  private upsert(obj: T): void {
    const key = keyOf(obj);
    const prev = this.objects.get(key);
    // The informer replays a fresh list as adds; those we already hold.
    if (prev !== undefined && prev.metadata?.resourceVersion === obj.metadata?.resourceVersion)
      return;
    this.objects.set(key, obj);
    this.o.onChange();
  }

  private remove(obj: T): void {
    if (this.objects.delete(keyOf(obj))) this.o.onChange();
  }
}

function keyOf(o: KubernetesObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

/** An error for a log line, with the HTTP status or errno code when it carries one. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const e = err as { statusCode?: unknown; code?: unknown };
    const code = e.statusCode ?? e.code;
    return typeof code === 'number' || typeof code === 'string'
      ? `${err.message} (${code})`
      : err.message;
  }
  return String(err);
}
