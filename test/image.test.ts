// The container image's build definition, checked without a Docker engine (none on CI
// machines or here): deploy/Dockerfile is parsed into instructions and deploy/docker-bake.json
// read as JSON, and the checks say what issue 16 asks of the image: a supported Node LTS (not
// node 20, end of life April 2026) that package.json's engines accept, the same base in both
// stages, the addons compiled in a build stage that runs per target platform, OCI labels, and
// a multi-arch bake target (linux/amd64 and linux/arm64) whose arguments the Dockerfile declares.

import { readFileSync } from 'node:fs';
import test from 'ava';

const ROOT = new URL('../', import.meta.url);
const read = (p: string): string => readFileSync(new URL(p, ROOT), 'utf8');

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Dockerfile instructions: comments dropped, `\` continuations joined. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (full === '') continue;
    const m = /^(\S+)\s*(.*)$/.exec(full)!;
    out.push({ op: m[1]!.toUpperCase(), args: m[2]! });
  }
  return out;
}

/** LABEL key="value" pairs (quoted values with spaces). */
function labels(ins: readonly Instruction[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const i of ins.filter((x) => x.op === 'LABEL'))
    for (const [, k, v] of i.args.matchAll(/([\w.-]+)="([^"]*)"/g)) m.set(k!, v!);
  return m;
}

const DOCKERFILE = instructions(read('deploy/Dockerfile'));
const pkg = JSON.parse(read('package.json')) as {
  version: string;
  license: string;
  description: string;
  engines: { node: string };
  overrides?: Record<string, string>;
};

test('the base image is a supported Node LTS (22 or 24), accepted by package.json engines', (t) => {
  const arg = DOCKERFILE.find((i) => i.op === 'ARG' && i.args.startsWith('NODE_IMAGE='));
  t.truthy(arg, 'ARG NODE_IMAGE=...');
  const image = arg!.args.slice('NODE_IMAGE='.length);
  const major = /^node:(\d+)-/.exec(image)?.[1];
  t.true(major === '22' || major === '24', `${image}: node 22 or 24 LTS`);
  const min = /^>=(\d+)\.(\d+)/.exec(pkg.engines.node);
  t.truthy(min, 'engines.node is a >= range');
  t.true(Number(major) >= Number(min![1]), `${image} satisfies ${pkg.engines.node}`);
  // Both stages start from the one ARG, so the addons are compiled for the Node that runs them.
  const froms = DOCKERFILE.filter((i) => i.op === 'FROM').map((i) => i.args);
  t.deepEqual(froms, ['${NODE_IMAGE} AS build', '${NODE_IMAGE}']);
  // raw-socket pins nan 2.19, which predates Node 22/24's V8: the override lifts it.
  t.regex(pkg.overrides?.['nan'] ?? '', /^\^2\.(2[3-9]|[3-9]\d)/);
});

test('the addons are built and load-checked in a build stage that runs per target platform', (t) => {
  const build = DOCKERFILE.slice(
    0,
    DOCKERFILE.findIndex((i, n) => n > 0 && i.op === 'FROM' && !i.args.includes(' AS build')),
  );
  const from = build.find((i) => i.op === 'FROM')!;
  // --platform=$BUILDPLATFORM would compile the addons for the builder's architecture.
  t.false(from.args.includes('--platform'), 'the build stage runs on the target platform');
  const runs = build.filter((i) => i.op === 'RUN').map((i) => i.args);
  t.true(
    runs.some((r) => r.includes('npm ci')),
    'npm ci compiles the addons',
  );
  t.true(
    runs.some(
      (r) => r.includes('podmesh_timestamping.node') && r.includes("require('raw-socket')"),
    ),
    'the build fails if either addon does not load on this platform',
  );
});

test('the image carries the OCI labels, from package.json where it says', (t) => {
  const l = labels(DOCKERFILE);
  for (const key of [
    'title',
    'description',
    'version',
    'revision',
    'created',
    'licenses',
    'source',
    'base.name',
  ])
    t.true(l.has(`org.opencontainers.image.${key}`), key);
  t.is(l.get('org.opencontainers.image.licenses'), pkg.license);
  t.is(l.get('org.opencontainers.image.description'), pkg.description);
  t.is(l.get('org.opencontainers.image.version'), '${VERSION}');
  const versionArg = DOCKERFILE.find((i) => i.op === 'ARG' && i.args.startsWith('VERSION='));
  t.is(versionArg?.args, `VERSION=${pkg.version}`);
});

test('the bake file builds linux/amd64 and linux/arm64 from deploy/Dockerfile', (t) => {
  const bake = JSON.parse(read('deploy/docker-bake.json')) as {
    variable: Record<string, { default: string }>;
    group: { default: { targets: string[] } };
    target: Record<
      string,
      { context: string; dockerfile: string; platforms: string[]; args: Record<string, string> }
    >;
  };
  const targets = bake.group.default.targets;
  t.deepEqual(targets, ['podmesh']);
  const tg = bake.target['podmesh']!;
  t.is(tg.context, '.');
  t.is(tg.dockerfile, 'deploy/Dockerfile');
  t.deepEqual([...tg.platforms].sort(), ['linux/amd64', 'linux/arm64']);
  t.is(bake.variable['VERSION']?.default, pkg.version);
  const declared = new Set(
    DOCKERFILE.filter((i) => i.op === 'ARG').map((i) => i.args.split('=')[0]),
  );
  for (const a of Object.keys(tg.args)) t.true(declared.has(a), `ARG ${a} declared`);
});
