// Every probe family, one line each; an engine opens them in FAMILY_NAMES order. Adding a family
// is its file under families/, its job and result types in FamilyJobs/FamilyResults and its
// name in FAMILY_NAMES (../family.ts), and a line here.

import type { Family, FamilyName } from '../family.ts';
import { apiServerFamily } from './apiserver.ts';
import { dnsFamily } from './dns.ts';
import { peerFamily } from './peer.ts';
import { portFamily } from './port.ts';

export const FAMILIES: { readonly [F in FamilyName]: Family<F> } = {
  peer: peerFamily,
  dns: dnsFamily,
  port: portFamily,
  apiserver: apiServerFamily,
};
