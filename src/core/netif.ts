// Facts about this host's network interfaces: which address to advertise and the MTU of the
// interface that carries it (for MTU-sized probes).

import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

/** The first non-internal IPv4 address, or 127.0.0.1 on a machine with none. */
export function defaultAdvertiseAddress(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

export function interfaceOf(address: string): string | undefined {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if ((addrs ?? []).some((a) => a.address === address)) return name;
  }
  // 127.0.0.0/8 addresses other than 127.0.0.1 are routed on lo without being listed.
  return address.startsWith('127.') ? 'lo' : undefined;
}

/** MTU of the interface holding `address`, from sysfs; undefined when it can't be told. */
export function interfaceMtu(address: string): number | undefined {
  const name = interfaceOf(address);
  if (name === undefined) return undefined;
  try {
    const mtu = Number.parseInt(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim(), 10);
    return Number.isFinite(mtu) && mtu > 0 ? mtu : undefined;
  } catch {
    return undefined;
  }
}
