// A small Kubernetes API server for tests. It speaks the real list/watch protocol (global
// resourceVersion, NDJSON watch streams, bookmarks, 410 Gone for a compacted version, label and
// field selectors) for the few resources podmesh uses, so the real @kubernetes/client-node can
// be pointed at it. Test controls simulate what goes wrong with a real one: compaction, dropped
// or cleanly ended watches, outages, and watches that hang without a word.

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

/** A Kubernetes object as plain JSON; only kind and metadata are looked at generically. */
export interface KObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    generateName?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

interface ResourceDef {
  readonly plural: string;
  readonly kind: string;
  readonly group: string;
  readonly apiVersion: string;
  readonly namespaced: boolean;
}

const RESOURCES: readonly ResourceDef[] = [
  { plural: 'pods', kind: 'Pod', group: '', apiVersion: 'v1', namespaced: true },
  { plural: 'nodes', kind: 'Node', group: '', apiVersion: 'v1', namespaced: false },
  { plural: 'events', kind: 'Event', group: '', apiVersion: 'v1', namespaced: true },
  { plural: 'configmaps', kind: 'ConfigMap', group: '', apiVersion: 'v1', namespaced: true },
  {
    plural: 'endpointslices',
    kind: 'EndpointSlice',
    group: 'discovery.k8s.io',
    apiVersion: 'discovery.k8s.io/v1',
    namespaced: true,
  },
  {
    plural: 'networkpolicies',
    kind: 'NetworkPolicy',
    group: 'networking.k8s.io',
    apiVersion: 'networking.k8s.io/v1',
    namespaced: true,
  },
];
const BY_PLURAL = new Map(RESOURCES.map((r) => [r.plural, r]));
const BY_KIND = new Map(RESOURCES.map((r) => [r.kind, r]));

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface HistoryEntry {
  readonly rv: number;
  readonly def: ResourceDef;
  readonly type: EventType;
  readonly object: KObject;
  /** The state before a MODIFIED or DELETED, to tell selector enter/leave transitions. */
  readonly previous: KObject | undefined;
}

interface WatchConn {
  readonly def: ResourceDef;
  readonly namespace: string | undefined;
  readonly labels: Selector;
  readonly fields: Selector;
  readonly bookmarks: boolean;
  readonly res: ServerResponse;
  /** Every event up to this resourceVersion has been sent (or filtered out). */
  cursor: number;
  /** Synthetic ADDED events for a watch started without a resourceVersion. */
  initial: KObject[];
  timer: NodeJS.Timeout | undefined;
  closed: boolean;
}

type Selector = (obj: KObject) => boolean;

export type PauseMode = 'refuse' | '503';

export interface FakeApiServerOptions {
  /** Bearer token the server requires; requests without it get 401. */
  readonly token?: string;
  /** Most watch events kept for resuming watches; older versions answer 410 Gone. */
  readonly maxHistory?: number;
  /** Address to listen on; default 127.0.0.1 (the network lab uses its root-side address). */
  readonly host?: string;
}

export class FakeApiServer {
  readonly token: string;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly store = new Map<string, Map<string, KObject>>();
  private history: HistoryEntry[] = [];
  private readonly watches = new Set<WatchConn>();
  private readonly counters = new Map<string, number>();
  private readonly createdObjects: KObject[] = [];
  private readonly patchesMade: {
    kind: string;
    name: string;
    subresource?: string;
    type: string;
    body: KObject;
  }[] = [];
  private readonly maxHistory: number;
  private rv = 1;
  /** Watches from a resourceVersion below this get 410 Gone. */
  private compactedRv = 1;
  private paused: PauseMode | undefined;
  private silenced = false;
  port = 0;
  readonly host: string;

