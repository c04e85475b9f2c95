// Whether a lab test file may run: the lab needs root and a few Debian commands. Without them
// its tests are skipped with a message that says what is missing, except under CI (CI=true),
// or as root with a command missing, where that is a failure: the lab must not go quietly
// untested.

import test from 'ava';
import { sysBin } from './lab.ts';

export function labSuite(
  name: string,
  commands: readonly string[],
  needs: string,
  register: () => void,
): void {
  const isRoot = process.getuid?.() === 0;
  const missing = commands.filter((c) => sysBin(c) === undefined);
  if (isRoot && missing.length === 0) {
    register();
    return;
  }
  const why = !isRoot ? 'not running as root' : `missing commands: ${missing.join(', ')}`;
  if (process.env['CI'] === 'true' || isRoot) {
    test(name, (t) => t.fail(`${needs}: ${why}`));
  } else {
    process.stderr.write(`${name} skipped: ${needs} (${why})\n`);
    test.skip(`${name}: skipped, ${needs} (${why})`, () => {});
  }
}
