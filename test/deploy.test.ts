// Checks deploy/base as Kubernetes would see it: renders it with `kubectl kustomize`, validates
// every object against the Kubernetes schemas (kubernetes-models, and the prometheus-operator
// models for the PodMonitor), rejects fields the API doesn't know, and holds the manifests to
// what the code needs: the RBAC grants exactly, the security context, env vars that are real
// settings, and ports that agree with the config the agent will actually load. The base holds
// only built-in kinds (it applies on a cluster without CRDs); the components in
// deploy/components each render on top of it, and the overlays (secure, kube-prometheus-stack)
// are checked for what they are for.
//
// Needs kubectl (Debian: kubernetes-client); set KUBECTL to use another binary.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import type { IPodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { DaemonSet, type IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import {
  NetworkPolicy,
  type INetworkPolicy,
} from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import type { IPolicyRule } from 'kubernetes-models/rbac.authorization.k8s.io/v1/PolicyRule';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import {
  RoleBinding,
  type IRoleBinding,
} from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import {
  PriorityClass,
  type IPriorityClass,
} from 'kubernetes-models/scheduling.k8s.io/v1/PriorityClass';
import { ConfigMap, type IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { Namespace, type INamespace } from 'kubernetes-models/v1/Namespace';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import { Service, type IService } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { parseAllDocuments } from 'yaml';
import { PODMESH_ENTRIES } from '../src/bundle.ts';
import { loadConfig } from '../src/config/load.ts';
import { SETTINGS, envName, flagName } from '../src/config/settings.ts';
import { parseWebConfig } from '../src/config/web-config.ts';
import { relabelConfigFromOperator } from './support/prometheus.ts';

const ROOT = new URL('../', import.meta.url);
const BASE = new URL('deploy/base', ROOT).pathname;
const NAMESPACE = 'podmesh';

// ---------------------------------------------------------------------------------------------
// What the code uses from the Kubernetes API, one row per (who, where, what). The manifests must
// grant exactly this: a new rule, a wider scope or an extra verb fails the test, and so does a
// missing one.

/** A grant's resourceNames as part of its key: narrowing is part of what the table holds. */
const onlyNames = (n: readonly string[] | undefined): string =>
  n === undefined ? '' : ` | only ${[...n].sort().join(',')}`;

interface Grant {
  readonly serviceAccount: 'podmesh-agent' | 'podmesh-controller';
  /** A namespace, or "cluster" for a ClusterRoleBinding. */
  readonly scope: string;
  readonly apiGroup: string;
  readonly resource: string;
  readonly verbs: readonly string[];
  /** Only these objects (RBAC resourceNames); absent: every object of the resource. */
  readonly resourceNames?: readonly string[];
}

const EXPECTED_GRANTS: readonly Grant[] = [
  // Peer discovery: the agent Pods of both DaemonSets.
  {
    serviceAccount: 'podmesh-agent',
    scope: NAMESPACE,
    apiGroup: '',
    resource: 'pods',
    verbs: ['list', 'watch'],
  },
  // Zone and region labels, Ready and cordoned.
  {
    serviceAccount: 'podmesh-agent',
    scope: 'cluster',
    apiGroup: '',
    resource: 'nodes',
    verbs: ['list', 'watch'],
  },
  // The cluster DNS Service's EndpointSlices: one DNS probe target per replica.
  {
    serviceAccount: 'podmesh-agent',
    scope: 'kube-system',
    apiGroup: 'discovery.k8s.io',
    resource: 'endpointslices',
    verbs: ['list', 'watch'],
  },
  // The `kubernetes` Service's EndpointSlices: the API server endpoints checked directly.
  {
    serviceAccount: 'podmesh-agent',
    scope: 'default',
    apiGroup: 'discovery.k8s.io',
    resource: 'endpointslices',
    verbs: ['list', 'watch'],
  },
  // Coverage: which nodes have a Ready agent of each kind, and why not.
  {
    serviceAccount: 'podmesh-controller',
    scope: NAMESPACE,
    apiGroup: '',
    resource: 'pods',
    verbs: ['list', 'watch'],
  },
  {
    serviceAccount: 'podmesh-controller',
    scope: 'cluster',
    apiGroup: '',
    resource: 'nodes',
    verbs: ['list', 'watch'],
  },
  // Events: written when a node loses or regains coverage (src/controller/kubernetes.ts,
  // KubernetesEventSink), listed for a Pending agent Pod to tell why (KubernetesDirectory).
  {
    serviceAccount: 'podmesh-controller',
    scope: NAMESPACE,
    apiGroup: '',
    resource: 'events',
    verbs: ['create', 'list'],
  },
  // Node-scoped findings as Events on their Node (src/controller/node-events.ts): Events about
  // a cluster-scoped object live in `default`; written once each, so create only.
  {
    serviceAccount: 'podmesh-controller',
    scope: 'default',
    apiGroup: '',
    resource: 'events',
    verbs: ['create'],
  },
  // Cluster plumbing (src/controller/plumbing.ts): the CNI, kube-proxy and CoreDNS Pods in
  // kube-system (kubernetes.plumbingNamespaces), and the sandbox-error Events of any namespace.
  {
    serviceAccount: 'podmesh-controller',
    scope: 'kube-system',
    apiGroup: '',
    resource: 'pods',
    verbs: ['list', 'watch'],
  },
  {
    serviceAccount: 'podmesh-controller',
    scope: 'cluster',
    apiGroup: '',
    resource: 'events',
    verbs: ['list', 'watch'],
  },
  // "What changed" (src/controller/change-watch.ts): NetworkPolicies of every namespace.
  {
    serviceAccount: 'podmesh-controller',
    scope: 'cluster',
    apiGroup: 'networking.k8s.io',
    resource: 'networkpolicies',
    verbs: ['list', 'watch'],
  },
  // "What changed" on DNS findings: the cluster DNS ConfigMaps (kubernetes.dnsConfigMaps), each
  // watched by name, so resourceNames narrows the grant to exactly them.
  {
    serviceAccount: 'podmesh-controller',
    scope: 'kube-system',
    apiGroup: '',
    resource: 'configmaps',
    verbs: ['list', 'watch'],
    resourceNames: ['coredns', 'coredns-custom', 'kube-dns', 'node-local-dns'],
  },
];

test('the DNS ConfigMaps RBAC names are exactly the ones the controller watches by default', (t) => {
  const watched = String(SETTINGS.find((s) => s.key === 'kubernetes.dnsConfigMaps')?.default)
    .split(',')
    .map((x) => x.split('/'));
  t.true(watched.length > 0);
  t.true(
    watched.every(([ns]) => ns === 'kube-system'),
    'the Role is in kube-system',
  );
  const grant = EXPECTED_GRANTS.find((g) => g.resource === 'configmaps');
  t.deepEqual([...(grant?.resourceNames ?? [])].sort(), watched.map(([, n]) => n).sort());
});

// ---------------------------------------------------------------------------------------------
// Rendering and schema models.

type Obj = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
};

let rendered: Obj[] | undefined;

