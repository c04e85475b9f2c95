// The lookup function every socket of the dns probe gets, so that the system resolver is never
// in the measurement path: only IPv4/IPv6 literals are accepted.

import net from 'node:net';

/**
 * The lookup function given to our sockets: IP literals pass through unchanged (dgram calls
 * lookup even for them), anything else is refused, so no name is ever sent to a resolver.
 */
export function noLookup(
  hostname: string,
  options: unknown,
  callback: (...args: unknown[]) => void,
): void {
  const family = net.isIP(hostname);
  const all =
    typeof options === 'object' && options !== null && (options as { all?: unknown }).all === true;
  process.nextTick(() => {
    if (family === 0) {
      callback(Object.assign(new Error(`refusing to resolve ${hostname}`), { code: 'ENOTFOUND' }));
    } else if (all) {
      callback(null, [{ address: hostname, family }]);
    } else {
      callback(null, hostname, family);
    }
  });
}
