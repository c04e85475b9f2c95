// `npm run lab` (as root): brings the network lab up with podmesh agents, prints their URLs and
// takes fault commands, from the command line and then interactively, so a person can break
// the network and watch podmesh react. Ctrl-C (or `quit`) tears everything down.

import readline from 'node:readline';
import { Lab, type Undo } from './lab.ts';
import { dnsTable, statusTable } from './observe.ts';

const HELP = `commands:
  fault loss <node-a> <node-b> <percent> [oneway]   random loss on the underlay between two nodes
  fault partition <node>                            the node's underlay link goes down
  fault vxlan <node>                                inbound VXLAN (udp/4789) dropped on the node
  fault mtu [bytes]                                 MTU black hole on the underlay (default 1400)
  fault port <agent|pod|node> <port> [drop|reject]  inbound TCP port blocked (e.g. node-2/pod 9863)
  fault dns-down [replica ...]                      DNS replicas stop (coredns-1, coredns-2; default all)
  fault dns-vip                                     the DNS Service VIP's DNAT removed on every node
  fault dns-block <node>                            DNS (port 53) dropped going out of the node
  fault dns-name <name>                             the name vanishes from the replicas (NXDOMAIN)
  faults                                            active faults, numbered
  undo [n]                                          undo fault n (default: the newest)
  heal                                              undo every fault
  status                                            the loss matrix from every agent's results API
  dns                                               every agent's DNS checks (answered ratio, last outcome)
  watch [seconds]                                   status every 2 s for a while (default 20)
  sleep <seconds>                                   wait (for scripted input)
  urls                                              the agents' URLs
  help | quit`;

const USAGE = `usage: npm run lab -- [--nodes N] [--pods M] [--interval MS] [command words ...]
Runs as root. A command given as arguments runs once the lab is up; then commands are read
from stdin (one per line; several on the command line can be separated with ';').

${HELP}`;

