// The far side of the lab RTT measurement (bench/rtt-lab.ts): podmesh's STAMP reflector on
// this process's main thread, inside the network namespace it was started in, and on command
// a random-phase CPU load on that same thread (spins of 1-10 ms at random gaps of 0-10 ms,
// about half the time busy), so test packets keep arriving while the reflector can't read
// them. With kernel T2/T3 that wait is reflector dwell, which the sender subtracts.
//
//   ip netns exec <ns> node --import tsx bench/rtt-reflector.ts '{"address":"198.18.250.2"}'
//
// Prints {"type":"ready","port":N,"timestamps":{...}}; reads "load on" / "load off" and
// "stats" (answers {"type":"stats",...}) on stdin; exits when stdin closes.

import { SystemClock } from '../src/core/clock.ts';
import { StampReflector } from '../src/responders/stamp-reflector.ts';
import { exitWhenParentGoes, send } from './lib.ts';

interface ReflectorSpec {
  readonly address: string;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as ReflectorSpec;

let loadOn = false;
let busyMs = 0;

function spin(ms: number): void {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    // the load: this thread does nothing else meanwhile, the reflector included
  }
  busyMs += ms;
}

function loadStep(): void {
  if (!loadOn) return;
  spin(1 + Math.random() * 9);
  setTimeout(loadStep, Math.random() * 10);
}

async function main(): Promise<void> {
  const reflector = await StampReflector.start({
    clock: new SystemClock(),
    address: spec.address,
    port: 0,
    maxRepliesPerSecond: 100_000,
  });
  exitWhenParentGoes(
    (line) => {
      if (line === 'load on' && !loadOn) {
        loadOn = true;
        loadStep();
      } else if (line === 'load off') {
        loadOn = false;
      } else if (line === 'stats') {
        send({ type: 'stats', reflector: reflector.stats(), busyMs });
      }
    },
    () => reflector.close(),
  );
  send({ type: 'ready', port: reflector.port, timestamps: reflector.timestamps });
}

main().catch((e: unknown) => {
  process.stderr.write(`rtt-reflector: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
