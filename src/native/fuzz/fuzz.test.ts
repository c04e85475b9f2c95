// The timestamping addon's receive path under libFuzzer, AddressSanitizer and
// UndefinedBehaviorSanitizer for a few seconds (issue #14 item 12): the harness
// (receive-fuzz.c) parses datagrams, control messages and error-queue entries built from the
// fuzzer's bytes and drives the drain loops over a fake kernel, checking that every datagram
// and ICMP error reaches its callback with its own bytes. It starts from the corpus kept in
// corpus/ (a minimised long run), so these seconds go deep at once. A longer run is a command
// (docs/timestamps.md, "Fuzzing"). Needs clang with compiler-rt, which .ci/run installs; where
// clang is missing the test is skipped and its title says so.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { SEED_CORPUS, buildFuzzer, findClang, runFuzzer, summary } from './fuzz.ts';

const clang = findClang();
const title = 'the receive path survives a few seconds of libFuzzer under ASan and UBSan';
const SECONDS = 4;

if (clang === undefined) {
  test.skip(`${title} (SKIPPED: no clang on PATH; apt-get install clang libclang-rt-dev)`, () => {});
} else {
  test(title, async (t) => {
    t.timeout(120_000);
    const work = mkdtempSync(join(os.tmpdir(), 'podmesh-fuzz-test-'));
    t.teardown(() => rmSync(work, { recursive: true, force: true }));
    const binary = await buildFuzzer(clang, work);
    const seed = Math.floor(Math.random() * 2 ** 31);
    const r = await runFuzzer(binary, {
      seconds: SECONDS,
      corpusDirs: [join(work, 'corpus'), SEED_CORPUS],
      artifactDir: work,
      seed,
    });
    t.log(`${clang}, -seed=${seed}: ${summary(r, SECONDS)}`);
    t.false(r.found, r.output.split('\n').slice(-60).join('\n'));
    t.is(r.status, 0);
    // It really ran: thousands of inputs, and the corpus reached the parsers' branches.
    t.true(r.execs > 1000, `${r.execs} executions`);
    t.true(r.cov > 50, `cov ${r.cov}`);
  });
}
