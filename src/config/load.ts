// Turns the config file (YAML), PODMESH_* env vars and CLI flags into one validated, frozen
// Config. Precedence: flag > env > file > default. Every problem is collected and reported at
// once, each naming the key, where the value came from and what is allowed, before anything
// binds a port.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import {
  SETTINGS,
  SETTINGS_BY_KEY,
  envName,
  flagName,
  type PortTarget,
  type StaticDnsReplica,
  type StaticPeer,
} from './settings.ts';
import { loadWebConfig, type WebConfig } from './web-config.ts';
import { windowProblems } from './window-budget.ts';

export interface Config {
  readonly node: string;
  readonly network: 'pod' | 'host';
  readonly zone: string;
  readonly address: string;
  readonly advertiseAddress: string | undefined;
  readonly httpAddress: string;
  readonly httpPort: number;
  readonly web: {
    /** '' means off. */
    readonly configFile: string;
    /** What that file says (read and checked at load); undefined when it is off. */
    readonly security: WebConfig | undefined;
  };
  readonly http: {
    readonly maxConnections: number;
    readonly headersTimeoutMs: number;
    readonly requestTimeoutMs: number;
    readonly keepAliveTimeoutMs: number;
  };
  readonly stampPort: number;
  readonly tcpPort: number;
  readonly logLevel: string;
  readonly probes: {
    readonly intervalMs: number;
    readonly timeoutMs: number;
    readonly jitter: number;
    readonly concurrency: number;
    readonly udp: boolean;
    readonly icmp: boolean;
    readonly tcp: boolean;
    readonly mtu: boolean;
    readonly mtuBytes: 'auto' | number;
    readonly mtuMaxBytes: number;
    readonly lateMs: number;
  };
  readonly ports: {
    readonly targets: readonly PortTarget[];
    readonly intervalMs: number;
    readonly timeoutMs: number;
  };
  readonly apiserver: {
    readonly enabled: boolean;
    readonly intervalMs: number;
    readonly timeoutMs: number;
    readonly readyz: boolean;
    /** The VIP as resolved at load (apiserver.service, else the Pod env); undefined: none. */
    readonly service: { readonly address: string; readonly port: number } | undefined;
    readonly endpoints: readonly { readonly address: string; readonly port: number }[];
  };
  readonly stamp: {
    readonly authKey: Buffer | undefined;
    readonly maxSessions: number;
    readonly maxRepliesPerSecond: number;
    readonly maxRepliesPerSecondPerSource: number;
    readonly reflectorPorts: readonly number[];
    readonly maxClockSkewMs: number;
  };
  readonly peers: {
    readonly limit: number;
    readonly static: readonly StaticPeer[];
    readonly watchers: number;
    readonly rotation: boolean;
    readonly core: number;
  };
  readonly discovery: { readonly mode: 'auto' | 'static' | 'kubernetes' };
  readonly kubernetes: {
    readonly namespace: string;
    readonly podSelector: string;
    readonly dnsNamespace: string;
    readonly dnsService: string;
    readonly nodeGraceMs: number;
    readonly watchdogMs: number;
    readonly plumbingNamespaces: string;
    readonly plumbingSelectors: readonly string[];
    readonly plumbingSandboxWindowMs: number;
    readonly dnsConfigMaps: string;
    readonly changeHorizonMs: number;
    readonly changeLookbackMs: number;
  };
  readonly controller: {
    readonly pullIntervalMs: number;
    readonly pullConcurrency: number;
    readonly pullTimeoutMs: number;
    /** How the controller reaches agents' HTTP ports (the strings below: '' means unset). */
    readonly pullScheme: 'http' | 'https';
    readonly pullCaFile: string;
    readonly pullServerName: string;
    readonly pullCertFile: string;
    readonly pullKeyFile: string;
    readonly pullUsername: string;
    readonly pullPasswordFile: string;
    readonly roundTimeoutMs: number;
    /** Node-scoped findings also as Events on their Node (node-events.ts), at most so many a round. */
    readonly nodeEvents: boolean;
    readonly nodeEventsPerRound: number;
    /** The opt-in PodmeshNetworkProblem Node condition (node-conditions.ts). */
    readonly nodeConditions: boolean;
  };
  readonly dns: {
    readonly enabled: boolean;
    readonly intervalMs: number;
    readonly timeoutMs: number;
    readonly resolvConf: string;
    readonly port: number;
    readonly clusterDomain: string;
    /** Always set: derived from clusterDomain when configured empty. */
    readonly serviceName: string;
    /** '' means off. */
    readonly shortName: string;
    readonly podName: string;
    readonly externalName: string;
    readonly tcp: boolean;
    readonly replicas: readonly {
      readonly address: string;
      readonly port: number;
      readonly node: string;
    }[];
  };
  readonly triage: {
    readonly latencyBaselineMinutes: number;
    readonly latencyMinBaselineSamples: number;
    readonly latencyMaxLinks: number;
  };
  readonly window: { readonly seconds: number };
  readonly engine: { readonly worker: boolean };
  readonly shutdown: { readonly drainMs: number };
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export interface ConfigSources {
  /** Path of a YAML file; read here so a missing file is reported like any other problem. */
  readonly file?: string | undefined;
  /** YAML text, for callers (tests, the demo) that have no file. */
  readonly fileText?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Flag values by setting key (strings as typed on the command line). */
  readonly flags?: Readonly<Record<string, string>>;
  /** Already-typed values by setting key, highest precedence (used by the demo). */
  readonly overrides?: Readonly<Record<string, unknown>>;
}

type Origin = 'default' | `file ${string}` | `env ${string}` | `flag ${string}` | 'override';

/** Env vars Kubernetes injects for a Service named "podmesh…" (service links): not settings. */
const SERVICE_LINK =
  /^PODMESH_([A-Z0-9_]+_)?(SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT(_\d+_(TCP|UDP|SCTP)(_\w+)?)?)$/;
const NOT_SETTINGS = new Set(['PODMESH_CONFIG']);

/**
 * The `kubernetes` Service VIP: apiserver.service as written, or (empty) what Kubernetes puts in
 * every Pod's env, or none ("none", or no usable env outside a cluster).
 */
export function apiServerService(
  setting: string,
  env: Readonly<Record<string, string | undefined>>,
): { address: string; port: number } | undefined {
  if (setting === 'none') return undefined;
  const [host, portText] =
    setting !== ''
      ? [setting.slice(0, setting.lastIndexOf(':')), setting.slice(setting.lastIndexOf(':') + 1)]
      : [env['KUBERNETES_SERVICE_HOST'] ?? '', env['KUBERNETES_SERVICE_PORT'] ?? ''];
  const port = Number(portText);
  if (isIP(host) !== 4 || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { address: host, port };
}

export function loadConfig(src: ConfigSources): Config {
  const problems: string[] = [];
  const values = new Map<string, { value: unknown; origin: Origin }>();

  const fileName = src.file ?? '<config>';
  let text = src.fileText;
  if (src.file !== undefined) {
    try {
      text = readFileSync(src.file, 'utf8');
    } catch (e) {
      problems.push(
        `config file ${src.file}: cannot read it (${(e as Error).message}); pass an existing YAML file with --config`,
      );
    }
  }
  if (text !== undefined && text.trim() !== '') {
    let doc: unknown;
    try {
      doc = parseYaml(text, { strict: true, uniqueKeys: true });
    } catch (e) {
      problems.push(
        `config file ${fileName}: not valid YAML: ${(e as Error).message.split('\n')[0]}`,
      );
    }
    if (doc !== undefined && doc !== null) {
      if (!isPlainObject(doc))
        problems.push(
          `config file ${fileName}: the top level must be a mapping of settings, got ${typeName(doc)}`,
        );
      else flattenFile(doc, '', fileName, values, problems);
    }
  }

  for (const [name, raw] of Object.entries(src.env ?? {})) {
    if (!name.startsWith('PODMESH_') || raw === undefined || NOT_SETTINGS.has(name)) continue;
    const setting = SETTINGS.find((x) => envName(x.key) === name);
    // A real setting always wins: PODMESH_HTTP_PORT is ours even though it looks like the
    // service link of a Service named "podmesh-http".
    if (setting === undefined && SERVICE_LINK.test(name)) continue;
    if (setting === undefined) {
      problems.push(
        `env ${name}: not a podmesh setting${suggest(
          name,
          SETTINGS.filter((x) => x.scalar).map((x) => envName(x.key)),
        )}`,
      );
    } else if (!setting.scalar) {
      problems.push(`env ${name}: ${setting.key} can only be set in the config file`);
    } else {
      values.set(setting.key, { value: raw, origin: `env ${name}` });
    }
  }
  for (const [key, raw] of Object.entries(src.flags ?? {})) {
    values.set(key, { value: raw, origin: `flag ${flagName(key)}` });
  }
  for (const [key, value] of Object.entries(src.overrides ?? {})) {
    if (!SETTINGS_BY_KEY.has(key)) throw new Error(`internal: override of unknown setting ${key}`);
    values.set(key, { value, origin: 'override' });
  }

  const flat = new Map<string, unknown>();
  for (const setting of SETTINGS) {
    const given = values.get(setting.key);
    if (given === undefined) {
      flat.set(setting.key, setting.default);
      continue;
    }
    const parsed = parseValue(
      setting.schema,
      given.value,
      given.origin !== 'override' && typeof given.value === 'string',
    );
    if (parsed.success) flat.set(setting.key, parsed.data);
    else
      problems.push(
        `${setting.key} (from ${given.origin}): ${describeIssue(parsed.error)}; got ${show(given.value)}. ${setting.help}`,
      );
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const cfg = assemble(flat, problems, src.env ?? {});
  // Settings under which the pair alerts could never fire (the DNS and port ones are warned
  // about at start: those checks are optional).
  problems.push(...windowProblems(cfg).refuse);
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(cfg);
}

function flattenFile(
  obj: Record<string, unknown>,
  prefix: string,
  fileName: string,
  out: Map<string, { value: unknown; origin: Origin }>,
  problems: string[],
): void {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix + k;
    if (SETTINGS_BY_KEY.has(key)) {
      out.set(key, { value: v, origin: `file ${fileName}` });
    } else if (SETTINGS.some((x) => x.key.startsWith(key + '.'))) {
      if (isPlainObject(v)) flattenFile(v, key + '.', fileName, out, problems);
      else
        problems.push(
          `${key} (from file ${fileName}): must be a mapping with keys ${childKeys(key)}; got ${show(v)}`,
        );
    } else {
      problems.push(
        `${key} (from file ${fileName}): unknown setting${suggest(
          key,
          SETTINGS.map((x) => x.key),
        )}; see \`podmesh agent --help\` for every setting`,
      );
    }
  }
}

function childKeys(prefix: string): string {
  return SETTINGS.filter((x) => x.key.startsWith(prefix + '.'))
    .map((x) => x.key.slice(prefix.length + 1))
    .join(', ');
}

/** Strings from env and flags are tried as given first, then as a number or boolean. */
function parseValue(schema: z.ZodType, value: unknown, fromText: boolean) {
  const direct = schema.safeParse(value);
  if (direct.success || !fromText || typeof value !== 'string') return direct;
  const t = value.trim();
  let coerced: unknown = undefined;
  if (/^-?\d+(\.\d+)?$/.test(t)) coerced = Number(t);
  else if (t === 'true' || t === 'false') coerced = t === 'true';
  return coerced === undefined ? direct : schema.safeParse(coerced);
}

function describeIssue(err: z.ZodError): string {
  return err.issues
    .map((i) => (i.path.length > 0 ? `at ${formatPath(i.path)}: ${i.message}` : i.message))
    .join('; ');
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
    .join('')
    .replace(/^\./, '');
}

function assemble(
  f: Map<string, unknown>,
  problems: string[],
  env: Readonly<Record<string, string | undefined>>,
): Config {
  const get = <T>(k: string): T => f.get(k) as T;
  let authKey: Buffer | undefined;
  const rawKey = get<string | undefined>('stamp.authKey');
  if (rawKey !== undefined) {
    authKey = decodeKey(rawKey);
    if (authKey === undefined || authKey.length < 16) {
      problems.push(
        'stamp.authKey: must be at least 16 bytes written as hex (32+ hex digits) or base64; generate one with `openssl rand -hex 32`',
      );
    }
  }
  const intervalMs = get<number>('probes.intervalMs');
  const timeoutMs = get<number>('probes.timeoutMs');
  if (timeoutMs > intervalMs) {
    problems.push(
      `probes.timeoutMs (${timeoutMs}) must not exceed probes.intervalMs (${intervalMs}): a probe would still be waiting when the next one is due; lower the timeout or raise the interval`,
    );
  }
  const dnsInterval = get<number>('dns.intervalMs');
  const dnsTimeout = get<number>('dns.timeoutMs');
  if (dnsTimeout > dnsInterval) {
    problems.push(
      `dns.timeoutMs (${dnsTimeout}) must not exceed dns.intervalMs (${dnsInterval}); lower the timeout or raise the interval`,
    );
  }
  const portInterval = get<number>('ports.intervalMs');
  const portTimeout = get<number>('ports.timeoutMs');
  if (portTimeout > portInterval) {
    problems.push(
      `ports.timeoutMs (${portTimeout}) must not exceed ports.intervalMs (${portInterval}); lower the timeout or raise the interval`,
    );
  }
  const apiInterval = get<number>('apiserver.intervalMs');
  const apiTimeout = get<number>('apiserver.timeoutMs');
  if (apiTimeout > apiInterval) {
    problems.push(
      `apiserver.timeoutMs (${apiTimeout}) must not exceed apiserver.intervalMs (${apiInterval}); lower the timeout or raise the interval`,
    );
  }
  const apiService = apiServerService(get<string>('apiserver.service'), env);
  const portTargets = get<PortTarget[]>('ports.targets');
  const seenTargets = new Set<string>();
  for (const [i, t] of portTargets.entries()) {
    if (seenTargets.has(t.name))
      problems.push(
        `ports.targets[${i}].name: duplicate target name "${t.name}"; each target needs its own name (it is the target label)`,
      );
    seenTargets.add(t.name);
  }
  const headersTimeoutMs = get<number>('http.headersTimeoutMs');
  const requestTimeoutMs = get<number>('http.requestTimeoutMs');
  if (headersTimeoutMs > requestTimeoutMs) {
    problems.push(
      `http.headersTimeoutMs (${headersTimeoutMs}) must not exceed http.requestTimeoutMs (${requestTimeoutMs}): the headers are part of the request; lower the first or raise the second`,
    );
  }
  const changeHorizonMs = get<number>('kubernetes.changeHorizonMs');
  const changeLookbackMs = get<number>('kubernetes.changeLookbackMs');
  if (changeLookbackMs > changeHorizonMs) {
    problems.push(
      `kubernetes.changeLookbackMs (${changeLookbackMs}) must not exceed kubernetes.changeHorizonMs (${changeHorizonMs}): changes are forgotten after the horizon, so a longer lookback would find nothing more; lower the first or raise the second`,
    );
  }
  const pullTimeoutMs = get<number>('controller.pullTimeoutMs');
  const roundTimeoutMs = get<number>('controller.roundTimeoutMs');
  if (roundTimeoutMs < pullTimeoutMs) {
    problems.push(
      `controller.roundTimeoutMs (${roundTimeoutMs}) must not be below controller.pullTimeoutMs (${pullTimeoutMs}): no agent could use its whole timeout; raise the round's deadline or lower the pull timeout`,
    );
  }
  const clusterDomain = get<string>('dns.clusterDomain').replace(/\.$/, '');
  const dnsPort = get<number>('dns.port');
  const replicas = get<StaticDnsReplica[]>('dns.replicas');
  const seenReplicas = new Set<string>();
  for (const [i, r] of replicas.entries()) {
    const id = `${r.address}:${r.port ?? dnsPort}`;
    if (seenReplicas.has(id)) problems.push(`dns.replicas[${i}]: duplicate replica ${id}`);
    seenReplicas.add(id);
  }
  const webConfigFile = get<string>('web.configFile');
  let security: WebConfig | undefined;
  if (webConfigFile !== '') {
    const loaded = loadWebConfig(webConfigFile);
    security = loaded.config;
    problems.push(...loaded.problems.map((p) => `web.configFile: ${p}`));
  }
  const pull = (k: string): string => get<string>(`controller.${k}`);
  if (pull('pullScheme') === 'http') {
    const tlsOnly = ['pullCaFile', 'pullServerName', 'pullCertFile', 'pullKeyFile'].filter(
      (k) => pull(k) !== '',
    );
    if (tlsOnly.length > 0)
      problems.push(
        `${tlsOnly.map((k) => `controller.${k}`).join(', ')}: only used over TLS; set controller.pullScheme to https`,
      );
  }
  for (const [a, b] of [
    ['pullCertFile', 'pullKeyFile'],
    ['pullUsername', 'pullPasswordFile'],
  ] as const)
    if ((pull(a) === '') !== (pull(b) === ''))
      problems.push(`controller.${a} and controller.${b} go together: set both or neither`);
  const peers = get<StaticPeer[]>('peers.static');
  const seen = new Set<string>();
  for (const [i, p] of peers.entries()) {
    const id = `${p.node}/${p.network}`;
    if (seen.has(id))
      problems.push(
        `peers.static[${i}]: duplicate peer ${id}; each node has at most one agent per network`,
      );
    seen.add(id);
  }
  return {
    node: get<string | undefined>('node') ?? hostname().toLowerCase(),
    network: get('network'),
    zone: get('zone'),
    address: get('address'),
    advertiseAddress: get('advertiseAddress'),
    httpAddress: get('httpAddress'),
    httpPort: get('httpPort'),
    web: { configFile: webConfigFile, security },
    http: {
      maxConnections: get('http.maxConnections'),
      headersTimeoutMs,
      requestTimeoutMs,
      keepAliveTimeoutMs: get('http.keepAliveTimeoutMs'),
    },
    stampPort: get('stampPort'),
    tcpPort: get('tcpPort'),
    logLevel: get('logLevel'),
    probes: {
      intervalMs,
      timeoutMs,
      jitter: get('probes.jitter'),
      concurrency: get('probes.concurrency'),
      udp: get('probes.udp'),
      icmp: get('probes.icmp'),
      tcp: get('probes.tcp'),
      mtu: get('probes.mtu'),
      mtuBytes: get('probes.mtuBytes'),
      mtuMaxBytes: get('probes.mtuMaxBytes'),
      lateMs: get('probes.lateMs'),
    },
    ports: { targets: portTargets, intervalMs: portInterval, timeoutMs: portTimeout },
    apiserver: {
      enabled: get('apiserver.enabled'),
      intervalMs: apiInterval,
      timeoutMs: apiTimeout,
      readyz: get('apiserver.readyz'),
      service: apiService,
      endpoints: get('apiserver.endpoints'),
    },
    stamp: {
      authKey,
      maxSessions: get('stamp.maxSessions'),
      maxRepliesPerSecond: get('stamp.maxRepliesPerSecond'),
      maxRepliesPerSecondPerSource: get('stamp.maxRepliesPerSecondPerSource'),
      reflectorPorts: get('stamp.reflectorPorts'),
      maxClockSkewMs: get('stamp.maxClockSkewMs'),
    },
    peers: {
      limit: get('peers.limit'),
      static: peers,
      watchers: get('peers.watchers'),
      rotation: get('peers.rotation'),
      core: get('peers.core'),
    },
    discovery: { mode: get('discovery.mode') },
    kubernetes: {
      namespace: get('kubernetes.namespace'),
      podSelector: get('kubernetes.podSelector'),
      dnsNamespace: get('kubernetes.dnsNamespace'),
      dnsService: get('kubernetes.dnsService'),
      nodeGraceMs: get('kubernetes.nodeGraceMs'),
      watchdogMs: get('kubernetes.watchdogMs'),
      plumbingNamespaces: get('kubernetes.plumbingNamespaces'),
      plumbingSelectors: get('kubernetes.plumbingSelectors'),
      plumbingSandboxWindowMs: get('kubernetes.plumbingSandboxWindowMs'),
      dnsConfigMaps: get('kubernetes.dnsConfigMaps'),
      changeHorizonMs: get('kubernetes.changeHorizonMs'),
      changeLookbackMs: get('kubernetes.changeLookbackMs'),
    },
    controller: {
      pullIntervalMs: get('controller.pullIntervalMs'),
      pullConcurrency: get('controller.pullConcurrency'),
      pullScheme: get('controller.pullScheme'),
      pullCaFile: pull('pullCaFile'),
      pullServerName: pull('pullServerName'),
      pullCertFile: pull('pullCertFile'),
      pullKeyFile: pull('pullKeyFile'),
      pullUsername: pull('pullUsername'),
      pullPasswordFile: pull('pullPasswordFile'),
      pullTimeoutMs,
      roundTimeoutMs,
      nodeEvents: get('controller.nodeEvents'),
      nodeEventsPerRound: get('controller.nodeEventsPerRound'),
      nodeConditions: get('controller.nodeConditions'),
    },
    dns: {
      enabled: get('dns.enabled'),
      intervalMs: dnsInterval,
      timeoutMs: dnsTimeout,
      resolvConf: get('dns.resolvConf'),
      port: dnsPort,
      clusterDomain,
      serviceName: get<string>('dns.serviceName') || `kubernetes.default.svc.${clusterDomain}`,
      shortName: get('dns.shortName'),
      podName: get('dns.podName'),
      externalName: get('dns.externalName'),
      tcp: get('dns.tcp'),
      replicas: replicas.map((r) => ({
        address: r.address,
        port: r.port ?? dnsPort,
        node: r.node ?? '',
      })),
    },
    triage: {
      latencyBaselineMinutes: get('triage.latencyBaselineMinutes'),
      latencyMinBaselineSamples: get('triage.latencyMinBaselineSamples'),
      latencyMaxLinks: get('triage.latencyMaxLinks'),
    },
    window: { seconds: get('window.seconds') },
    engine: { worker: get('engine.worker') },
    shutdown: { drainMs: get('shutdown.drainMs') },
  };
}

function decodeKey(s: string): Buffer | undefined {
  const t = s.trim();
  if (/^([0-9a-fA-F]{2})+$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(t) && t.length % 4 === 0) return Buffer.from(t, 'base64');
  return undefined;
}

function suggest(given: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(given.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(given.length / 4))
    ? ` (did you mean ${best}?)`
    : '';
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  return Array.isArray(v) ? 'a list' : typeof v;
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? s.slice(0, 77) + '...' : s;
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Buffer.isBuffer(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
