// Test helper: reads the kernel's TCP socket table (/proc/net/tcp) to count connections in a
// given state, so tests can check that probes leave nothing behind (no half-open handshakes).

import { readFileSync } from 'node:fs';
import os from 'node:os';

/** This network namespace's handshakes to dst:port still in SYN_SENT (state 02). */
export function synSentTo(dst: string, port: number): number {
  // /proc/net/tcp prints the address as the host-order hex of its network-order bytes.
  const bytes = Buffer.from(dst.split('.').map(Number));
  const ip = (os.endianness() === 'LE' ? bytes.readUInt32LE(0) : bytes.readUInt32BE(0))
    .toString(16)
    .toUpperCase()
    .padStart(8, '0');
  const remote = `${ip}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .filter((line) => {
      const f = line.trim().split(/\s+/);
      return f[2] === remote && f[3] === '02';
    }).length;
}
