// Builds the timestamping addon with node-gyp; `npm ci` runs it (package.json "install") and
// so does `npm run build:native`. It never fails the install: without the addon podmesh uses
// user-space timestamps and says so in its log (docs/timestamps.md). Plain JavaScript because
// it runs before (and without) the dev dependencies that run TypeScript.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const say = (msg) => process.stderr.write(`podmesh: ${msg}\n`);

function nodeGyp() {
  // npm puts its bundled node-gyp on PATH for lifecycle scripts and names it here as well.
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, [fromNpm]];
  const bundled = join(
    dirname(process.execPath),
    '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
  );
  if (existsSync(bundled)) return [process.execPath, [bundled]];
  return ['node-gyp', []];
}

function main() {
  if (process.env.PODMESH_SKIP_NATIVE === '1') {
    say('PODMESH_SKIP_NATIVE=1: not building the timestamping addon');
    return;
  }
  if (process.platform !== 'linux') {
    say(
      `the timestamping addon is Linux-only (this is ${process.platform}); using user-space timestamps`,
    );
    return;
  }
  const [cmd, pre] = nodeGyp();
  const r = spawnSync(cmd, [...pre, 'rebuild'], {
    cwd: here,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
  if (r.status === 0) {
    say('built the timestamping addon (src/native/build/Release/podmesh_timestamping.node)');
    return;
  }
  const why = r.error
    ? r.error.message
    : `${r.stderr}${r.stdout}`.trim().split('\n').slice(-15).join('\n');
  say(`could not build the timestamping addon; podmesh will use user-space timestamps.\n${why}`);
}

try {
  main();
} catch (err) {
  say(
    `could not build the timestamping addon: ${err instanceof Error ? err.message : String(err)}`,
  );
}
process.exit(0);
