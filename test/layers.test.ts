// The layer rules in .dependency-cruiser.mjs (run by `npm run lint`): first that they catch what
// they should on a tiny fixture tree (a forbidden import, a cycle, production code reaching into
// test/, a runtime import from the browser UI) and let the allowed imports through, then that the
// real src/ keeps them. The fixture run uses the project's own config, not a copy of it.

import test from 'ava';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CONFIG = fileURLToPath(new URL('../.dependency-cruiser.mjs', import.meta.url));
const FIXTURE = fileURLToPath(new URL('fixtures/layers', import.meta.url));

/** Cruises `src` under baseDir with the project's config, as `depcruise src` does in lint. */
async function cruiseSrc(baseDir: string): Promise<ICruiseResult> {
  const options = await extractDepcruiseOptions(CONFIG);
  const { output } = await cruise(['src'], { ...options, baseDir });
  if (typeof output === 'string') throw new Error('dependency-cruiser returned text, not a result');
  return output;
}

/** One line per violation, `rule: from → to`, so a failing assertion reads like the lint output. */
function lines(result: ICruiseResult, severity: 'error' | 'warn'): string[] {
  return result.summary.violations
    .filter((v) => v.rule.severity === severity)
    .map((v) => `${v.rule.name}: ${v.from} → ${v.to}`)
    .sort();
}

/** The dependency from → to as dependency-cruiser saw it (undefined if it did not see it). */
function edge(result: ICruiseResult, from: string, to: string) {
  return result.modules.find((m) => m.source === from)?.dependencies.find((d) => d.resolved === to);
}

test('the layer rules report the forbidden imports and the cycle in the fixture tree, and only those', async (t) => {
  const result = await cruiseSrc(FIXTURE);
  t.deepEqual(lines(result, 'error'), [
    'layer-probes: src/probes/leak.ts → src/agent/agent.ts',
    'no-circular: src/agent/cycle-a.ts → src/agent/cycle-b.ts',
    'no-test-in-production: src/core/uses-test.ts → test/support/fake.ts',
    'ui-api-types-only: src/ui/runtime.js → src/api/wire.ts',
  ]);
  const cycle = result.summary.violations.find((v) => v.rule.name === 'no-circular')?.cycle;
  t.deepEqual(
    cycle?.map((c) => c.name),
    ['src/agent/cycle-b.ts', 'src/agent/cycle-a.ts'],
  );
  t.deepEqual(lines(result, 'warn'), []);
});

test('the allowed imports in the fixture tree are seen as dependencies and pass', async (t) => {
  const result = await cruiseSrc(FIXTURE);
  // Seen at all: a rule cannot pass an import the checker never noticed, so check each is there.
  const allowed = [
    ['src/agent/agent.ts', 'src/probes/udp.ts', 'import'],
    ['src/probes/udp.ts', 'src/core/types.ts', 'type-only'],
    ['src/ui/types.js', 'src/api/wire.ts', 'jsdoc'],
  ] as const;
  for (const [from, to, kind] of allowed) {
    const dependency = edge(result, from, to);
    t.truthy(dependency, `${from} → ${to} not seen`);
    t.true(dependency?.dependencyTypes.includes(kind), `${from} → ${to} is not ${kind}`);
    t.true(dependency?.valid, `${from} → ${to} was reported`);
  }
});

// Fails on the tree from before issue #15's restructuring (metrics and mesh importing each other,
// analysis importing the controller's shapes, the controller importing metrics) until it lands;
// `npm run lint` prints the same list.
test('the real src/ keeps the layer rules', async (t) => {
  const result = await cruiseSrc(ROOT);
  t.deepEqual(lines(result, 'error'), []);
  for (const warning of lines(result, 'warn')) t.log(`warning ${warning}`);
});