function render(dir = BASE): Obj[] {
  const kubectl = process.env['KUBECTL'] ?? 'kubectl';
  let out: string;
  try {
    out = execFileSync(kubectl, ['kustomize', dir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT')
      throw new Error(
        `${kubectl} not found: install kubectl (Debian: apt-get install kubernetes-client) or set KUBECTL`,
        { cause: e },
      );
    throw new Error(`${kubectl} kustomize ${dir} failed: ${err.stderr ?? err.message}`, {
      cause: e,
    });
  }
  return parseAllDocuments(out)
    .map((d) => d.toJS() as unknown)
    .filter((d): d is Obj => d !== null && typeof d === 'object');
}

function objects(): Obj[] {
  rendered ??= render();
  return rendered;
}

function ofKind<T>(kind: string): (T & Obj)[] {
  return objects().filter((o) => o.kind === kind) as (T & Obj)[];
}

function named<T>(kind: string, name: string): T & Obj {
  const found = ofKind<T>(kind).find((o) => o.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name} in the rendered base`);
  return found;
}

/** API groups of the kinds every cluster has: the base may use only these. */
const BUILT_IN_GROUPS: ReadonlySet<string> = new Set([
  '',
  'apps',
  'rbac.authorization.k8s.io',
  'networking.k8s.io',
  'scheduling.k8s.io',
  'policy',
  'discovery.k8s.io',
]);

function apiGroup(o: Obj): string {
  return o.apiVersion.includes('/') ? o.apiVersion.split('/')[0]! : '';
}

const names = (os: readonly Obj[]): string[] =>
  os.map((o) => `${o.kind}/${o.metadata.name}`).sort();

const COMPONENTS_DIR = new URL('deploy/components', ROOT).pathname;
const renderedWith = new Map<string, Obj[]>();

/** The base with these components of deploy/components (in this order), as an overlay would. */
function withComponents(components: readonly string[]): Obj[] {
  const key = components.join(',');
  const cached = renderedWith.get(key);
  if (cached !== undefined) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-components-'));
  try {
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        'resources:',
        `  - ${relative(dir, BASE)}`,
        'components:',
        ...components.map((c) => `  - ${relative(dir, join(COMPONENTS_DIR, c))}`),
        '',
      ].join('\n'),
    );
    const objs = render(dir);
    renderedWith.set(key, objs);
    return objs;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A schema model per kind; a kind not listed here fails the test until it is added. (`as never`
 * where a model's constructor wants required fields Obj doesn't declare: validate() checks them.)
 */
const MODELS: Readonly<Record<string, (data: Obj) => { validate(): void }>> = {
  'v1/Namespace': (d) => new Namespace(d),
  'v1/ServiceAccount': (d) => new ServiceAccount(d),
  'v1/ConfigMap': (d) => new ConfigMap(d),
  'v1/Service': (d) => new Service(d),
  'apps/v1/DaemonSet': (d) => new DaemonSet(d),
  'apps/v1/Deployment': (d) => new Deployment(d),
  'rbac.authorization.k8s.io/v1/Role': (d) => new Role(d),
  'rbac.authorization.k8s.io/v1/RoleBinding': (d) => new RoleBinding(d as never),
  'rbac.authorization.k8s.io/v1/ClusterRole': (d) => new ClusterRole(d),
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': (d) => new ClusterRoleBinding(d as never),
  'networking.k8s.io/v1/NetworkPolicy': (d) => new NetworkPolicy(d),
  'scheduling.k8s.io/v1/PriorityClass': (d) => new PriorityClass(d as never),
  'monitoring.coreos.com/v1/PodMonitor': (d) => new PodMonitor(d as never),
  'monitoring.coreos.com/v1/PrometheusRule': (d) => new PrometheusRule(d as never),
};

function schemaErrors(o: Obj): string | undefined {
  const model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (model === undefined) return `no schema model for ${o.apiVersion} ${o.kind}; add it to MODELS`;
  try {
    model(o).validate();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

// kubernetes-models checks types and required fields but lets unknown fields through, so a
// misspelt field (readOnlyRootFileSystem) would pass it, and the API server would drop it
// with a warning. The field lists of @kubernetes/client-node's generated models catch those.

interface AttributeType {
  readonly baseName: string;
  readonly type: string;
}
interface ModelClass {
  getAttributeTypeMap(): AttributeType[];
}

function modelClass(typeName: string): ModelClass | undefined {
  const c = (k8s as unknown as Record<string, unknown>)[typeName];
  return typeof c === 'function' && 'getAttributeTypeMap' in c
    ? (c as unknown as ModelClass)
    : undefined;
}

function unknownFields(value: unknown, typeName: string, path: string, out: string[]): void {
  const array = /^Array<(.+)>$/.exec(typeName);
  if (array) {
    if (Array.isArray(value))
      value.forEach((v, i) => unknownFields(v, array[1]!, `${path}[${i}]`, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(typeName);
  if (map) {
    if (value !== null && typeof value === 'object')
      for (const [k, v] of Object.entries(value)) unknownFields(v, map[1]!, `${path}.${k}`, out);
    return;
  }
  const cls = modelClass(typeName);
  if (cls === undefined || value === null || typeof value !== 'object' || Array.isArray(value))
    return;
  const attrs = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    const t = attrs.get(k);
    if (t === undefined) out.push(`${path}.${k} (not a field of ${typeName})`);
    else unknownFields(v, t, `${path}.${k}`, out);
  }
}

function strictFieldErrors(o: Obj): string[] {
  if (o.apiVersion.includes('monitoring.coreos.com')) return []; // not a built-in type
  const version = o.apiVersion.split('/').at(-1)!;
  const typeName = version[0]!.toUpperCase() + version.slice(1) + o.kind;
  if (modelClass(typeName) === undefined) return [`no @kubernetes/client-node model ${typeName}`];
  const out: string[] = [];
  unknownFields(o, typeName, `${o.kind}/${o.metadata.name}`, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Workload helpers.

interface Workload {
  readonly kind: string;
  readonly name: string;
  readonly template: IPodTemplateSpec;
}

function workloads(): Workload[] {
  return [...ofKind<IDaemonSet>('DaemonSet'), ...ofKind<IDeployment>('Deployment')].map((w) => ({
    kind: w.kind,
    name: w.metadata.name,
    template: w.spec!.template,
  }));
}

function containersOf(w: Workload): IContainer[] {
  return [...(w.template.spec?.initContainers ?? []), ...(w.template.spec?.containers ?? [])];
}

function matches(
  selector: Record<string, string> | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (selector === undefined) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** Stand-ins for what the downward API fills in, so the config can be loaded as a Pod would. */
const FIELD_SAMPLES: Readonly<Record<string, string>> = {
  'spec.nodeName': 'node-1',
  'status.podIP': '10.1.2.3',
};

function envOf(c: IContainer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef !== undefined) {
      const sample = FIELD_SAMPLES[e.valueFrom.fieldRef.fieldPath];
      if (sample === undefined)
        throw new Error(`no sample for fieldRef ${e.valueFrom.fieldRef.fieldPath}`);
      env[e.name] = sample;
    } else throw new Error(`env ${e.name}: only value and fieldRef are expected`);
  }
  return env;
}

function agentDaemonSets(): (IDaemonSet & Obj)[] {
  return ofKind<IDaemonSet>('DaemonSet').filter(
    (d) => d.spec!.template.metadata?.labels?.['app.kubernetes.io/component'] === 'agent',
  );
}

/** The config file an agent container is started with, read from the rendered ConfigMap. */
function configFileOf(template: IPodTemplateSpec, c: IContainer): { path: string; text: string } {
  const args = c.args ?? [];
  const i = args.indexOf('--config');
  if (i < 0 || args[i + 1] === undefined) throw new Error(`${c.name}: no --config argument`);
  const path = args[i + 1]!;
  const dir = path.slice(0, path.lastIndexOf('/'));
  const key = path.slice(path.lastIndexOf('/') + 1);
  const mount = (c.volumeMounts ?? []).find((m) => m.mountPath === dir);
  if (mount === undefined) throw new Error(`${c.name}: nothing mounted at ${dir}`);
  const volume = template.spec?.volumes?.find((v) => v.name === mount.name);
  const cmName = volume?.configMap?.name;
  if (cmName === undefined) throw new Error(`${c.name}: ${dir} is not a ConfigMap volume`);
  const cm = named<IConfigMap>('ConfigMap', cmName);
  const text = cm.data?.[key];
  if (text === undefined) throw new Error(`ConfigMap ${cmName} has no key ${key}`);
  return { path, text };
}

/** Everything an agent container's config comes from: the file, its env, its flags. */
function sourcesOf(
  template: IPodTemplateSpec,
  c: IContainer,
): { fileText: string; env: Record<string, string>; flags: Record<string, string> } {
  const byFlag = new Map(SETTINGS.filter((s) => s.scalar).map((s) => [flagName(s.key), s.key]));
  const args = c.args ?? [];
  const flags: Record<string, string> = {};
  // args[0] is the subcommand; the rest are `--flag value` pairs.
  for (let i = 1; i < args.length; i += 2) {
    const name = args[i]!;
    const value = args[i + 1];
    if (name === '--config') continue;
    const key = byFlag.get(name);
    if (key === undefined || value === undefined)
      throw new Error(`${c.name}: ${name} is not a podmesh setting flag with a value`);
    flags[key] = value;
  }
  return { fileText: configFileOf(template, c).text, env: envOf(c), flags };
}

/** A loaded setting by its dotted key. */
function settingValue(cfg: object, key: string): unknown {
  return key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], cfg);
}

function quantity(q: string | number | undefined): number {
  if (q === undefined) return NaN;
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|k|M|G)?$/.exec(String(q));
  if (!m) return NaN;
  const unit: Record<string, number> = {
    m: 1e-3,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
  };
  return Number(m[1]) * (m[2] === undefined ? 1 : unit[m[2]]!);
}

// ---------------------------------------------------------------------------------------------
// Schemas.

test('kubectl kustomize renders the base, and every object is valid against its schema', (t) => {
  const objs = objects();
  t.true(objs.length > 10, `only ${objs.length} objects rendered`);
  const problems = objs.flatMap((o) => {
    const e = schemaErrors(o);
    return e === undefined ? [] : [`${o.kind}/${o.metadata.name}: ${e}`];
  });
  t.deepEqual(problems, []);
});

test('no rendered object carries a field the Kubernetes API does not know', (t) => {
  t.deepEqual(
    objects().flatMap((o) => strictFieldErrors(o)),
    [],
  );
});

test('the schema checks catch a wrong type and a misspelt field', (t) => {
  // So that the two tests above can fail: the same checks on a broken copy of a DaemonSet.
  const ds = structuredClone(named<IDaemonSet>('DaemonSet', 'podmesh-agent'));
  const c = ds.spec!.template.spec!.containers[0]!;
  (c.ports![0] as { containerPort: unknown }).containerPort = 'http';
  t.regex(schemaErrors(ds) ?? '', /containerPort/);
  (c.securityContext as Record<string, unknown>)['readOnlyRootFileSystem'] = true;
  t.true(strictFieldErrors(ds).some((e) => e.includes('readOnlyRootFileSystem')));
});

test('the expected kinds are all there', (t) => {
  const names = new Set(objects().map((o) => `${o.kind}/${o.metadata.name}`));
  for (const want of [
    'Namespace/podmesh',
    'PriorityClass/podmesh',
    'ServiceAccount/podmesh-agent',
    'ServiceAccount/podmesh-controller',
    'DaemonSet/podmesh-agent',
    'DaemonSet/podmesh-agent-host',
    'Deployment/podmesh-controller',
    'Service/podmesh-agent',
    'Service/podmesh-agent-host',
    'Service/podmesh-controller',
    'NetworkPolicy/podmesh-agent',
    'NetworkPolicy/podmesh-controller',
  ])
    t.true(names.has(want), `${want} missing`);
  // The agents' config (name with a content hash); the dashboards are a component's.
  t.is(ofKind('ConfigMap').length, 1);
  // Applies on any cluster: built-in kinds only (the PodMonitor and PrometheusRule, which need
  // the prometheus-operator's CRDs, are the prometheus-operator component's).
  t.deepEqual(
    objects()
      .filter((o) => !BUILT_IN_GROUPS.has(apiGroup(o)))
      .map((o) => `${o.apiVersion} ${o.kind}`),
    [],
  );
  // Everything namespaced lives in podmesh's namespace, except Role pairs in kube-system (DNS
  // endpoints, plumbing) and in default (Node Events).
  for (const o of objects()) {
    if (['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PriorityClass'].includes(o.kind))
      continue;
    const ns = o.metadata.namespace;
    if (ns === 'kube-system' || ns === 'default')
      t.true(['Role', 'RoleBinding'].includes(o.kind), `${o.kind}/${o.metadata.name} in ${ns}`);
    else t.is(ns, NAMESPACE, `${o.kind}/${o.metadata.name}`);
  }
});

// ---------------------------------------------------------------------------------------------
// RBAC.

test('RBAC grants exactly what the code uses, and no wildcards', (t) => {
  const roles = new Map<string, IPolicyRule[]>();
  for (const r of objects().filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole')) {
    t.false('aggregationRule' in r, `${r.kind}/${r.metadata.name} aggregates other roles`);
    const key =
      r.kind === 'Role'
        ? `Role/${r.metadata.namespace}/${r.metadata.name}`
        : `ClusterRole/${r.metadata.name}`;
    roles.set(key, (r['rules'] as IPolicyRule[] | undefined) ?? []);
  }

  for (const [role, rules] of roles)
    for (const rule of rules) {
      const all = [...(rule.apiGroups ?? []), ...rule.verbs, ...(rule.resources ?? [])];
      t.false(
        all.some((x) => x.includes('*')),
        `${role}: wildcard in ${JSON.stringify(rule)}`,
      );
      t.is(rule.nonResourceURLs, undefined, `${role}: nonResourceURLs`);
      t.true(
        (rule.resources ?? []).every((r) => !r.includes('/')),
        `${role}: subresource in ${JSON.stringify(rule)}`,
      );
    }

  const granted = new Set<string>();
  const usedRoles = new Set<string>();
  for (const b of objects().filter(
    (o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding',
  )) {
    const binding = b as unknown as IRoleBinding & Obj;
    const scope = b.kind === 'ClusterRoleBinding' ? 'cluster' : b.metadata.namespace!;
    const ref = binding.roleRef;
    const key =
      ref.kind === 'Role' ? `Role/${b.metadata.namespace}/${ref.name}` : `ClusterRole/${ref.name}`;
    const rules = roles.get(key);
    t.not(rules, undefined, `${b.kind}/${b.metadata.name} refers to missing ${key}`);
    usedRoles.add(key);
    for (const s of binding.subjects ?? []) {
      t.is(s.kind, 'ServiceAccount', `${b.kind}/${b.metadata.name}: subject ${s.kind}`);
      t.is(
        s.namespace,
        NAMESPACE,
        `${b.kind}/${b.metadata.name}: subject ${s.name} outside ${NAMESPACE}`,
      );
      for (const rule of rules ?? [])
        for (const g of rule.apiGroups ?? [])
          for (const r of rule.resources ?? [])
            for (const v of rule.verbs)
              granted.add(
                `${s.name} | ${scope} | ${g || 'core'} | ${r} | ${v}${onlyNames(rule.resourceNames)}`,
              );
    }
  }
  const expected = EXPECTED_GRANTS.flatMap((g) =>
    g.verbs.map(
      (v) =>
        `${g.serviceAccount} | ${g.scope} | ${g.apiGroup || 'core'} | ${g.resource} | ${v}${onlyNames(g.resourceNames)}`,
    ),
  );
  t.deepEqual([...granted].sort(), [...new Set(expected)].sort());
  t.deepEqual(
    [...roles.keys()].filter((k) => !usedRoles.has(k)),
    [],
    'roles nothing binds',
  );

  // The table's subjects are the identities the workloads run as.
  t.is(
    named<IDaemonSet>('DaemonSet', 'podmesh-agent').spec!.template.spec!.serviceAccountName,
    'podmesh-agent',
  );
  t.is(
    named<IDaemonSet>('DaemonSet', 'podmesh-agent-host').spec!.template.spec!.serviceAccountName,
    'podmesh-agent',
  );
  t.is(
    named<IDeployment>('Deployment', 'podmesh-controller').spec!.template.spec!.serviceAccountName,
    'podmesh-controller',
  );
  for (const w of workloads()) {
    const sa = w.template.spec?.serviceAccountName;
    t.true(
      ofKind('ServiceAccount').some((s) => s.metadata.name === sa),
      `${w.name}: ServiceAccount ${sa} not rendered`,
    );
    t.not(
      w.template.spec?.automountServiceAccountToken,
      false,
      `${w.name} needs its token for the API`,
    );
  }
});

// ---------------------------------------------------------------------------------------------
// Pod security.

// The Pod Security Standards as the PodSecurity admission plugin checks them at "latest"
// (https://kubernetes.io/docs/concepts/security/pod-security-standards/; one function per control
// of k8s.io/pod-security-admission/policy, named by its check ID). Windows-only relaxations and the
// user-namespace relaxation are left out, so this is at most stricter than the real thing. Every
// control reads the rendered Pod template, so what kubectl would send is what is judged.

type PssLevel = 'baseline' | 'restricted';
type IObjectMeta = NonNullable<IPodTemplateSpec['metadata']>;

interface PssControl {
  readonly id: string;
  readonly level: PssLevel;
  /** What breaks the control, one line each; empty when the Pod passes. */
  readonly check: (pod: IPodSpec, meta: IObjectMeta | undefined) => string[];
}

/** The capabilities "baseline" lets a container add (NET_RAW is not one of them). */
const BASELINE_CAPABILITIES = new Set([
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);
/**
 * The "safe" sysctls every policy version admits (later versions add a few tcp_* and
 * ip_local_reserved_ports; using the oldest set keeps the verdict true for every version).
 */
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
]);
const RESTRICTED_VOLUME_SOURCES = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);
const BASELINE_SELINUX_TYPES = new Set([
  '',
  'container_t',
  'container_init_t',
  'container_kvm_t',
  'container_engine_t',
]);

function podContainers(pod: IPodSpec): IContainer[] {
  return [
    ...(pod.initContainers ?? []),
    ...pod.containers,
    ...((pod.ephemeralContainers ?? []) as IContainer[]),
  ];
}

/** Lines for each container `bad` says something about. */
function perContainer(pod: IPodSpec, bad: (c: IContainer) => string | undefined): string[] {
  return podContainers(pod).flatMap((c) => {
    const why = bad(c);
    return why === undefined ? [] : [`container ${c.name}: ${why}`];
  });
}

const PSS_CONTROLS: readonly PssControl[] = [
  // ---- baseline
  {
    id: 'hostProcess',
    level: 'baseline',
    check: (pod) => [
      ...(pod.securityContext?.windowsOptions?.hostProcess === true ? ['pod: hostProcess'] : []),
      ...perContainer(pod, (c) =>
        c.securityContext?.windowsOptions?.hostProcess === true ? 'hostProcess' : undefined,
      ),
    ],
  },
  {
    id: 'hostNamespaces',
    level: 'baseline',
    check: (pod) =>
      (['hostNetwork', 'hostPID', 'hostIPC'] as const).flatMap((k) =>
        pod[k] === true ? [`pod: ${k}`] : [],
      ),
  },
  {
    id: 'privileged',
    level: 'baseline',
    check: (pod) =>
      perContainer(pod, (c) => (c.securityContext?.privileged === true ? 'privileged' : undefined)),
  },
  {
    id: 'capabilities_baseline',
    level: 'baseline',
    check: (pod) =>
      perContainer(pod, (c) => {
        const extra = (c.securityContext?.capabilities?.add ?? []).filter(
          (cap) => !BASELINE_CAPABILITIES.has(cap),
        );
        return extra.length > 0 ? `adds ${extra.join(', ')}` : undefined;
      }),
  },
  {
    id: 'hostPathVolumes',
    level: 'baseline',
    check: (pod) =>
      (pod.volumes ?? []).flatMap((v) => (v.hostPath !== undefined ? [`volume ${v.name}`] : [])),
  },
  {
    id: 'hostPorts',
    level: 'baseline',
    check: (pod) =>
      perContainer(pod, (c) => {
        const ports = (c.ports ?? []).filter((p) => (p.hostPort ?? 0) !== 0);
        return ports.length > 0 ? `hostPort ${ports.map((p) => p.hostPort).join(', ')}` : undefined;
      }),
  },
  {
    id: 'appArmorProfile',
    level: 'baseline',
    check: (pod, meta) => [
      ...(pod.securityContext?.appArmorProfile?.type === 'Unconfined' ? ['pod: Unconfined'] : []),
      ...perContainer(pod, (c) =>
        c.securityContext?.appArmorProfile?.type === 'Unconfined' ? 'Unconfined' : undefined,
      ),
      ...Object.entries(meta?.annotations ?? {})
        .filter(([k]) => k.startsWith('container.apparmor.security.beta.kubernetes.io/'))
        .filter(([, v]) => v !== 'runtime/default' && !v.startsWith('localhost/'))
        .map(([k, v]) => `annotation ${k}: ${v}`),
    ],
  },
  {
    id: 'seLinuxOptions',
    level: 'baseline',
    check: (pod) => {
      const bad = (o: { type?: string; user?: string; role?: string } | undefined) =>
        o !== undefined &&
        (!BASELINE_SELINUX_TYPES.has(o.type ?? '') ||
          (o.user ?? '') !== '' ||
          (o.role ?? '') !== '');
      return [
        ...(bad(pod.securityContext?.seLinuxOptions) ? ['pod: seLinuxOptions'] : []),
        ...perContainer(pod, (c) =>
          bad(c.securityContext?.seLinuxOptions) ? 'seLinuxOptions' : undefined,
        ),
      ];
    },
  },
  {
    id: 'procMount',
    level: 'baseline',
    check: (pod) =>
      perContainer(pod, (c) => {
        const m = c.securityContext?.procMount;
        return m === undefined || m === 'Default' ? undefined : `procMount ${m}`;
      }),
  },
  {
    id: 'seccompProfile_baseline',
    level: 'baseline',
    check: (pod) => [
      ...(pod.securityContext?.seccompProfile?.type === 'Unconfined' ? ['pod: Unconfined'] : []),
      ...perContainer(pod, (c) =>
        c.securityContext?.seccompProfile?.type === 'Unconfined' ? 'Unconfined' : undefined,
      ),
    ],
  },
  {
    id: 'sysctls',
    level: 'baseline',
    check: (pod) =>
      (pod.securityContext?.sysctls ?? []).flatMap((x) =>
        SAFE_SYSCTLS.has(x.name) ? [] : [`sysctl ${x.name}`],
      ),
  },
  {
    id: 'hostProbesAndHostLifecycle',
    level: 'baseline',
    check: (pod) =>
      perContainer(pod, (c) => {
        const hosts = [
          c.livenessProbe,
          c.readinessProbe,
          c.startupProbe,
          c.lifecycle?.postStart,
          c.lifecycle?.preStop,
        ].flatMap((h) => [h?.httpGet?.host ?? '', h?.tcpSocket?.host ?? '']);
        const set = hosts.filter((h) => h !== '');
        return set.length > 0 ? `probe or lifecycle host ${set.join(', ')}` : undefined;
      }),
  },
  // ---- restricted (on top of everything above)
  {
    id: 'restrictedVolumes',
    level: 'restricted',
    check: (pod) =>
      (pod.volumes ?? []).flatMap((v) => {
        const sources = Object.keys(v).filter((k) => k !== 'name');
        const bad = sources.filter((k) => !RESTRICTED_VOLUME_SOURCES.has(k));
        return bad.length > 0 ? [`volume ${v.name}: ${bad.join(', ')}`] : [];
      }),
  },
  {
    id: 'allowPrivilegeEscalation',
    level: 'restricted',
    check: (pod) =>
      perContainer(pod, (c) =>
        c.securityContext?.allowPrivilegeEscalation === false
          ? undefined
          : 'must set allowPrivilegeEscalation: false',
      ),
  },
  {
    id: 'runAsNonRoot',
    level: 'restricted',
    check: (pod) => {
      const podLevel = pod.securityContext?.runAsNonRoot;
      return [
        ...(podLevel === false ? ['pod: runAsNonRoot: false'] : []),
        ...perContainer(pod, (c) => {
          const own = c.securityContext?.runAsNonRoot;
          if (own === false) return 'runAsNonRoot: false';
          return own === true || podLevel === true ? undefined : 'runAsNonRoot not true';
        }),
      ];
    },
  },
  {
    id: 'runAsUser',
    level: 'restricted',
    check: (pod) => [
      ...(pod.securityContext?.runAsUser === 0 ? ['pod: runAsUser 0'] : []),
      ...perContainer(pod, (c) => (c.securityContext?.runAsUser === 0 ? 'runAsUser 0' : undefined)),
    ],
  },
  {
    id: 'seccompProfile_restricted',
    level: 'restricted',
    check: (pod) => {
      const ok = (type: string | undefined) => type === 'RuntimeDefault' || type === 'Localhost';
      const podType = pod.securityContext?.seccompProfile?.type;
      return [
        ...(podType !== undefined && !ok(podType) ? [`pod: seccompProfile ${podType}`] : []),
        ...perContainer(pod, (c) => {
          const own = c.securityContext?.seccompProfile?.type;
          if (own !== undefined) return ok(own) ? undefined : `seccompProfile ${own}`;
          return ok(podType) ? undefined : 'no RuntimeDefault or Localhost seccompProfile';
        }),
      ];
    },
  },
  {
    id: 'capabilities_restricted',
    level: 'restricted',
    check: (pod) =>
      perContainer(pod, (c) => {
        const caps = c.securityContext?.capabilities;
        const problems = [
          ...((caps?.drop ?? []).includes('ALL') ? [] : ['must drop ALL']),
          ...(caps?.add ?? [])
            .filter((cap) => cap !== 'NET_BIND_SERVICE')
            .map((cap) => `adds ${cap}`),
        ];
        return problems.length > 0 ? problems.join('; ') : undefined;
      }),
  },
];

/** What keeps a Pod template out of `level`: "<control>: <why>" lines, empty when it passes. */
function podSecurityViolations(template: IPodTemplateSpec, level: PssLevel): string[] {
  const pod = structuredClone(template.spec!);
  // The one API-server default that matters here: on the host network a container port is
  // also a host port (hostPort defaults to containerPort), and the admission plugin sees that.
  if (pod.hostNetwork === true)
    for (const c of podContainers(pod))
      for (const p of c.ports ?? []) p.hostPort ??= p.containerPort;
  return PSS_CONTROLS.filter((c) => level === 'restricted' || c.level === 'baseline').flatMap((c) =>
    c.check(pod, template.metadata).map((why) => `${c.id}: ${why}`),
  );
}

const violatedControls = (template: IPodTemplateSpec, level: PssLevel): string[] => [
  ...new Set(podSecurityViolations(template, level).map((v) => v.slice(0, v.indexOf(':')))),
];

function podAgentTemplate(): IPodTemplateSpec {
  return named<IDaemonSet>('DaemonSet', 'podmesh-agent').spec!.template;
}

test('the pod-network agent passes Pod Security "restricted"', (t) => {
  t.deepEqual(podSecurityViolations(podAgentTemplate(), 'restricted'), []);
  // The controller too: only the host agent needs more.
  for (const w of workloads().filter((x) => x.name !== 'podmesh-agent-host'))
    t.deepEqual(podSecurityViolations(w.template, 'restricted'), [], w.name);
});

test('the Pod Security checker fails each control it checks', (t) => {
  // Each change to the (passing) pod agent must break exactly the controls listed, so every
  // control above can fail, and none fires on what the profile allows.
  type Change = (pod: IPodSpec, c: IContainer, meta: IObjectMeta) => void;
  const cases: [string, Change, string[]][] = [
    // On the host network every container port becomes a host port (API-server default).
    ['hostNetwork', (p) => (p.hostNetwork = true), ['hostNamespaces', 'hostPorts']],
    ['hostPID', (p) => (p.hostPID = true), ['hostNamespaces']],
    ['privileged', (_p, c) => (c.securityContext!.privileged = true), ['privileged']],
    [
      'add NET_RAW',
      (_p, c) => (c.securityContext!.capabilities!.add = ['NET_RAW']),
      ['capabilities_baseline', 'capabilities_restricted'],
    ],
    [
      'add CHOWN (baseline allows it)',
      (_p, c) => (c.securityContext!.capabilities!.add = ['CHOWN']),
      ['capabilities_restricted'],
    ],
    [
      'add NET_BIND_SERVICE (restricted allows it)',
      (_p, c) => (c.securityContext!.capabilities!.add = ['NET_BIND_SERVICE']),
      [],
    ],
    [
      'drop nothing',
      (_p, c) => (c.securityContext!.capabilities!.drop = []),
      ['capabilities_restricted'],
    ],
    [
      'hostPath volume',
      (p) => p.volumes!.push({ name: 'host', hostPath: { path: '/' } }),
      ['hostPathVolumes', 'restrictedVolumes'],
    ],
    [
      'nfs volume',
      (p) => p.volumes!.push({ name: 'nfs', nfs: { server: 'nfs.example', path: '/' } }),
      ['restrictedVolumes'],
    ],
    [
      'projected volume (allowed)',
      (p) => p.volumes!.push({ name: 'token', projected: { sources: [] } }),
      [],
    ],
    ['hostPort', (_p, c) => (c.ports![0]!.hostPort = 9860), ['hostPorts']],
    [
      'seccomp Unconfined',
      (_p, c) => (c.securityContext!.seccompProfile = { type: 'Unconfined' }),
      ['seccompProfile_baseline', 'seccompProfile_restricted'],
    ],
    [
      'no seccomp profile anywhere',
      (p, c) => {
        delete p.securityContext!.seccompProfile;
        delete c.securityContext!.seccompProfile;
      },
      ['seccompProfile_restricted'],
    ],
    [
      'allowPrivilegeEscalation left unset',
      (_p, c) => delete c.securityContext!.allowPrivilegeEscalation,
      ['allowPrivilegeEscalation'],
    ],
    ['runAsNonRoot false', (_p, c) => (c.securityContext!.runAsNonRoot = false), ['runAsNonRoot']],
    [
      'runAsNonRoot nowhere',
      (p, c) => {
        delete p.securityContext!.runAsNonRoot;
        delete c.securityContext!.runAsNonRoot;
      },
      ['runAsNonRoot'],
    ],
    ['runAsUser 0', (_p, c) => (c.securityContext!.runAsUser = 0), ['runAsUser']],
    [
      'an unsafe sysctl',
      (p) => p.securityContext!.sysctls!.push({ name: 'net.core.somaxconn', value: '1024' }),
      ['sysctls'],
    ],
    ['procMount Unmasked', (_p, c) => (c.securityContext!.procMount = 'Unmasked'), ['procMount']],
    [
      'SELinux type spc_t',
      (_p, c) => (c.securityContext!.seLinuxOptions = { type: 'spc_t' }),
      ['seLinuxOptions'],
    ],
    [
      'AppArmor Unconfined',
      (p) => (p.securityContext!.appArmorProfile = { type: 'Unconfined' }),
      ['appArmorProfile'],
    ],
    [
      'AppArmor annotation unconfined',
      (_p, _c, m) =>
        (m.annotations = { 'container.apparmor.security.beta.kubernetes.io/agent': 'unconfined' }),
      ['appArmorProfile'],
    ],
    [
      'probe with a host',
      (_p, c) => (c.readinessProbe!.httpGet!.host = '10.0.0.1'),
      ['hostProbesAndHostLifecycle'],
    ],
    [
      'Windows hostProcess',
      (p) => (p.securityContext!.windowsOptions = { hostProcess: true }),
      ['hostProcess'],
    ],
  ];
  for (const [what, change, expected] of cases) {
    const template = structuredClone(podAgentTemplate());
    template.metadata ??= {};
    change(template.spec!, template.spec!.containers[0]!, template.metadata);
    t.deepEqual(violatedControls(template, 'restricted').sort(), [...expected].sort(), what);
  }
});

test('the pod agent adds no capability, runs as the image user, and allows ping sockets', (t) => {
  const template = podAgentTemplate();
  const pod = template.spec!;
  const [c] = pod.containers;
  t.deepEqual(c!.securityContext?.capabilities?.add ?? [], [], 'no capability added');
  t.deepEqual(c!.securityContext?.capabilities?.drop, ['ALL']);
  t.is(c!.securityContext?.allowPrivilegeEscalation, false);
  t.is(c!.securityContext?.readOnlyRootFilesystem, true);
  t.is(pod.securityContext?.runAsNonRoot, true);
  t.is(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault');

  // The image's USER, so files the image ships are what this user was tested with.
  const dockerfile = readFileSync(new URL('deploy/Dockerfile', ROOT), 'utf8');
  const user = /^USER (\d+):(\d+)$/m.exec(dockerfile);
  t.truthy(user, 'the Dockerfile sets a numeric USER uid:gid');
  const uid = c!.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
  const gid = c!.securityContext?.runAsGroup ?? pod.securityContext?.runAsGroup;
  t.is(uid, Number(user![1]));
  t.is(gid, Number(user![2]));

  // The kernel lets a process open an ICMP ping socket when its group is inside
  // net.ipv4.ping_group_range ("low high"); the agent's group must be.
  const sysctl = pod.securityContext?.sysctls?.find((x) => x.name === 'net.ipv4.ping_group_range');
  t.truthy(sysctl, 'net.ipv4.ping_group_range is set');
  const [low, high] = (sysctl?.value ?? '').trim().split(/\s+/).map(Number);
  t.true(low! <= gid! && gid! <= high!, `group ${gid} outside ping_group_range ${sysctl?.value}`);
  t.is(sysctl?.value, '0 2147483647', 'the range containerd 2.x sets');
});

test('containers drop every capability, only the host agent adds one (NET_RAW), none escalates', (t) => {
  for (const w of workloads()) {
    const pod = w.template.spec!;
    t.not(pod.hostPID, true, w.name);
    t.not(pod.hostIPC, true, w.name);
    t.false(
      (pod.volumes ?? []).some((v) => v.hostPath !== undefined),
      `${w.name}: hostPath volume`,
    );
    for (const c of containersOf(w)) {
      const id = `${w.name}/${c.name}`;
      const sc = c.securityContext ?? {};
      const seccomp = sc.seccompProfile ?? pod.securityContext?.seccompProfile;
      t.is(seccomp?.type, 'RuntimeDefault', `${id}: seccompProfile`);
      t.not(sc.privileged, true, `${id}: privileged`);
      t.is(sc.allowPrivilegeEscalation, false, `${id}: allowPrivilegeEscalation`);
      t.is(sc.readOnlyRootFilesystem, true, `${id}: readOnlyRootFilesystem`);
      t.deepEqual(sc.capabilities?.drop, ['ALL'], `${id}: capabilities.drop`);
      const added = sc.capabilities?.add ?? [];
      t.true(
        added.every((cap) => cap === 'NET_RAW'),
        `${id}: adds ${added.join(',')}`,
      );

      const runAsNonRoot = sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot;
      const runAsUser = sc.runAsUser ?? pod.securityContext?.runAsUser;
      if (added.length === 0) {
        // Nothing needs root: the controller and the pod agent run as the image's user.
        t.is(runAsNonRoot, true, `${id}: runAsNonRoot`);
        t.not(runAsUser, 0, `${id}: runAsUser`);
      } else {
        // Linux clears added capabilities when a non-root user execs (no ambient capabilities
        // from Kubernetes), so NET_RAW only takes effect for UID 0. Asking for it as non-root
        // would look safe and silently turn the raw-socket fallback off.
        t.is(runAsUser, 0, `${id}: NET_RAW without UID 0 has no effect`);
      }
    }
  }
  // Only the host agent asks for NET_RAW: on the node's network it can't set ping_group_range,
  // so raw ICMP is its fallback. The pod agent has ping sockets; the controller sends no ICMP.
  const withRaw = workloads()
    .filter((w) =>
      containersOf(w).some((c) => c.securityContext?.capabilities?.add?.includes('NET_RAW')),
    )
    .map((w) => w.name)
    .sort();
  t.deepEqual(withRaw, ['podmesh-agent-host']);
});

test("the namespace's Pod Security level admits the host agent and no more than it needs", (t) => {
  const ns = named<INamespace>('Namespace', NAMESPACE);
  const labels = ns.metadata.labels ?? {};
  // The host agent breaks "baseline" with hostNetwork (and the host ports it implies) and with
  // NET_RAW (not in baseline's list of capabilities). That, and only that, forces "privileged".
  const host = named<IDaemonSet>('DaemonSet', 'podmesh-agent-host').spec!.template;
  t.deepEqual(violatedControls(host, 'baseline').sort(), [
    'capabilities_baseline',
    'hostNamespaces',
    'hostPorts',
  ]);
  const beyondBaseline = workloads().filter(
    (w) => podSecurityViolations(w.template, 'baseline').length > 0,
  );
  t.deepEqual(
    beyondBaseline.map((w) => w.name),
    ['podmesh-agent-host'],
  );
  // The lowest level that admits every workload.
  const lowest =
    beyondBaseline.length > 0
      ? 'privileged'
      : workloads().some((w) => podSecurityViolations(w.template, 'restricted').length > 0)
        ? 'baseline'
        : 'restricted';
  t.is(labels['pod-security.kubernetes.io/enforce'], lowest);
  t.is(labels['pod-security.kubernetes.io/audit'], 'baseline');
});

// ---------------------------------------------------------------------------------------------
// Agents: scheduling, config, ports.

test('agent DaemonSets run everywhere, with priority, probes, resources and the right labels', (t) => {
  const agents = agentDaemonSets();
  t.deepEqual(agents.map((a) => a.metadata.name).sort(), ['podmesh-agent', 'podmesh-agent-host']);
  const priorityClasses = ofKind<IPriorityClass>('PriorityClass');
  for (const ds of agents) {
    const spec = ds.spec!;
    const pod = spec.template.spec!;
    const labels = spec.template.metadata?.labels ?? {};
    const id = ds.metadata.name;
    t.true(
      matches(spec.selector.matchLabels, labels),
      `${id}: selector doesn't match the template`,
    );
    t.is(labels['app.kubernetes.io/name'], 'podmesh', id);
    t.is(labels['app.kubernetes.io/component'], 'agent', id);
    const network = labels['podmesh.io/network'];
    t.true(network === 'pod' || network === 'host', `${id}: podmesh.io/network=${network}`);
    t.is(pod.hostNetwork === true, network === 'host', `${id}: hostNetwork vs label`);
    if (network === 'host') t.is(pod.dnsPolicy, 'ClusterFirstWithHostNet', id);

    t.true(
      (pod.tolerations ?? []).some(
        (x) => x.operator === 'Exists' && x.key === undefined && x.effect === undefined,
      ),
      `${id}: must tolerate every taint`,
    );
    const pc = priorityClasses.find((p) => p.metadata.name === pod.priorityClassName);
    t.not(pc, undefined, `${id}: PriorityClass ${pod.priorityClassName} not rendered`);
    // User-defined classes must stay below 1e9; system-* classes are for the node itself.
    t.true(pc !== undefined && pc.value > 0 && pc.value < 1e9, `${id}: priority ${pc?.value}`);
    t.is(pod.enableServiceLinks, false, `${id}: service links would inject PODMESH_* vars`);

    const [c, ...rest] = pod.containers;
    t.is(rest.length, 0);
    t.deepEqual(c!.args?.slice(0, 1), ['agent']);
    t.is(c!.readinessProbe?.httpGet?.path, '/readyz');
    t.is(c!.readinessProbe?.httpGet?.port, 'http');
    t.is(c!.livenessProbe?.httpGet?.path, '/healthz');
    t.is(c!.livenessProbe?.httpGet?.port, 'http');
    // The drain on SIGTERM must fit in the grace period.
    const cfg = loadConfig(sourcesOf(spec.template, c!));
    t.true((pod.terminationGracePeriodSeconds ?? 30) * 1000 > cfg.shutdown.drainMs + 5000, id);
  }
});