  private constructor(opts: FakeApiServerOptions) {
    this.token = opts.token ?? 'test-token';
    this.host = opts.host ?? '127.0.0.1';
    this.maxHistory = opts.maxHistory ?? 10_000;
    for (const r of RESOURCES) this.store.set(r.plural, new Map());
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (sock) => {
      if (this.paused === 'refuse') {
        sock.destroy();
        return;
      }
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
    });
  }

  static async start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const s = new FakeApiServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(0, opts.host ?? '127.0.0.1', () => resolve());
    });
    const addr = s.server.address();
    s.port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    return s;
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** A kubeconfig file's text for this server (for agents started as separate processes). */
  kubeConfigYaml(namespace = 'default'): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: fake\n  cluster:\n    server: ${this.url}\n    insecure-skip-tls-verify: true`,
      'users:',
      `- name: tester\n  user:\n    token: ${this.token}`,
      'contexts:',
      `- name: fake\n  context:\n    cluster: fake\n    user: tester\n    namespace: ${namespace}`,
      'current-context: fake',
      '',
    ].join('\n');
  }

  /** A client configuration for this server, the way a kubeconfig file would describe it. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'tester', token: this.token }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'tester', namespace: 'default' }],
      currentContext: 'fake',
    });
    return kc;
  }

  async close(): Promise<void> {
    for (const w of this.watches) this.closeWatch(w, false);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- test controls -------------------------------------------------------------------

  /** Creates or replaces an object (by kind, namespace and name); returns the stored copy. */
  upsert(input: KObject): KObject {
    const def = defOfKind(input.kind);
    const obj = structuredClone(input);
    obj.apiVersion = def.apiVersion;
    const meta = (obj.metadata ??= {});
    if (meta.name === undefined || meta.name === '') {
      if (meta.generateName === undefined) throw new Error('object without metadata.name');
      meta.name = meta.generateName + randomUUID().slice(0, 5);
    }
    if (def.namespaced) meta.namespace ??= 'default';
    else delete meta.namespace;
    const key = keyOf(meta.namespace, meta.name);
    const objects = this.objects(def);
    const previous = objects.get(key);
    meta.uid = previous?.metadata?.uid ?? meta.uid ?? randomUUID();
    meta.creationTimestamp =
      previous?.metadata?.creationTimestamp ??
      meta.creationTimestamp ??
      new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    meta.resourceVersion = String(++this.rv);
    objects.set(key, obj);
    this.record(def, previous === undefined ? 'ADDED' : 'MODIFIED', obj, previous);
    return structuredClone(obj);
  }

  /** Changes a stored object in place (a new resourceVersion, a MODIFIED event). */
  patch(
    kind: string,
    namespace: string | undefined,
    name: string,
    fn: (o: KObject) => void,
  ): KObject {
    const cur = this.get(kind, namespace, name);
    if (cur === undefined) throw new Error(`no ${kind} ${keyOf(namespace, name)}`);
    fn(cur);
    return this.upsert(cur);
  }

  remove(kind: string, namespace: string | undefined, name: string): boolean {
    const def = defOfKind(kind);
    const objects = this.objects(def);
    const key = keyOf(def.namespaced ? namespace : undefined, name);
    const previous = objects.get(key);
    if (previous === undefined) return false;
    objects.delete(key);
    const obj = structuredClone(previous);
    obj.metadata = { ...obj.metadata, resourceVersion: String(++this.rv) };
    this.record(def, 'DELETED', obj, previous);
    return true;
  }

  get(kind: string, namespace: string | undefined, name: string): KObject | undefined {
    const def = defOfKind(kind);
    const o = this.objects(def).get(keyOf(def.namespaced ? namespace : undefined, name));
    return o === undefined ? undefined : structuredClone(o);
  }

  /** The current global resourceVersion. */
  resourceVersion(): number {
    return this.rv;
  }

  /**
   * Forgets the watch history up to `upTo` (default: now), like etcd compaction: a watch that
   * asks to resume from an older version is answered 410 Gone and must list again.
   */
  compact(upTo = this.rv): void {
    this.compactedRv = Math.max(this.compactedRv, Math.min(upTo, this.rv));
    this.history = this.history.filter((e) => e.rv > this.compactedRv);
    // Open watches that had not yet been sent what was just forgotten can't continue either.
    for (const w of this.watches) this.pump(w);
  }

  /** Sends a BOOKMARK with the current resourceVersion to every watch that asked for them. */
  sendBookmarks(): number {
    let n = 0;
    for (const w of [...this.watches]) {
      if (!w.bookmarks || this.silenced || w.closed) continue;
      this.pump(w);
      if (w.closed) continue;
      w.cursor = this.rv;
      this.write(w, {
        type: 'BOOKMARK',
        object: {
          kind: w.def.kind,
          apiVersion: w.def.apiVersion,
          metadata: { resourceVersion: String(this.rv) },
        },
      });
      n++;
    }
    return n;
  }

  /** Ends every open watch cleanly, as the server does when a watch's timeout expires. */
  endWatches(): number {
    const all = [...this.watches];
    for (const w of all) this.closeWatch(w, false);
    return all.length;
  }

  /** Destroys every open watch connection mid-stream (no clean end of the response). */
  dropWatches(): number {
    const all = [...this.watches];
    for (const w of all) this.closeWatch(w, true);
    return all.length;
  }

  /**
   * An outage: open watches are cut and new requests are refused at connect ("refuse") or
   * answered 503 ("503") until resume().
   */
  pause(mode: PauseMode = 'refuse'): void {
    this.paused = mode;
    this.dropWatches();
    if (mode === 'refuse') for (const s of this.sockets) s.destroy();
  }

  resume(): void {
    this.paused = undefined;
  }

  /**
   * Watches stay open but receive nothing (no events, bookmarks or timeout), like a
   * half-open connection. Lists still work. unsilence() delivers what was held back.
   */
  silence(): void {
    this.silenced = true;
  }

  unsilence(): void {
    this.silenced = false;
    for (const w of [...this.watches]) this.pump(w);
  }

  /** Requests seen so far; `verb` is list, watch, get, create or delete. */
  count(verb: string, plural?: string): number {
    let n = 0;
    for (const [k, v] of this.counters) {
      const [kv, kp] = k.split(' ');
      if (kv === verb && (plural === undefined || kp === plural)) n += v;
    }
    return n;
  }

  listCount(plural?: string): number {
    return this.count('list', plural);
  }

  watchCount(plural?: string): number {
    return this.count('watch', plural);
  }

  openWatches(plural?: string): number {
    let n = 0;
    for (const w of this.watches) if (plural === undefined || w.def.plural === plural) n++;
    return n;
  }

  /** Objects created through the API (POST), e.g. the Events a controller writes. */
  created(kind?: string): KObject[] {
    return this.createdObjects
      .filter((o) => kind === undefined || o.kind === kind)
      .map((o) => structuredClone(o));
  }

  // ---- protocol ------------------------------------------------------------------------

  private objects(def: ResourceDef): Map<string, KObject> {
    const m = this.store.get(def.plural);
    if (m === undefined) throw new Error(`no store for ${def.plural}`);
    return m;
  }

  private record(def: ResourceDef, type: EventType, object: KObject, previous?: KObject): void {
    this.history.push({ rv: this.rv, def, type, object, previous });
    if (this.history.length > this.maxHistory) {
      const drop = this.history.length - this.maxHistory;
      this.compactedRv = this.history[drop - 1]?.rv ?? this.compactedRv;
      this.history = this.history.slice(drop);
    }
    for (const w of [...this.watches]) if (w.def === def) this.pump(w);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.paused === 'refuse') {
      req.socket.destroy();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const m =
      /^\/(?:api\/v1|apis\/([^/]+)\/v1)(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+)(?:\/(status))?)?$/.exec(
        url.pathname,
      );
    const def = m?.[3] === undefined ? undefined : BY_PLURAL.get(m[3]);
    const group = m?.[1] ?? '';
    const namespace = m?.[2];
    const name = m?.[4];
    /** The only subresource served: status, and only for PATCH. */
    const subresource = m?.[5];
    const method = req.method ?? 'GET';
    const watching = ['true', '1'].includes(url.searchParams.get('watch') ?? '');
    const verb =
      method === 'GET'
        ? name !== undefined
          ? 'get'
          : watching
            ? 'watch'
            : 'list'
        : method === 'POST'
          ? 'create'
          : method === 'DELETE'
            ? 'delete'
            : method.toLowerCase();
    // Counted even when refused below: a client retrying through an outage still asks.
    if (def !== undefined) this.count1(verb, def);
    if (this.paused === '503') {
      this.status(
        res,
        503,
        'ServiceUnavailable',
        'the server is currently unable to handle the request',
      );
      return;
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      this.status(res, 401, 'Unauthorized', 'Unauthorized');
      return;
    }
    if (
      m === null ||
      def === undefined ||
      def.group !== group ||
      (namespace !== undefined && !def.namespaced)
    ) {
      this.status(
        res,
        404,
        'NotFound',
        `the server could not find the requested resource ${url.pathname}`,
      );
      return;
    }
    const q = url.searchParams;
    if (subresource !== undefined && method !== 'PATCH') {
      this.status(
        res,
        405,
        'MethodNotAllowed',
        `${method} on ${subresource} is not supported here`,
      );
      return;
    }
    if (method === 'PATCH' && name !== undefined) {
      const type = String(req.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim();
      void readBody(req).then(
        (body) => this.applyPatch(def, namespace, name, subresource, type, body, res),
        () => this.status(res, 400, 'BadRequest', 'could not read the body'),
      );
      return;
    }
    if (method === 'GET' && name !== undefined) {
      const o = this.objects(def).get(keyOf(namespace, name));
      if (o === undefined) this.status(res, 404, 'NotFound', `${def.plural} "${name}" not found`);
      else this.json(res, 200, o);
      return;
    }
    if (method === 'GET') {
      let labels: Selector;
      let fields: Selector;
      try {
        labels = parseLabelSelector(q.get('labelSelector') ?? '');
        fields = parseFieldSelector(q.get('fieldSelector') ?? '');
      } catch (e) {
        this.status(res, 400, 'BadRequest', (e as Error).message);
        return;
      }
      const watch = q.get('watch');
      if (watch === 'true' || watch === '1')
        this.startWatch(def, namespace, labels, fields, q, res);
      else this.list(def, namespace, labels, fields, res);
      return;
    }
    if (method === 'POST' && name === undefined) {
      void readBody(req).then(
        (body) => this.create(def, namespace, body, res),
        () => this.status(res, 400, 'BadRequest', 'could not read the body'),
      );
      return;
    }
    if (method === 'DELETE' && name !== undefined) {
      const o = this.objects(def).get(keyOf(namespace, name));
      if (o === undefined) this.status(res, 404, 'NotFound', `${def.plural} "${name}" not found`);
      else {
        this.remove(def.kind, namespace, name);
        this.json(res, 200, o);
      }
      return;
    }
    this.status(res, 405, 'MethodNotAllowed', `${method} is not supported here`);
  }

  /**
   * PATCH as the API server does it for the two merge types: a JSON merge patch replaces lists;
   * a strategic merge patch merges the lists Kubernetes declares with a merge key (here
   * status.conditions by `type`, which is what lets a client set its own Node condition without
   * touching the kubelet's). On the status subresource only `status` changes.
   */
  private applyPatch(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    subresource: string | undefined,
    type: string,
    body: string,
    res: ServerResponse,
  ): void {
    const strategic = type === 'application/strategic-merge-patch+json';
    if (!strategic && type !== 'application/merge-patch+json') {
      this.status(res, 415, 'UnsupportedMediaType', `the body of type ${type} is not supported`);
      return;
    }
    let patch: KObject;
    try {
      patch = JSON.parse(body) as KObject;
    } catch {
      this.status(res, 400, 'BadRequest', 'body is not JSON');
      return;
    }
    const key = keyOf(def.namespaced ? namespace : undefined, name);
    const cur = this.objects(def).get(key);
    if (cur === undefined) {
      this.status(res, 404, 'NotFound', `${def.plural} "${name}" not found`);
      return;
    }
    const next = structuredClone(cur);
    const apply = subresource === 'status' ? { status: patch['status'] } : patch;
    mergeInto(next, apply, strategic, '');
    this.patchesMade.push({ kind: def.kind, name, subresource, type, body: patch });
    this.json(res, 200, this.upsert(next));
  }

  /** PATCH requests served, e.g. the Node conditions a controller writes. */
  patches(
    kind?: string,
  ): { kind: string; name: string; subresource?: string; type: string; body: KObject }[] {
    return this.patchesMade
      .filter((p) => kind === undefined || p.kind === kind)
      .map((p) => structuredClone(p));
  }

  private create(
    def: ResourceDef,
    namespace: string | undefined,
    body: string,
    res: ServerResponse,
  ): void {
    let obj: KObject;
    try {
      obj = JSON.parse(body) as KObject;
    } catch {
      this.status(res, 400, 'BadRequest', 'body is not JSON');
      return;
    }
    if (obj.kind !== undefined && obj.kind !== def.kind) {
      this.status(res, 400, 'BadRequest', `kind ${obj.kind} posted to ${def.plural}`);
      return;
    }
    obj.kind = def.kind;
    const meta = (obj.metadata ??= {});
    if (def.namespaced) {
      if (meta.namespace !== undefined && namespace !== undefined && meta.namespace !== namespace) {
        this.status(res, 400, 'BadRequest', 'the namespace of the object does not match the URL');
        return;
      }
      meta.namespace = namespace ?? meta.namespace ?? 'default';
    }
    // The API server's own Event validation (ValidateEventCreate): an Event about a
    // cluster-scoped object (involvedObject without a namespace, e.g. a Node) must live in
    // `default`; one about a namespaced object, in that object's namespace.
    if (def.kind === 'Event') {
      const about = (obj['involvedObject'] ?? {}) as { namespace?: string };
      const want = (about.namespace ?? '') === '' ? 'default' : about.namespace;
      if (meta.namespace !== want) {
        this.status(res, 422, 'Invalid', 'involvedObject.namespace does not match event.namespace');
        return;
      }
    }
    if ((meta.name ?? '') === '' && meta.generateName === undefined) {
      this.status(res, 422, 'Invalid', 'metadata.name or metadata.generateName is required');
      return;
    }
    if (meta.name !== undefined && this.objects(def).has(keyOf(meta.namespace, meta.name))) {
      this.status(res, 409, 'AlreadyExists', `${def.plural} "${meta.name}" already exists`);
      return;
    }
    const stored = this.upsert(obj);
    this.createdObjects.push(stored);
    this.json(res, 201, stored);
  }

  private list(
    def: ResourceDef,
    namespace: string | undefined,
    labels: Selector,
    fields: Selector,
    res: ServerResponse,
  ): void {
    const items = [...this.objects(def).values()]
      .filter((o) => matches(o, namespace, labels, fields))
      .sort((a, b) =>
        keyOf(a.metadata?.namespace, a.metadata?.name).localeCompare(
          keyOf(b.metadata?.namespace, b.metadata?.name),
        ),
      )
      // Items of a typed list carry no kind/apiVersion, as from a real server.
      .map(({ kind: _k, apiVersion: _a, ...rest }) => rest);
    this.json(res, 200, {
      kind: `${def.kind}List`,
      apiVersion: def.apiVersion,
      metadata: { resourceVersion: String(this.rv) },
      items,
    });
  }

  private startWatch(
    def: ResourceDef,
    namespace: string | undefined,
    labels: Selector,
    fields: Selector,
    q: URLSearchParams,
    res: ServerResponse,
  ): void {
    const rvParam = q.get('resourceVersion') ?? '';
    let cursor: number;
    let initial: KObject[] = [];
    if (rvParam === '' || rvParam === '0') {
      // "Start at most recent": the current state as synthetic ADDED events first.
      cursor = this.rv;
      initial = [...this.objects(def).values()].filter((o) =>
        matches(o, namespace, labels, fields),
      );
    } else {
      cursor = Number(rvParam);
      if (!Number.isInteger(cursor) || cursor < 0) {
        this.status(res, 400, 'BadRequest', `invalid resourceVersion ${rvParam}`);
        return;
      }
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' });
    res.flushHeaders();
    const w: WatchConn = {
      def,
      namespace,
      labels,
      fields,
      bookmarks: q.get('allowWatchBookmarks') === 'true',
      res,
      cursor,
      initial,
      timer: undefined,
      closed: false,
    };
    this.watches.add(w);
    res.on('close', () => {
      w.closed = true;
      if (w.timer !== undefined) clearTimeout(w.timer);
      this.watches.delete(w);
    });
    const timeout = Number(q.get('timeoutSeconds') ?? '');
    if (Number.isFinite(timeout) && timeout > 0) {
      const expire = (): void => {
        // A silenced watch is a hung connection: it doesn't even time out.
        if (this.silenced) w.timer = setTimeout(expire, 100);
        else this.closeWatch(w, false);
      };
      w.timer = setTimeout(expire, timeout * 1000);
    }
    this.pump(w);
  }

  /** Sends a watch everything it hasn't been sent yet, or 410 if that has been compacted. */
  private pump(w: WatchConn): void {
    if (w.closed || this.silenced) return;
    if (w.cursor < this.compactedRv) {
      this.write(w, {
        type: 'ERROR',
        object: {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: `too old resource version: ${w.cursor} (${this.compactedRv})`,
          reason: 'Expired',
          code: 410,
        },
      });
      this.closeWatch(w, false);
      return;
    }
    for (const o of w.initial) this.write(w, { type: 'ADDED', object: o });
    w.initial = [];
    for (const e of this.history) {
      if (e.rv <= w.cursor) continue;
      w.cursor = e.rv;
      if (e.def !== w.def) continue;
      const now = e.type !== 'DELETED' && matches(e.object, w.namespace, w.labels, w.fields);
      const before =
        e.previous !== undefined && matches(e.previous, w.namespace, w.labels, w.fields);
      let type: string | undefined;
      if (e.type === 'DELETED') type = before ? 'DELETED' : undefined;
      else if (now && before) type = 'MODIFIED';
      else if (now) type = 'ADDED';
      // An object that stops matching the selector leaves this watch's view.
      else if (before) type = 'DELETED';
      if (type !== undefined) this.write(w, { type, object: e.object });
    }
    w.cursor = Math.max(w.cursor, this.rv);
  }

  private write(w: WatchConn, event: { type: string; object: KObject }): void {
    if (w.closed) return;
    w.res.write(JSON.stringify(event) + '\n');
  }

  private closeWatch(w: WatchConn, abrupt: boolean): void {
    if (w.closed) return;
    w.closed = true;
    if (w.timer !== undefined) clearTimeout(w.timer);
    this.watches.delete(w);
    if (abrupt) w.res.socket?.destroy();
    else w.res.end();
  }

  private count1(verb: string, def: ResourceDef): void {
    const k = `${verb} ${def.plural}`;
    this.counters.set(k, (this.counters.get(k) ?? 0) + 1);
  }

  private json(res: ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  private status(res: ServerResponse, code: number, reason: string, message: string): void {
    this.json(res, code, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      code,
    });
  }
}

function defOfKind(kind: string | undefined): ResourceDef {
  const def = kind === undefined ? undefined : BY_KIND.get(kind);
  if (def === undefined) throw new Error(`the fake API server does not serve kind ${String(kind)}`);
  return def;
}

/** List fields merged by a key under a strategic merge patch (the ones these tests patch). */
const MERGE_KEYS: Readonly<Record<string, string>> = { '.status.conditions': 'type' };

/** Merges a patch into `target` in place: null deletes, objects recurse, lists replace or merge. */
function mergeInto(
  target: Record<string, unknown>,
  patch: Record<string, unknown>,
  strategic: boolean,
  path: string,
): void {
  for (const [k, v] of Object.entries(patch)) {
    const here = `${path}.${k}`;
    const cur = target[k];
    const mergeKey = strategic ? MERGE_KEYS[here] : undefined;
    if (v === null) delete target[k];
    else if (mergeKey !== undefined && Array.isArray(v)) {
      const list = Array.isArray(cur) ? [...(cur as Record<string, unknown>[])] : [];
      for (const item of v as Record<string, unknown>[]) {
        const i = list.findIndex((x) => x[mergeKey] === item[mergeKey]);
        if (i < 0) list.push(item);
        else {
          const merged = { ...list[i] };
          mergeInto(merged, item, strategic, here);
          list[i] = merged;
        }
      }
      target[k] = list;
    } else if (
      typeof v === 'object' &&
      !Array.isArray(v) &&
      typeof cur === 'object' &&
      cur !== null &&
      !Array.isArray(cur)
    )
      mergeInto(cur as Record<string, unknown>, v as Record<string, unknown>, strategic, here);
    else target[k] = structuredClone(v);
  }
}

function keyOf(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? ''}/${name ?? ''}`;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function matches(
  o: KObject,
  namespace: string | undefined,
  labels: Selector,
  fields: Selector,
): boolean {
  if (namespace !== undefined && o.metadata?.namespace !== namespace) return false;
  return labels(o) && fields(o);
}

