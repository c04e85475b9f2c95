// Whether a lab test file may run: the lab needs root and a few Debian commands. Without them
// its tests are skipped with a message that says what is missing, except under CI (CI=true),
// or as root with a command missing, where that is a failure: the lab must not go quietly
// untested.

import { execFileSync } from 'node:child_process';
import test, { type ExecutionContext } from 'ava';
import { Lab, sysBin, type LabOptions } from './lab.ts';

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

/**
 * One lab shared by a test file's serial tests: brought up before them, healed after each,
 * torn down at the end with a check that nothing of it is left (namespaces, root links,
 * state; `alsoGone` adds checks of its own). Returns the accessor the tests use.
 */
export function sharedLab(
  options: LabOptions,
  describe: (lab: Lab) => string,
  alsoGone?: (t: ExecutionContext, lab: Lab) => void,
): () => Lab {
  let lab: Lab | undefined;
  test.before(async (t) => {
    t.timeout(120_000);
    const started = Date.now();
    lab = await Lab.up(options);
    t.log(
      `lab ${lab.prefix} (block ${lab.block}) up in ${Date.now() - started} ms: ${describe(lab)}`,
    );
  });
  test.afterEach.always(async () => {
    await lab?.heal();
  });
  test.after.always('nothing is left behind', async (t) => {
    if (lab === undefined) return;
    const prefix = lab.prefix;
    await lab.down();
    const ip = sysBin('ip')!;
    const netns = execFileSync(ip, ['netns', 'list'], { encoding: 'utf8' });
    const links = execFileSync(ip, ['-o', 'link', 'show'], { encoding: 'utf8' });
    t.false(netns.includes(prefix), `namespaces left behind:\n${netns}`);
    t.false(links.includes(prefix), 'root-namespace links left behind');
    t.deepEqual(lab.leftovers(), []);
    alsoGone?.(t, lab);
  });
  return () => {
    if (lab === undefined) throw new Error('the lab did not come up');
    return lab;
  };
}