interface Options {
  nodes: number;
  pods: number;
  interval: number;
  commands: string[];
}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = { nodes: 3, pods: 2, interval: 500, commands: [] };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v <= 0) throw new Error(`${a} needs a positive whole number`);
      return v;
    };
    if (a === '--nodes') o.nodes = num();
    else if (a === '--pods') o.pods = num();
    else if (a === '--interval') o.interval = num();
    else if (a === '-h' || a === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else rest.push(a);
  }
  // `npm run lab -- lab fault ...` reads naturally too: drop a leading "lab".
  if (rest[0] === 'lab') rest.shift();
  o.commands = rest
    .join(' ')
    .split(';')
    .map((c) => c.trim())
    .filter(Boolean);
  return o;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class Console {
  private readonly undos: { name: string; undo: Undo }[] = [];

  constructor(private readonly lab: Lab) {}

  urls(): string {
    const dns = this.lab.dnsEnabled
      ? [
          `  DNS Service VIP ${this.lab.dnsVip}, replicas: ${this.lab.dnsReplicas.map((r) => `${r.name} ${r.ip} (${r.node.name})`).join(', ')}`,
        ]
      : [];
    return [
      ...this.lab.agents.map(
        (a) => `  ${a.id.padEnd(14)} ${a.url}/metrics   ${a.url}/api/v1/results`,
      ),
      ...dns,
    ].join('\n');
  }

  async run(line: string): Promise<boolean> {
    const w = line.trim().split(/\s+/).filter(Boolean);
    if (w[0] === 'lab') w.shift();
    const [cmd, ...args] = w;
    const lab = this.lab;
    const say = (s: string): void => void process.stdout.write(`${s}\n`);
    const add = (name: string, undo: Undo): void => {
      this.undos.push({ name, undo });
      say(`fault ${this.undos.length}: ${name}`);
    };
    switch (cmd) {
      case undefined:
        return true;
      case 'fault': {
        const [kind, a, b, c, d] = args;
        if (kind === 'loss' && a !== undefined && b !== undefined && c !== undefined) {
          const oneWay = d === 'oneway';
          add(
            `loss ${c}% ${a} ${oneWay ? '->' : '<->'} ${b}`,
            await lab.loss(a, b, Number(c), { oneWay }),
          );
        } else if (kind === 'partition' && a !== undefined) {
          add(`partition ${a}`, await lab.partition(a));
        } else if (kind === 'vxlan' && a !== undefined) {
          add(`vxlan blocked on ${a}`, await lab.blockVxlan(a));
        } else if (kind === 'mtu') {
          const mtu = a === undefined ? 1400 : Number(a);
          add(`mtu black hole ${mtu}`, await lab.mtuBlackHole(mtu));
        } else if (kind === 'port' && a !== undefined && b !== undefined) {
          const mode = c === 'reject' ? 'reject' : 'drop';
          add(`tcp/${b} ${mode} on ${a}`, await lab.blockTcpPort(a, Number(b), mode));
        } else if (kind === 'dns-down') {
          const names = args.slice(1);
          add(
            `dns replicas down: ${names.length === 0 ? 'all' : names.join(' ')}`,
            await lab.dnsReplicasDown(names.length === 0 ? undefined : names),
          );
        } else if (kind === 'dns-vip') {
          add('dns VIP DNAT removed', await lab.dnsServiceBroken());
        } else if (kind === 'dns-block' && a !== undefined) {
          add(`dns blocked from ${a}`, await lab.blockDns(a));
        } else if (kind === 'dns-name' && a !== undefined) {
          add(`dns name removed: ${a}`, await lab.removeDnsName(a));
        } else {
          say(`bad fault command: ${line}\n${HELP}`);
        }
        return true;
      }
      case 'faults':
        say(
          this.undos.length === 0
            ? 'no active faults'
            : this.undos.map((f, i) => `  ${i + 1}: ${f.name}`).join('\n'),
        );
        return true;
      case 'undo': {
        const n = args[0] === undefined ? this.undos.length : Number(args[0]);
        const f = this.undos[n - 1];
        if (f === undefined) {
          say(`no fault ${args[0] ?? ''}`);
          return true;
        }
        this.undos.splice(n - 1, 1);
        await f.undo();
        say(`undone: ${f.name}`);
        return true;
      }
      case 'heal':
        await lab.heal();
        this.undos.length = 0;
        say('all faults undone');
        return true;
      case 'status':
        say(await statusTable(lab));
        return true;
      case 'watch': {
        const end = Date.now() + 1000 * Number(args[0] ?? 20);
        while (Date.now() < end) {
          say(`\n${new Date().toISOString()}\n${await statusTable(lab)}`);
          await sleep(2000);
        }
        return true;
      }
      case 'sleep':
        await sleep(1000 * Number(args[0] ?? 1));
        return true;
      case 'dns':
        say(await dnsTable(lab));
        return true;
      case 'urls':
        say(this.urls());
        return true;
      case 'help':
        say(HELP);
        return true;
      case 'quit':
      case 'exit':
        return false;
      default:
        say(`unknown command: ${cmd}\n${HELP}`);
        return true;
    }
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  process.stdout.write(`bringing up the lab: ${o.nodes} nodes, ${o.pods} pods each…\n`);
  const lab = await Lab.up({
    nodes: o.nodes,
    podsPerNode: o.pods,
    agentSettings: {
      probes: { intervalMs: o.interval, timeoutMs: Math.round(o.interval * 0.8) },
    },
  });
  const con = new Console(lab);
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('tearing the lab down…\n');
    await lab.down();
    process.exit(0);
  };
  process.stdout.write(
    [
      '',
      `lab ${lab.prefix}: underlay ${lab.underlayCidr}, pods ${lab.clusterCidr}, VXLAN udp/${lab.vxlanPort}, probes every ${o.interval} ms`,
      ...lab.nodes.map(
        (n) =>
          `  ${n.name} (${n.zone}) ${n.ip}  pods ${n.pods.map((p) => `${p.name}=${p.ip}`).join(' ')}  netns ${n.ns}`,
      ),
      'agents:',
      con.urls(),
      '',
      'type "help" for commands; Ctrl-C or "quit" tears the lab down',
      '',
    ].join('\n'),
  );
  for (const c of o.commands) {
    process.stdout.write(`> ${c}\n`);
    try {
      if (!(await con.run(c))) return stop();
    } catch (e) {
      process.stdout.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  }
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    prompt: 'lab> ',
    terminal: process.stdin.isTTY,
  });
  rl.on('SIGINT', () => void stop());
  // Prompts only for a person at a terminal, not for commands piped in.
  const prompt = (): void => {
    if (process.stdin.isTTY) rl.prompt();
  };
  prompt();
  for await (const line of rl) {
    if (!process.stdin.isTTY && line.trim() !== '') process.stdout.write(`> ${line.trim()}\n`);
    try {
      if (!(await con.run(line))) break;
    } catch (e) {
      process.stdout.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    }
    prompt();
  }
  // stdin ended: with a terminal that is Ctrl-D; from a pipe, the script is done.
  rl.close();
  await stop();
}

main().catch((e: unknown) => {
  process.stderr.write(`lab: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