/** Splits on commas that are not inside "in (a,b)" parentheses. */
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter((t) => t !== '');
}

/** Label selector grammar: k=v, k==v, k!=v, k, !k, k in (a,b), k notin (a,b). */
export function parseLabelSelector(s: string): Selector {
  const tests = splitTerms(s).map((term): Selector => {
    const get = (o: KObject, k: string): string | undefined => o.metadata?.labels?.[k];
    let m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    if (m !== null) {
      const key = m[1] ?? '';
      const values = new Set((m[3] ?? '').split(',').map((v) => v.trim()));
      const inSet = m[2] === 'in';
      return (o) => {
        const v = get(o, key);
        return inSet ? v !== undefined && values.has(v) : v === undefined || !values.has(v);
      };
    }
    m = /^!\s*([^=!\s]+)$/.exec(term);
    if (m !== null) {
      const key = m[1] ?? '';
      return (o) => get(o, key) === undefined;
    }
    m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
    if (m !== null) {
      const [, key = '', op, value = ''] = m;
      return op === '!=' ? (o) => get(o, key) !== value : (o) => get(o, key) === value;
    }
    m = /^([^=!\s]+)$/.exec(term);
    if (m !== null) {
      const key = m[1] ?? '';
      return (o) => get(o, key) !== undefined;
    }
    throw new Error(`unable to parse requirement: ${term}`);
  });
  return (o) => tests.every((t) => t(o));
}