test('every container has requests and limits, and agents fit the README budget', (t) => {
  for (const w of workloads())
    for (const c of containersOf(w)) {
      const id = `${w.name}/${c.name}`;
      const r = c.resources ?? {};
      for (const res of ['cpu', 'memory']) {
        const req = quantity(r.requests?.[res]);
        const lim = quantity(r.limits?.[res]);
        t.true(req > 0 && lim > 0, `${id}: ${res} request and limit`);
        t.true(req <= lim, `${id}: ${res} request above limit`);
      }
    }
  for (const ds of agentDaemonSets()) {
    const r = ds.spec!.template.spec!.containers[0]!.resources!;
    // README: RSS under 100 MB at 1,000 probes/s, under 10% of one core. The limits leave room
    // above that, so the kernel doesn't kill an agent (or throttle it, skewing RTT) in a burst.
    t.true(
      quantity(r.limits!['memory']) > 100e6,
      `${ds.metadata.name}: memory limit under the 100 MB budget`,
    );
    t.true(quantity(r.limits!['cpu']) >= 0.1, `${ds.metadata.name}: cpu limit under 10% of a core`);
  }
});

test('both agents run Node with the same heap cap, below their memory limit', (t) => {
  const caps = agentDaemonSets().map((ds) => {
    const c = ds.spec!.template.spec!.containers[0]!;
    const opts = envOf(c)['NODE_OPTIONS'] ?? '';
    const mb = /(?:^|\s)--max-old-space-size=(\d+)(?:\s|$)/.exec(opts)?.[1];
    t.truthy(mb, `${ds.metadata.name}: NODE_OPTIONS sets --max-old-space-size (got "${opts}")`);
    // Old space alone must fit under the limit with room for Node itself, the worker thread's
    // heap and the young generations (~60 MB measured), or the kernel kills before V8 says why.
    const limit = quantity(c.resources!.limits!['memory']);
    t.true(
      Number(mb) * 1024 ** 2 + 60 * 1024 ** 2 <= limit,
      `${ds.metadata.name}: heap cap ${mb} MB + 60 MB over the ${limit / 1024 ** 2} MiB limit`,
    );
    return opts;
  });
  t.is(caps.length, 2);
  t.is(caps[0], caps[1], 'the pod and host agents run with the same NODE_OPTIONS');
});

