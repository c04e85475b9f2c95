// The catalogue is the only source of metric names: what an agent registers is exactly the
// catalogue, names follow Prometheus conventions, and the generated docs are up to date.

import { readFileSync } from 'node:fs';
import test from 'ava';
import { Registry, register as globalRegister } from 'prom-client';
import { GENERATED } from '../gen-docs.ts';
import { CATALOGUE, LABEL_NAMES, catalogueNames, createMetrics } from './catalogue.ts';

test('every name is prefixed, in base units, and unique', (t) => {
  const names = catalogueNames();
  t.is(new Set(names).size, names.length);
  for (const d of Object.values(CATALOGUE)) {
    t.regex(d.name, /^podmesh_[a-z0-9_]+$/);
    if (d.type === 'counter') t.regex(d.name, /_total$/, `${d.name} is a counter`);
    else t.notRegex(d.name, /_total$/, `${d.name} is not a counter`);
    t.notRegex(d.name, /_(ms|milliseconds|micros|percent)$/, `${d.name} uses base units`);
    for (const l of d.labels)
      t.true(
        (LABEL_NAMES as readonly string[]).includes(l),
        `${d.name}: label ${l} is in the closed set`,
      );
  }
});

test('agent and controller registries together hold exactly the catalogue, none in the global one', async (t) => {
  const agent = new Registry();
  const controller = new Registry();
  createMetrics(agent, 'agent');
  createMetrics(controller, 'controller');
  const a = (await agent.getMetricsAsJSON()).map((m) => m.name);
  const c = (await controller.getMetricsAsJSON()).map((m) => m.name);
  t.deepEqual([...new Set([...a, ...c])].sort(), catalogueNames().sort());
  t.true(a.includes('podmesh_probes_sent_total') && !a.includes('podmesh_node_coverage'));
  t.true(c.includes('podmesh_node_coverage') && !c.includes('podmesh_probes_sent_total'));
  t.is((await globalRegister.getMetricsAsJSON()).length, 0);
});

for (const [path, render] of GENERATED) {
  test(`${path} is up to date (run \`npm run docs\`)`, (t) => {
    const onDisk = readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
    t.is(onDisk, render());
  });
}

test('docs/metrics.md lists every catalogued metric', (t) => {
  const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
  for (const name of catalogueNames()) t.true(doc.includes(`\`${name}\``), name);
});