/** Field selector grammar: path=v, path==v, path!=v on dotted paths like spec.nodeName. */
export function parseFieldSelector(s: string): Selector {
  const tests = splitTerms(s).map((term): Selector => {
    const m = /^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (m === null) throw new Error(`invalid field selector: ${term}`);
    const [, path = '', op, value = ''] = m;
    const get = (o: KObject): string => {
      let cur: unknown = o;
      for (const part of path.split('.')) {
        if (typeof cur !== 'object' || cur === null) return '';
        cur = (cur as Record<string, unknown>)[part];
      }
      return typeof cur === 'string' || typeof cur === 'number' || typeof cur === 'boolean'
        ? String(cur)
        : '';
    };
    return op === '!=' ? (o) => get(o) !== value : (o) => get(o) === value;
  });
  return (o) => tests.every((t) => t(o));
}

// ---- object builders for tests ----------------------------------------------------------

export interface PodSpec {
  readonly name: string;
  readonly namespace?: string;
  readonly node: string;
  readonly ip?: string;
  readonly hostNetwork?: boolean;
  readonly ready?: boolean;
  readonly labels?: Record<string, string>;
  readonly ports?: { readonly http?: number; readonly stamp?: number; readonly tcp?: number };
  readonly terminating?: boolean;
}

/** An agent Pod as the DaemonSet controller and kubelet would leave it. */
export function podObject(p: PodSpec): KObject {
  const ports: { name: string; containerPort: number; protocol: string }[] = [];
  if (p.ports?.http !== undefined)
    ports.push({ name: 'http', containerPort: p.ports.http, protocol: 'TCP' });
  if (p.ports?.stamp !== undefined)
    ports.push({ name: 'stamp', containerPort: p.ports.stamp, protocol: 'UDP' });
  if (p.ports?.tcp !== undefined)
    ports.push({ name: 'tcp', containerPort: p.ports.tcp, protocol: 'TCP' });
  const ready = p.ready ?? true;
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      name: p.name,
      namespace: p.namespace ?? 'podmesh',
      labels: {
        'app.kubernetes.io/name': 'podmesh',
        'app.kubernetes.io/component': 'agent',
        'podmesh.io/network': p.hostNetwork === true ? 'host' : 'pod',
        ...p.labels,
      },
      ...(p.terminating === true ? { deletionTimestamp: new Date().toISOString() } : {}),
    },
    spec: {
      nodeName: p.node,
      hostNetwork: p.hostNetwork ?? false,
      containers: [{ name: 'agent', image: 'podmesh:test', ports }],
    },
    status: {
      phase: 'Running',
      podIP: p.ip,
      podIPs: p.ip === undefined ? [] : [{ ip: p.ip }],
      conditions: [
        { type: 'PodScheduled', status: 'True' },
        { type: 'Ready', status: ready ? 'True' : 'False' },
        { type: 'ContainersReady', status: ready ? 'True' : 'False' },
      ],
    },
  };
}