test('PODMESH_* env vars and flags in every container are real settings, and take effect', (t) => {
  const byEnv = new Map(SETTINGS.filter((s) => s.scalar).map((s) => [envName(s.key), s.key]));
  t.true(byEnv.has('PODMESH_NODE')); // the table is the real one
  for (const w of workloads())
    for (const c of containersOf(w)) {
      const env = envOf(c);
      for (const [name, value] of Object.entries(env)) {
        if (!name.startsWith('PODMESH_')) continue;
        const key = byEnv.get(name);
        t.not(key, undefined, `${w.name}/${c.name}: ${name} is not a podmesh setting`);
        if (key === undefined) continue;
        // Loaded from this variable alone, the setting must have its value: a variable the
        // loader skips (or a renamed setting) would leave the default in place.
        const cfg = loadConfig({ env: { [name]: value } });
        t.is(String(settingValue(cfg, key)), value, `${w.name}/${c.name}: ${name} has no effect`);
      }
      if (c.args?.[0] === 'agent')
        t.notThrows(() => sourcesOf(w.template, c), `${w.name}/${c.name}: flags`);
    }
});

test('the config file in the ConfigMap loads, and agent ports match the config the agent loads', (t) => {
  const portOf = (c: IContainer, name: string) => c.ports?.find((p) => p.name === name);
  const seen: number[][] = [];
  for (const ds of agentDaemonSets()) {
    const template = ds.spec!.template;
    const c = template.spec!.containers[0]!;
    const id = ds.metadata.name;
    const file = configFileOf(template, c);
    t.notThrows(() => loadConfig({ fileText: file.text }), `${id}: ${file.path}`);
    // What the agent will run with: the file, the container's env (downward API values stood
    // in by samples) and its flags, through the real loader.
    const cfg = loadConfig(sourcesOf(template, c));
    t.is(String(template.metadata?.labels?.['podmesh.io/network']), cfg.network, `${id}: network`);
    t.is(String(FIELD_SAMPLES['spec.nodeName']), cfg.node, `${id}: node from the downward API`);
    t.is(cfg.advertiseAddress, FIELD_SAMPLES['status.podIP'], `${id}: advertise address`);
    t.deepEqual(
      portOf(c, 'http'),
      { name: 'http', containerPort: cfg.httpPort, protocol: 'TCP' },
      id,
    );
    t.deepEqual(
      portOf(c, 'stamp'),
      { name: 'stamp', containerPort: cfg.stampPort, protocol: 'UDP' },
      id,
    );
    t.deepEqual(portOf(c, 'tcp'), { name: 'tcp', containerPort: cfg.tcpPort, protocol: 'TCP' }, id);
    t.is(c.ports?.length, 3, id);
    seen.push([cfg.httpPort, cfg.stampPort, cfg.tcpPort]);
  }
  // The host agent's ports are bound on the node itself: keep them apart from the pod agent's.
  t.is(new Set(seen.flat()).size, seen.flat().length, `ports overlap: ${JSON.stringify(seen)}`);
});

