// The benchmark's far side, in its own process so the prober's CPU is measured alone: podmesh
// STAMP reflectors and TCP listeners, a bare UDP echo (the baseline a STAMP round trip is
// compared with) and podmesh's loopback DnsServer serving a small cluster-like zone, all on
// 127.0.0.0/8 addresses named on the command line.
//
//   node --import tsx bench/responders.ts '<json ResponderSpec>'
//
// Prints {"type":"ready","groups":{...}} with every bound port, answers a "cpu" line on stdin
// with its own CPU time and reflector counters, and exits when stdin closes, so it never
// outlives the bench even if the bench is killed.

import dgram from 'node:dgram';
import { SystemClock } from '../src/core/clock.ts';
import { DnsServer } from '../src/demo/dns-server.ts';
import { StampReflector } from '../src/responders/stamp-reflector.ts';
import { TcpListener } from '../src/responders/tcp-listener.ts';
import {
  BENCH_DNS_RECORDS,
  BENCH_DNS_ZONE,
  assertLoopback,
  exitWhenParentGoes,
  send,
} from './lib.ts';

export interface GroupSpec {
  readonly name: string;
  readonly addresses: readonly string[];
  /** STAMP reflectors per address (each on its own port). */
  readonly stampPerAddress?: number;
  readonly tcp?: boolean;
  readonly echo?: boolean;
  /** A DnsServer (UDP and TCP on one port) serving BENCH_DNS_RECORDS. */
  readonly dns?: boolean;
}

export interface ResponderSpec {
  readonly groups: readonly GroupSpec[];
  /** Reflector reply budget; the bench floods on purpose, so it is raised from the default. */
  readonly maxRepliesPerSecond: number;
}

export interface Endpoint {
  readonly address: string;
  readonly stampPorts: number[];
  readonly tcpPort?: number;
  readonly echoPort?: number;
  readonly dnsPort?: number;
}

export interface ReadyMessage {
  readonly type: 'ready';
  readonly groups: Record<string, Endpoint[]>;
}

export interface CpuMessage {
  readonly type: 'cpu';
  readonly cpuS: number;
  readonly reflected: number;
  readonly rateLimited: number;
  readonly echoed: number;
  readonly tcpAccepted: number;
  /** Queries the DnsServers received, UDP plus TCP. */
  readonly dnsQueries: number;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as ResponderSpec;
  const clock = new SystemClock();
  const reflectors: StampReflector[] = [];
  const listeners: TcpListener[] = [];
  const echoes: dgram.Socket[] = [];
  const dnsServers: DnsServer[] = [];
  let echoed = 0;
  const cleanup = async (): Promise<void> => {
    await Promise.all([
      ...reflectors.map((r) => r.close()),
      ...listeners.map((l) => l.close()),
      ...dnsServers.map((d) => d.close()),
    ]);
    for (const s of echoes) s.close();
  };
  exitWhenParentGoes((line) => {
    if (line !== 'cpu') return;
    const c = process.cpuUsage();
    let reflected = 0;
    let rateLimited = 0;
    for (const r of reflectors) {
      const s = r.stats();
      reflected += s.reflected;
      rateLimited += s.rateLimited;
    }
    const tcpAccepted = listeners.reduce((n, l) => n + l.stats().accepted, 0);
    const dnsQueries = dnsServers.reduce((n, d) => {
      const st = d.stats();
      return n + st.udpQueries + st.tcpQueries;
    }, 0);
    send({
      type: 'cpu',
      cpuS: (c.user + c.system) / 1e6,
      reflected,
      rateLimited,
      echoed,
      tcpAccepted,
      dnsQueries,
    } satisfies CpuMessage);
  }, cleanup);

  const groups: Record<string, Endpoint[]> = {};
  for (const g of spec.groups) {
    const out: Endpoint[] = [];
    for (const address of g.addresses) {
      assertLoopback(address);
      const stampPorts: number[] = [];
      for (let i = 0; i < (g.stampPerAddress ?? 0); i++) {
        const r = await StampReflector.start({
          clock,
          address,
          port: 0,
          maxRepliesPerSecond: spec.maxRepliesPerSecond,
          // The load driver probes from one address: measure the reflector, not its limiter.
          maxRepliesPerSecondPerSource: spec.maxRepliesPerSecond,
          maxSessions: 100_000,
        });
        reflectors.push(r);
        stampPorts.push(r.port);
      }
      let tcpPort: number | undefined;
      if (g.tcp === true) {
        const l = await TcpListener.start({ address, port: 0 });
        listeners.push(l);
        tcpPort = l.port;
      }
      let echoPort: number | undefined;
      if (g.echo === true) {
        const s = dgram.createSocket('udp4');
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.bind({ address, port: 0 }, () => {
            s.off('error', reject);
            resolve();
          });
        });
        s.on('error', () => undefined);
        // The cheapest possible reflector: send the same bytes back.
        s.on('message', (msg, rinfo) => {
          echoed++;
          s.send(msg, rinfo.port, rinfo.address);
        });
        echoes.push(s);
        echoPort = s.address().port;
      }
      let dnsPort: number | undefined;
      if (g.dns === true) {
        const d = await DnsServer.start({
          address,
          port: 0,
          zones: [BENCH_DNS_ZONE],
          records: BENCH_DNS_RECORDS,
        });
        dnsServers.push(d);
        dnsPort = d.port;
      }
      out.push({
        address,
        stampPorts,
        ...(tcpPort !== undefined ? { tcpPort } : {}),
        ...(echoPort !== undefined ? { echoPort } : {}),
        ...(dnsPort !== undefined ? { dnsPort } : {}),
      });
    }
    groups[g.name] = out;
  }
  send({ type: 'ready', groups } satisfies ReadyMessage);
}

main().catch((e: unknown) => {
  process.stderr.write(`responders: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