/**
 * An agent Pod whose container crash-loops (not Ready, 5 restarts, waiting in CrashLoopBackOff
 * after exiting with an error): what the coverage report names as the cause of a gap.
 */
export function crashLoopingAgentPod(p: { name: string; node: string; ip: string }): KObject {
  const pod = podObject({ ...p, ready: false, ports: { http: 9860 } });
  (pod['status'] as Record<string, unknown>)['containerStatuses'] = [
    {
      name: 'agent',
      ready: false,
      restartCount: 5,
      image: 'podmesh:test',
      imageID: '',
      state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 2m40s' } },
      lastState: { terminated: { reason: 'Error', exitCode: 2 } },
    },
  ];
  return pod;
}

export interface NodeSpec {
  readonly name: string;
  readonly zone?: string;
  readonly region?: string;
  readonly ready?: boolean;
  readonly unschedulable?: boolean;
}

export function nodeObject(n: NodeSpec): KObject {
  const labels: Record<string, string> = { 'kubernetes.io/hostname': n.name };
  if (n.zone !== undefined) labels['topology.kubernetes.io/zone'] = n.zone;
  if (n.region !== undefined) labels['topology.kubernetes.io/region'] = n.region;
  return {
    kind: 'Node',
    apiVersion: 'v1',
    metadata: { name: n.name, labels },
    spec: n.unschedulable === true ? { unschedulable: true } : {},
    status: {
      conditions: [
        { type: 'Ready', status: (n.ready ?? true) ? 'True' : 'False', reason: 'KubeletReady' },
      ],
    },
  };
}

