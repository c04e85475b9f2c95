// podmesh's version, read once from package.json (source and compiled layouts both work).

import { readFileSync } from 'node:fs';

function find(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'podmesh' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // try the next layout
    }
  }
  return '0.0.0-unknown';
}

export const VERSION = find();