// ---------------------------------------------------------------------------------------------
// Controller, Services, NetworkPolicy, PodMonitor, image.

test('the controller Deployment: one replica, the controller command, probes', (t) => {
  const d = named<IDeployment>('Deployment', 'podmesh-controller');
  const spec = d.spec!;
  t.is(spec.replicas, 1);
  t.true(matches(spec.selector.matchLabels, spec.template.metadata?.labels));
  t.is(spec.template.metadata?.labels?.['app.kubernetes.io/component'], 'controller');
  const c = spec.template.spec!.containers[0]!;
  t.deepEqual(c.args?.slice(0, 1), ['controller']);
  t.is(spec.template.spec!.enableServiceLinks, false);
  t.is(c.readinessProbe?.httpGet?.path, '/readyz');
  t.is(c.livenessProbe?.httpGet?.path, '/healthz');
  t.true(c.ports?.some((p) => p.name === 'http'));
});

test('Services select existing Pods and target ports those Pods declare', (t) => {
  const templates = workloads().map((w) => w.template);
  for (const s of ofKind<IService>('Service')) {
    const selected = templates.filter((tp) => matches(s.spec?.selector, tp.metadata?.labels));
    t.true(selected.length > 0, `Service ${s.metadata.name} selects no Pods`);
    for (const p of s.spec?.ports ?? [])
      for (const tp of selected) {
        const cp = tp
          .spec!.containers.flatMap((c) => c.ports ?? [])
          .find((x) => x.name === p.targetPort);
        t.not(
          cp,
          undefined,
          `Service ${s.metadata.name}: no container port ${String(p.targetPort)}`,
        );
        t.is(cp?.protocol ?? 'TCP', p.protocol ?? 'TCP', `Service ${s.metadata.name}: ${p.name}`);
        if (s.spec?.clusterIP === 'None')
          t.is(cp?.containerPort, p.port, `headless ${s.metadata.name}: ${p.name}`);
      }
  }
});