export interface SliceEndpoint {
  readonly ip: string;
  readonly ready?: boolean;
  readonly node?: string;
  readonly zone?: string;
  readonly pod?: string;
}

export function endpointSliceObject(s: {
  readonly name: string;
  readonly namespace?: string;
  readonly service?: string;
  readonly endpoints: readonly SliceEndpoint[];
  readonly port?: number;
}): KObject {
  return {
    kind: 'EndpointSlice',
    apiVersion: 'discovery.k8s.io/v1',
    metadata: {
      name: s.name,
      namespace: s.namespace ?? 'kube-system',
      labels: {
        'kubernetes.io/service-name': s.service ?? 'kube-dns',
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
      },
    },
    addressType: 'IPv4',
    endpoints: s.endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ready: e.ready ?? true, serving: e.ready ?? true, terminating: false },
      ...(e.node === undefined ? {} : { nodeName: e.node }),
      ...(e.zone === undefined ? {} : { zone: e.zone }),
      ...(e.pod === undefined
        ? {}
        : { targetRef: { kind: 'Pod', name: e.pod, namespace: s.namespace ?? 'kube-system' } }),
    })),
    ports: [
      { name: 'dns', port: s.port ?? 53, protocol: 'UDP' },
      { name: 'dns-tcp', port: s.port ?? 53, protocol: 'TCP' },
    ],
  };
}

/** The `kubernetes` Service's EndpointSlice in `default` (the API server's addresses, `https`). */
export function apiServerSliceObject(s: {
  readonly name?: string;
  readonly ips: readonly string[];
  readonly port?: number;
  readonly ready?: boolean;
}): KObject {
  return {
    ...endpointSliceObject({
      name: s.name ?? 'kubernetes',
      namespace: 'default',
      service: 'kubernetes',
      endpoints: s.ips.map((ip) => ({ ip, ready: s.ready ?? true })),
    }),
    ports: [{ name: 'https', port: s.port ?? 6443, protocol: 'TCP' }],
  };
}
