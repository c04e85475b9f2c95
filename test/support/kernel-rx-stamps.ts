// Test helper: makes sure the kernel is already stamping received packets before a test that
// checks a kernel receive time runs.
//
// Why this is needed: the kernel stamps received packets only while some socket on the machine
// has asked for it. When the first such socket opens, the switch (the netstamp_needed_key static
// key) is turned on from a workqueue, a moment later. A packet that arrives in that moment has no
// receive time. podmesh then uses the user-space time for that one packet
// (src/probes/timestamped-udp.ts). A test that expects a kernel time on its very first packet
// would fail on a loaded machine, so it holds one stamping socket open for the whole file.

import type { TestFn } from 'ava';
import { EventType, SocketKind, Stamps, loadTimestamping } from '../../src/native/timestamping.ts';

/**
 * Registers a before hook that opens a stamping UDP socket and sends to itself until a packet
 * arrives with a kernel receive time (5 s at most, then the hook fails). The socket stays open,
 * so the switch stays on, until the file's tests end. Does nothing if the addon did not load.
 */
export function holdKernelRxStamps(test: TestFn): void {
  const load = loadTimestamping();
  if (!load.ok) return;
  let close: (() => void) | undefined;
  test.before('the kernel is stamping received packets', async () => {
    let stamped = false;
    const sock = new load.addon.Socket(
      SocketKind.udp,
      '127.0.0.1',
      0,
      Stamps.receive,
      (type, ...a) => {
        if (type === EventType.message && typeof a[3] === 'bigint') stamped = true;
      },
    );
    close = () => sock.close();
    const deadline = Date.now() + 5000;
    while (!stamped) {
      if (Date.now() > deadline) throw new Error('no kernel receive time within 5 s');
      sock.send(Buffer.from('warm-up'), '127.0.0.1', sock.port);
      await new Promise((r) => setTimeout(r, 10));
    }
  });
  test.after.always(() => close?.());
}