test('NetworkPolicies let every probe protocol reach the agents', (t) => {
  const agentTemplates = agentDaemonSets().map((d) => d.spec!.template);
  const policies = ofKind<INetworkPolicy>('NetworkPolicy');
  const forAgents = policies.filter((p) =>
    agentTemplates.some((tp) => matches(p.spec?.podSelector.matchLabels, tp.metadata?.labels)),
  );
  t.true(forAgents.length > 0, 'no NetworkPolicy selects the agents');
  // ICMP can't be listed in `ports`, and host-network peers come from node addresses: only a
  // rule with neither ports nor sources admits icmp probes from every peer.
  t.true(
    forAgents.some((p) =>
      (p.spec?.ingress ?? []).some((r) => r.ports === undefined && r.from === undefined),
    ),
    'agents: no rule admits ICMP from every peer',
  );
  t.true(
    forAgents.some((p) =>
      (p.spec?.egress ?? []).some((r) => r.ports === undefined && r.to === undefined),
    ),
    'agents: probes out to every peer',
  );
  // Named ports in any policy exist on the Pods it selects.
  for (const p of policies) {
    const selected = workloads()
      .map((w) => w.template)
      .filter((tp) => matches(p.spec?.podSelector.matchLabels, tp.metadata?.labels));
    t.true(selected.length > 0, `NetworkPolicy ${p.metadata.name} selects no Pods`);
    for (const rule of p.spec?.ingress ?? [])
      for (const port of rule.ports ?? [])
        if (typeof port.port === 'string')
          for (const tp of selected)
            t.true(
              tp.spec!.containers.some((c) => c.ports?.some((x) => x.name === port.port)),
              `NetworkPolicy ${p.metadata.name}: port ${port.port}`,
            );
  }
});

test('the PodMonitor scrapes /metrics on the http port of every agent and the controller', (t) => {
  const pm = secureNamed<IPodMonitor>(
    'PodMonitor',
    'podmesh',
    withComponents(['prometheus-operator']),
  );
  const sel = pm.spec.selector;
  const selects = (labels: Record<string, string> | undefined): boolean =>
    matches(sel.matchLabels, labels) &&
    (sel.matchExpressions ?? []).every(
      (e) => e.operator === 'In' && (e.values ?? []).includes(labels?.[e.key] ?? '\u0000'),
    );
  for (const w of workloads()) {
    t.true(selects(w.template.metadata?.labels), `PodMonitor misses ${w.name}`);
    for (const ep of pm.spec.podMetricsEndpoints ?? []) {
      t.is(ep.path, '/metrics');
      t.true(
        w.template.spec!.containers.some((c) => c.ports?.some((p) => p.name === ep.port)),
        `${w.name}: no port ${ep.port}`,
      );
    }
  }
  t.deepEqual(pm.spec.namespaceSelector ?? { matchNames: [NAMESPACE] }, {
    matchNames: [NAMESPACE],
  });
});

test('images are the release in package.json, and the Dockerfile starts what npm run build emits', (t) => {
  const pkg = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as {
    version: string;
    bin: Record<string, string>;
  };
  for (const w of workloads())
    for (const c of containersOf(w)) t.is(c.image, `podmesh:${pkg.version}`, `${w.name}/${c.name}`);

  const dockerfile = readFileSync(new URL('deploy/Dockerfile', ROOT), 'utf8');
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile);
  t.truthy(entry, 'no exec-form ENTRYPOINT');
  const argv = JSON.parse(entry![1]!) as string[];
  t.is(argv[0], 'node');
  t.is(argv.at(-1), pkg.bin['podmesh'], 'the entry point is the compiled bin');
  t.true(
    argv.slice(1, -1).every((a) => a.startsWith('--')),
    'only node flags between node and the script',
  );
  // `npm run build` (src/bundle.ts) bundles src/main.ts into the file the image starts.
  t.is(pkg.bin['podmesh'], `dist/bundle/${Object.keys(PODMESH_ENTRIES)[0]}.js`);
  t.is(PODMESH_ENTRIES.main, 'src/main.ts');
  t.regex(dockerfile, /^COPY --from=build \/src\/dist\/bundle \.\/dist\/bundle$/m);
  t.regex(dockerfile, /^COPY --from=build \/src\/dist\/ui \.\/dist\/ui$/m);
  t.regex(dockerfile, /^USER 65532:65532$/m);
});

// ---------------------------------------------------------------------------------------------
// The secure overlay (deploy/overlays/secure, issue #14 item 10): TLS and basic auth on every
// HTTP port (components/secure-http) and NetworkPolicies that admit metrics scrapes only from
// the monitoring namespace (components/scrape-network-policy).

const SECURE = new URL('deploy/overlays/secure', ROOT).pathname;
const WEB_CONFIG_EXAMPLE = new URL('deploy/components/secure-http/web-config.example.yaml', ROOT)
  .pathname;
let renderedSecure: Obj[] | undefined;

function secure(): Obj[] {
  renderedSecure ??= render(SECURE);
  return renderedSecure;
}

