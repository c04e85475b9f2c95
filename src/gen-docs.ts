// `npm run docs`: writes the generated reference pages (docs/metrics.md, docs/configuration.md).

import { writeFileSync } from 'node:fs';
import { renderConfigDoc } from './config/docs.ts';
import { renderMetricsDoc } from './metrics/catalogue.ts';

export const GENERATED: readonly [path: string, render: () => string][] = [
  ['docs/metrics.md', renderMetricsDoc],
  ['docs/configuration.md', renderConfigDoc],
];

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const [path, render] of GENERATED) {
    writeFileSync(new URL(`../${path}`, import.meta.url), render());
    process.stdout.write(`wrote ${path}\n`);
  }
}