function secureNamed<T>(kind: string, name: string, objs = secure()): T & Obj {
  const found = objs.find((o) => o.kind === kind && o.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name} in the rendered overlay`);
  return found as T & Obj;
}

function secureWorkloads(objs = secure()): Workload[] {
  return objs
    .filter((o) => o.kind === 'DaemonSet' || o.kind === 'Deployment')
    .map((o) => {
      const w = o as (IDaemonSet | IDeployment) & Obj;
      return { kind: w.kind, name: w.metadata.name, template: w.spec!.template };
    });
}

/** The Secret mounted at the directory holding `path` in this container, and its volume. */
function secretAt(
  template: IPodTemplateSpec,
  c: IContainer,
  path: string,
): { secretName: string; items?: string[] } | undefined {
  const mount = (c.volumeMounts ?? []).find((m) => path.startsWith(`${m.mountPath}/`));
  const volume = template.spec?.volumes?.find((v) => v.name === mount?.name);
  if (volume?.secret?.secretName === undefined) return undefined;
  return {
    secretName: volume.secret.secretName,
    ...(volume.secret.items !== undefined ? { items: volume.secret.items.map((i) => i.path) } : {}),
  };
}

test('the secure overlay renders; every object is valid and carries only known fields', (t) => {
  const objs = secure();
  t.deepEqual(
    objs.flatMap((o) => {
      const e = schemaErrors(o);
      return e === undefined ? [] : [`${o.kind}/${o.metadata.name}: ${e}`];
    }),
    [],
  );
  t.deepEqual(
    objs.flatMap((o) => strictFieldErrors(o)),
    [],
  );
  // The base's objects, plus the PodMonitor and rules and the scrape policy; nothing dropped.
  t.deepEqual(
    names(objs),
    [
      ...names(objects()),
      'PodMonitor/podmesh',
      'PrometheusRule/podmesh',
      'NetworkPolicy/podmesh-metrics-scrape',
    ].sort(),
  );
});

test('secure overlay: every podmesh server loads the web config from its Secret, and kubelet probes it over HTTPS', (t) => {
  const example = parseWebConfig(
    readFileSync(WEB_CONFIG_EXAMPLE, 'utf8'),
    '/etc/x/web-config.yaml',
  );
  t.deepEqual(example.problems, []);
  const ws = secureWorkloads();
  t.is(ws.length, 3);
  for (const w of ws) {
    const c = w.template.spec!.containers[0]!;
    const env = envOf(c);
    const file = env[envName('web.configFile')];
    t.truthy(file, `${w.name}: no ${envName('web.configFile')}`);
    t.is(secretAt(w.template, c, file!)?.secretName, 'podmesh-web-config', w.name);
    // The example's certificate and key are where this container mounts the TLS Secret.
    for (const p of [example.config!.tls!.certFile, example.config!.tls!.keyFile])
      t.is(secretAt(w.template, c, p)?.secretName, 'podmesh-web-tls', `${w.name}: ${p}`);
    for (const probe of [c.readinessProbe, c.livenessProbe]) {
      t.is(probe?.httpGet?.scheme, 'HTTPS', w.name);
      t.true(['/healthz', '/readyz'].includes(probe?.httpGet?.path ?? ''), w.name);
      t.is(probe?.httpGet?.httpHeaders, undefined, `${w.name}: probes carry no credentials`);
    }
    // What the Pod runs with, the web config file stood in by the example.
    const cfg = loadConfig({ env: { ...env, [envName('web.configFile')]: WEB_CONFIG_EXAMPLE } });
    t.truthy(cfg.web.security?.tls, w.name);
    t.true(Object.keys(cfg.web.security!.basicAuthUsers).length > 0, w.name);
  }
});

test('secure overlay: the controller pulls agents over TLS with credentials from its own Secret', (t) => {
  const d = secureNamed<IDeployment>('Deployment', 'podmesh-controller');
  const template = d.spec!.template;
  const c = template.spec!.containers[0]!;
  const env = envOf(c);
  const cfg = loadConfig({ env: { ...env, [envName('web.configFile')]: WEB_CONFIG_EXAMPLE } });
  t.is(cfg.controller.pullScheme, 'https');
  t.is(secretAt(template, c, cfg.controller.pullCaFile)?.secretName, 'podmesh-web-tls');
  t.is(cfg.controller.pullCaFile.split('/').at(-1), 'ca.crt');
  const auth = secretAt(template, c, cfg.controller.pullPasswordFile);
  t.is(auth?.secretName, 'podmesh-controller-auth');
  t.deepEqual(auth?.items, ['password'], 'only the password is mounted');
  // The controller's user is one the web config knows.
  const example = parseWebConfig(readFileSync(WEB_CONFIG_EXAMPLE, 'utf8'), '/w.yaml');
  t.true(Object.hasOwn(example.config!.basicAuthUsers, cfg.controller.pullUsername));
  t.not(cfg.controller.pullServerName, '');
  // Agents never get the controller's password.
  for (const w of secureWorkloads().filter((x) => x.kind === 'DaemonSet'))
    t.false(
      (w.template.spec?.volumes ?? []).some(
        (v) => v.secret?.secretName === 'podmesh-controller-auth',
      ),
      w.name,
    );
});

test('secure overlay: the PodMonitor scrapes over HTTPS, verifying the name the controller verifies, with basic auth', (t) => {
  const pm = secureNamed<IPodMonitor>('PodMonitor', 'podmesh');
  const controller = envOf(
    secureNamed<IDeployment>('Deployment', 'podmesh-controller').spec!.template.spec!
      .containers[0]!,
  );
  for (const ep of pm.spec.podMetricsEndpoints ?? []) {
    t.is(ep.scheme, 'https');
    t.deepEqual(ep.tlsConfig?.ca, { secret: { name: 'podmesh-web-tls', key: 'ca.crt' } });
    t.is(ep.tlsConfig?.serverName, controller[envName('controller.pullServerName')]);
    t.is(ep.tlsConfig?.insecureSkipVerify, undefined);
    t.deepEqual(ep.basicAuth, {
      username: { name: 'podmesh-prometheus-auth', key: 'username' },
      password: { name: 'podmesh-prometheus-auth', key: 'password' },
    });
  }
  const example = parseWebConfig(readFileSync(WEB_CONFIG_EXAMPLE, 'utf8'), '/w.yaml');
  t.true(Object.hasOwn(example.config!.basicAuthUsers, 'prometheus'));
});

// A small NetworkPolicy evaluator, enough for the rules podmesh writes: label selectors, named
// and numbered ports, same-namespace podSelectors and namespaceSelectors. ipBlock is not
// modelled (podmesh's policies have none). A source without podLabels is a node address (a
// host-network agent on another node), which no pod or namespace selector matches.

interface Source {
  readonly namespace: string;
  readonly podLabels?: Record<string, string>;
}
interface Target {
  readonly namespace: string;
  readonly template: IPodTemplateSpec;
}
type Proto = 'TCP' | 'UDP' | 'ICMP';

function selects(
  sel: {
    matchLabels?: Record<string, string>;
    matchExpressions?: { key: string; operator: string; values?: string[] }[];
  },
  labels: Record<string, string>,
): boolean {
  return (
    Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
    (sel.matchExpressions ?? []).every((e) => {
      const v = labels[e.key];
      if (e.operator === 'In') return v !== undefined && (e.values ?? []).includes(v);
      if (e.operator === 'NotIn') return v === undefined || !(e.values ?? []).includes(v);
      if (e.operator === 'Exists') return v !== undefined;
      return v === undefined;
    })
  );
}

function admits(
  policies: readonly (INetworkPolicy & Obj)[],
  to: Target,
  from: Source,
  proto: Proto,
  portName?: string,
): boolean {
  const labels = to.template.metadata?.labels ?? {};
  const containerPorts = to.template.spec!.containers.flatMap((c) => c.ports ?? []);
  const number =
    portName === undefined
      ? undefined
      : containerPorts.find((p) => p.name === portName)?.containerPort;
  if (portName !== undefined && number === undefined) throw new Error(`no port ${portName}`);
  const isolating = policies.filter(
    (p) =>
      p.metadata.namespace === to.namespace &&
      selects(p.spec!.podSelector, labels) &&
      (p.spec!.policyTypes ?? ['Ingress']).includes('Ingress'),
  );
  if (isolating.length === 0) return true;
  const nsLabels = { 'kubernetes.io/metadata.name': from.namespace };
  return isolating.some((p) =>
    (p.spec!.ingress ?? []).some((rule) => {
      const fromOk =
        rule.from === undefined ||
        rule.from.length === 0 ||
        rule.from.some((peer) => {
          if (peer.ipBlock !== undefined) throw new Error('ipBlock is not modelled');
          if (from.podLabels === undefined) return false;
          const nsOk =
            peer.namespaceSelector !== undefined
              ? selects(peer.namespaceSelector, nsLabels)
              : from.namespace === p.metadata.namespace;
          return (
            nsOk && (peer.podSelector === undefined || selects(peer.podSelector, from.podLabels))
          );
        });
      const portOk =
        rule.ports === undefined ||
        rule.ports.length === 0 ||
        (proto !== 'ICMP' &&
          rule.ports.some(
            (rp) =>
              (rp.protocol ?? 'TCP') === proto &&
              (rp.port === undefined ||
                (typeof rp.port === 'string'
                  ? containerPorts.find((cp) => cp.name === rp.port)?.containerPort === number
                  : rp.endPort !== undefined
                    ? number! >= rp.port && number! <= rp.endPort
                    : rp.port === number)),
          ));
      return fromOk && portOk;
    }),
  );
}

function scrapeCases(objs: Obj[], monitoring: string) {
  const policies = objs.filter((o) => o.kind === 'NetworkPolicy') as (INetworkPolicy & Obj)[];
  const podAgent = secureNamed<IDaemonSet>('DaemonSet', 'podmesh-agent', objs).spec!.template;
  const controller = secureNamed<IDeployment>('Deployment', 'podmesh-controller', objs).spec!
    .template;
  const agentTo: Target = { namespace: NAMESPACE, template: podAgent };
  const controllerTo: Target = { namespace: NAMESPACE, template: controller };
  const prometheus: Source = { namespace: monitoring, podLabels: { app: 'prometheus' } };
  const elsewhere: Source = { namespace: 'default', podLabels: { app: 'curious' } };
  const neighbour: Source = { namespace: NAMESPACE, podLabels: { app: 'not-podmesh' } };
  const peer: Source = { namespace: NAMESPACE, podLabels: podAgent.metadata!.labels! };
  const theController: Source = { namespace: NAMESPACE, podLabels: controller.metadata!.labels! };
  const nodeAddress: Source = { namespace: '' };
  return {
    'scrape agent from monitoring': admits(policies, agentTo, prometheus, 'TCP', 'http'),
    'scrape controller from monitoring': admits(policies, controllerTo, prometheus, 'TCP', 'http'),
    'agent http from another namespace': admits(policies, agentTo, elsewhere, 'TCP', 'http'),
    'controller http from another namespace': admits(
      policies,
      controllerTo,
      elsewhere,
      'TCP',
      'http',
    ),
    'agent http from a non-podmesh Pod beside it': admits(
      policies,
      agentTo,
      neighbour,
      'TCP',
      'http',
    ),
    'agent http from a node address': admits(policies, agentTo, nodeAddress, 'TCP', 'http'),
    'controller pulls an agent': admits(policies, agentTo, theController, 'TCP', 'http'),
    'pod agent probes: stamp': admits(policies, agentTo, peer, 'UDP', 'stamp'),
    'pod agent probes: tcp': admits(policies, agentTo, peer, 'TCP', 'tcp'),
    'pod agent probes: icmp': admits(policies, agentTo, peer, 'ICMP'),
    'host agent probes: stamp': admits(policies, agentTo, nodeAddress, 'UDP', 'stamp'),
    'host agent probes: tcp': admits(policies, agentTo, nodeAddress, 'TCP', 'tcp'),
  };
}

test('secure overlay: NetworkPolicies admit scrapes only from the monitoring namespace, and keep probes and pulls flowing', (t) => {
  t.deepEqual(scrapeCases(secure(), 'monitoring'), {
    'scrape agent from monitoring': true,
    'scrape controller from monitoring': true,
    'agent http from another namespace': false,
    'controller http from another namespace': false,
    'agent http from a non-podmesh Pod beside it': false,
    'agent http from a node address': false,
    'controller pulls an agent': true,
    'pod agent probes: stamp': true,
    'pod agent probes: tcp': true,
    'pod agent probes: icmp': true,
    'host agent probes: stamp': true,
    'host agent probes: tcp': true,
  });
  // The evaluator can say yes: on the base, anything reaches an agent's http port.
  t.true(scrapeCases(objects(), 'monitoring')['agent http from another namespace']);
});

test('secure overlay: the scrape namespace is one patch of podmesh-metrics-scrape away', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-overlay-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The patch docs/deploy.md shows.
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      'resources:',
      `  - ${relative(dir, SECURE)}`,
      'patches:',
      '  - target:',
      '      kind: NetworkPolicy',
      '      name: podmesh-metrics-scrape',
      '    patch: |-',
      '      - op: replace',
      '        path: /spec/ingress/0/from/0/namespaceSelector',
      '        value:',
      '          matchLabels:',
      '            kubernetes.io/metadata.name: observability',
      '',
    ].join('\n'),
  );
  const objs = render(dir);
  t.true(scrapeCases(objs, 'observability')['scrape agent from monitoring']);
  t.true(scrapeCases(objs, 'observability')['scrape controller from monitoring']);
  t.false(scrapeCases(objs, 'monitoring')['scrape agent from monitoring']);
  t.true(scrapeCases(objs, 'observability')['pod agent probes: icmp']);
});

// ---------------------------------------------------------------------------------------------
// Components (deploy/components) on the base, and the kube-prometheus-stack example overlay.

/** What each component adds to the base (patch-only components add nothing). */
const COMPONENT_ADDS: Readonly<Record<string, readonly string[]>> = {
  'prometheus-operator': ['PodMonitor/podmesh', 'PrometheusRule/podmesh'],
  'grafana-dashboards': ['ConfigMap/podmesh-dashboards'],
  'plain-prometheus': ['ConfigMap/podmesh-prometheus'],
  'secure-http': [],
  'scrape-network-policy': ['NetworkPolicy/podmesh-metrics-scrape'],
  'plumbing-alerts': ['PrometheusRule/podmesh-plumbing'],
  'node-conditions': [
    'ClusterRole/podmesh-node-conditions',
    'ClusterRoleBinding/podmesh-node-conditions',
  ],
};

test('every component renders on the base alone, valid, adding exactly its objects', (t) => {
  const dirs = readdirSync(COMPONENTS_DIR).sort();
  t.deepEqual(dirs, Object.keys(COMPONENT_ADDS).sort(), 'a component without a row here');
  for (const [c, adds] of Object.entries(COMPONENT_ADDS)) {
    const objs = withComponents([c]);
    t.deepEqual(
      objs.flatMap((o) => {
        const e = schemaErrors(o);
        return [
          ...(e === undefined ? [] : [`${o.kind}/${o.metadata.name}: ${e}`]),
          ...strictFieldErrors(o),
        ];
      }),
      [],
      c,
    );
    t.deepEqual(names(objs), [...names(objects()), ...adds].sort(), c);
  }
});

test('node-conditions component: patch on nodes/status for the controller only, and the setting on', (t) => {
  const objs = withComponents(['node-conditions']);
  const role = objs.find(
    (o) => o.kind === 'ClusterRole' && o.metadata.name === 'podmesh-node-conditions',
  );
  t.deepEqual((role as unknown as { rules: IPolicyRule[] } | undefined)?.rules, [
    { apiGroups: [''], resources: ['nodes/status'], verbs: ['patch'] },
  ]);
  const binding = objs.find(
    (o) => o.kind === 'ClusterRoleBinding' && o.metadata.name === 'podmesh-node-conditions',
  ) as unknown as IRoleBinding | undefined;
  t.deepEqual(binding?.roleRef, {
    apiGroup: 'rbac.authorization.k8s.io',
    kind: 'ClusterRole',
    name: 'podmesh-node-conditions',
  });
  t.deepEqual(binding?.subjects, [
    { kind: 'ServiceAccount', name: 'podmesh-controller', namespace: NAMESPACE },
  ]);
  const controller = objs.find((o) => o.kind === 'Deployment') as unknown as IDeployment;
  const env = envOf(controller.spec!.template.spec!.containers[0]!);
  t.is(env['PODMESH_CONTROLLER_NODE_CONDITIONS'], 'true');
  t.true(
    loadConfig({ env: { PODMESH_CONTROLLER_NODE_CONDITIONS: 'true' } }).controller.nodeConditions,
  );
  t.false(loadConfig({}).controller.nodeConditions, 'off without the component');
});

const KPS = new URL('deploy/overlays/kube-prometheus-stack', ROOT).pathname;
/** kube-prometheus-stack's defaults (release kube-prometheus-stack in namespace monitoring). */
const KPS_SELECTOR = { release: 'kube-prometheus-stack' };
const KPS_GRAFANA = { namespace: 'monitoring', label: 'grafana_dashboard', value: '1' };

/** What the chart's Prometheus and Grafana sidecar pick up from a rendered set of objects. */
function kpsPicksUp(objs: readonly Obj[]): string[] {
  return objs
    .filter((o) =>
      o.kind === 'ConfigMap'
        ? o.metadata.namespace === KPS_GRAFANA.namespace &&
          o.metadata.labels?.[KPS_GRAFANA.label] === KPS_GRAFANA.value
        : ['PodMonitor', 'PrometheusRule'].includes(o.kind) &&
          matches(KPS_SELECTOR, o.metadata.labels),
    )
    .map((o) => `${o.kind}/${o.metadata.name}`)
    .sort();
}

test('kube-prometheus-stack overlay: its Prometheus selects the PodMonitor and rules, its Grafana the dashboards', (t) => {
  const objs = render(KPS);
  t.deepEqual(
    objs.flatMap((o) => {
      const e = schemaErrors(o);
      return [
        ...(e === undefined ? [] : [`${o.kind}/${o.metadata.name}: ${e}`]),
        ...strictFieldErrors(o),
      ];
    }),
    [],
  );
  t.deepEqual(kpsPicksUp(objs), [
    'ConfigMap/podmesh-dashboards',
    'PodMonitor/podmesh',
    'PrometheusRule/podmesh',
  ]);
  // Without the overlay's patches the same components are ignored: the check can fail.
  t.deepEqual(kpsPicksUp(withComponents(['prometheus-operator', 'grafana-dashboards'])), []);
  // The patches touch only those three objects.
  const base = new Map(objects().map((o) => [`${o.kind}/${o.metadata.name}`, o]));
  for (const o of objs) {
    const b = base.get(`${o.kind}/${o.metadata.name}`);
    if (b !== undefined) t.deepEqual(o, b, `${o.kind}/${o.metadata.name} changed`);
  }
  const dashboards = objs.find((o) => o.metadata.name === 'podmesh-dashboards') as IConfigMap & Obj;
  const files = readdirSync(new URL('dashboards', ROOT)).filter((f) => f.endsWith('.json'));
  t.deepEqual(Object.keys(dashboards.data ?? {}).sort(), files.sort());
});

/** Prometheus relabeling, the actions podmesh's scrape job uses (keep, drop, replace). */
function relabel(
  labels: Readonly<Record<string, string>>,
  configs: readonly Record<string, unknown>[],
): Record<string, string> | undefined {
  const out = { ...labels };
  for (const c of configs) {
    const sources = (c['source_labels'] as string[] | undefined) ?? [];
    const value = sources.map((l) => out[l] ?? '').join((c['separator'] as string) ?? ';');
    const re = new RegExp(`^(?:${(c['regex'] as string) ?? '(.*)'})$`);
    const m = re.exec(value);
    const action = (c['action'] as string) ?? 'replace';
    if (action === 'keep' && m === null) return undefined;
    if (action === 'drop' && m !== null) return undefined;
    if (action === 'replace' && m !== null) {
      const target = c['target_label'] as string;
      const v = value.replace(re, (c['replacement'] as string) ?? '$1');
      if (v === '') delete out[target];
      else out[target] = v;
    }
  }
  return Object.fromEntries(Object.entries(out).filter(([k]) => !k.startsWith('__')));
}

test('plain-prometheus component: its scrape job and rules load in Prometheus and label targets as the rules need', (t) => {
  const objs = withComponents(['plain-prometheus']);
  const cm = objs.find((o) => o.metadata.name === 'podmesh-prometheus') as IConfigMap & Obj;
  t.is(cm.metadata.namespace, NAMESPACE);
  const scrapeText = cm.data?.['scrape-config.yaml'] ?? '';
  t.is(
    scrapeText,
    readFileSync(new URL('deploy/components/plain-prometheus/scrape-config.yaml', ROOT), 'utf8'),
  );
  t.is(
    cm.data?.['podmesh-rules.yaml'],
    readFileSync(new URL('alerts/podmesh-rules.yaml', ROOT), 'utf8'),
  );
  const jobs = (
    parseAllDocuments(scrapeText)[0]!.toJS() as { scrape_configs: Record<string, unknown>[] }
  ).scrape_configs;
  t.is(jobs.length, 1);
  const job = jobs[0]!;
  t.regex(job['job_name'] as string, /podmesh/, 'the rules select job=~".*podmesh.*"');

  // Prometheus's own check of a prometheus.yml made of the job and the rules. Debian's
  // Prometheus is built without Kubernetes discovery (it rejects kubernetes_sd_configs), so the
  // check stands a static target in for it; the relabeling and the rest are checked as shipped.
  const { kubernetes_sd_configs: sd, ...rest } = job;
  t.deepEqual(sd, [{ role: 'pod', namespaces: { names: [NAMESPACE] } }]);
  const checked = [{ ...rest, static_configs: [{ targets: ['127.0.0.1:9860'] }] }];
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-plain-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'podmesh-rules.yaml'), cm.data!['podmesh-rules.yaml']!);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    JSON.stringify({ rule_files: ['podmesh-rules.yaml'], scrape_configs: checked }),
  );
  const promtool = spawnSync(
    process.env['PROMTOOL'] ?? 'promtool',
    ['check', 'config', 'prometheus.yml'],
    {
      cwd: dir,
      encoding: 'utf8',
    },
  );
  t.is(promtool.error, undefined, 'promtool (Debian: prometheus) is needed');
  t.is(promtool.status, 0, `${promtool.stdout}${promtool.stderr}`);

  // Each rendered workload's ports, as Kubernetes pod discovery shows them, through the job.
  const relabels = job['relabel_configs'] as Record<string, unknown>[];
  const targets: string[] = [];
  for (const w of workloads())
    for (const c of w.template.spec!.containers)
      for (const p of c.ports ?? []) {
        const labels: Record<string, string> = {
          __address__: `10.1.2.3:${p.containerPort}`,
          __meta_kubernetes_namespace: NAMESPACE,
          __meta_kubernetes_pod_name: `${w.name}-x`,
          __meta_kubernetes_pod_node_name: 'node-1',
          __meta_kubernetes_pod_container_name: c.name,
          __meta_kubernetes_pod_container_port_name: p.name ?? '',
        };
        for (const [k, v] of Object.entries(w.template.metadata?.labels ?? {}))
          labels[`__meta_kubernetes_pod_label_${k.replace(/[^a-zA-Z0-9_]/g, '_')}`] = v;
        const kept = relabel(labels, relabels);
        if (kept !== undefined) targets.push(`${p.name}:${JSON.stringify(kept)}`);
      }
  t.deepEqual(targets.sort(), [
    'http:{"namespace":"podmesh","pod":"podmesh-agent-host-x","container":"agent","node":"node-1"}',
    'http:{"namespace":"podmesh","pod":"podmesh-agent-x","container":"agent","node":"node-1"}',
    'http:{"namespace":"podmesh","pod":"podmesh-controller-x","container":"controller"}',
  ]);
  // The same `node` rule as the PodMonitor's, which the lab's Prometheus runs.
  const pm = withComponents(['prometheus-operator']).find(
    (o) => o.kind === 'PodMonitor',
  ) as IPodMonitor & Obj;
  const pmRelabels = (pm.spec.podMetricsEndpoints?.[0]?.relabelings ?? []).map((r) =>
    relabelConfigFromOperator(r as Record<string, unknown>),
  );
  t.true(pmRelabels.length > 0);
  for (const r of pmRelabels)
    t.true(
      relabels.some((x) => isDeepStrictEqual(x, r)),
      JSON.stringify(r),
    );
  // Another app's Pod in the namespace is not scraped.
  t.is(
    relabel(
      {
        __meta_kubernetes_pod_label_app_kubernetes_io_name: 'other',
        __meta_kubernetes_pod_container_port_name: 'http',
      },
      relabels,
    ),
    undefined,
  );
});
