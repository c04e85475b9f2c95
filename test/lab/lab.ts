// The podmesh network lab: a small cluster network made of Linux network namespaces (nodes,
// pods, an underlay "switch" and a flannel-style VXLAN overlay), real podmesh agents running
// inside it, and fault injection that breaks it the ways the troubleshooting guide describes.
// Needs root, iproute2 and nftables, and for its cluster DNS (two dnsmasq replicas behind a
// Service VIP) dnsmasq and conntrack. Everything it creates carries a unique prefix and is
// recorded in a state file, so a crashed or interrupted lab is removed by the next one.
//
// Addresses come from 198.18.0.0/15 (RFC 2544 benchmarking space) only. A lab takes one of 16
// blocks b (0..15) so several labs can run side by side; with U = 16*b:
//   underlay            198.18.U.0/24   node N at .N, the test process (root namespace) at .254
//   services            198.18.U+1.0/24 .10 the DNS Service VIP (nftables DNAT, as kube-proxy)
//                                       .1 kubernetes.default's address, .80 example.com's
//   cluster CIDR        198.19.U.0/20   node N's pod subnet 198.19.(U+N).0/24:
//                                       .0 flannel.1 (VTEP), .1 cni0 (gateway), .2.. pods,
//                                       DNS replica pods (dnsmasq): coredns-1 at .253 on
//                                       node-1, coredns-2 at .252 on node-2

import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';

export const STATE_DIR = '/run/podmesh-lab';
export const REPO = path.resolve(import.meta.dirname, '../..');
const BLOCKS = 16;
const MAX_NODES = 15;
/** flannel's vxlan backend: underlay MTU minus 50 bytes of VXLAN/UDP/IP/Ethernet overhead. */
export const UNDERLAY_MTU = 1500;
export const POD_MTU = 1450;
/**
 * The test process asks agents (via advmss on its routes) to send it segments no larger than
 * this, so reading /metrics keeps working while the MTU black hole fault shrinks the underlay.
 */
const ROOT_ADVMSS = 1200;
export const AGENT_PORTS = { http: 9860, stamp: 9862, tcp: 9863 } as const;

export type Network = 'pod' | 'host';
export type Undo = () => Promise<void>;

export interface LabNode {
  readonly name: string;
  readonly index: number;
  readonly zone: string;
  readonly ns: string;
  /** Address on the underlay: the node IP, and where host-network agents live. */
  readonly ip: string;
  readonly podSubnet: string;
  readonly gateway: string;
  readonly vtepIp: string;
  readonly vtepMac: string;
  readonly pods: LabPod[];
}

export interface LabPod {
  readonly name: string;
  readonly node: LabNode;
  readonly ns: string;
  readonly ip: string;
}

export interface LabAgent {
  /** `${node}/${network}`, the same id podmesh uses for peers. */
  readonly id: string;
  readonly node: LabNode;
  readonly network: Network;
  readonly ns: string;
  readonly address: string;
  readonly url: string;
  readonly configFile: string;
  readonly logFile: string;
  process: ChildProcess | undefined;
}

/** One cluster DNS replica: dnsmasq in a pod namespace of its own on a node. */
export interface LabDnsReplica {
  /** "coredns-1", "coredns-2": the names a cluster would give its DNS pods. */
  readonly name: string;
  readonly node: LabNode;
  readonly ns: string;
  readonly ip: string;
  readonly logFile: string;
  process: ChildProcess | undefined;
}

export const DNS_DOMAIN = 'cluster.local';
/** The headless service every lab pod has a name under: <pod>.lab.default.svc.cluster.local. */
export const DNS_HEADLESS = 'lab.default.svc.cluster.local';
export const DNS_EXTERNAL = 'example.com';
export const DNS_SERVICE = `kubernetes.default.svc.${DNS_DOMAIN}`;

export interface LabOptions {
  readonly nodes?: number;
  readonly podsPerNode?: number;
  readonly agents?: boolean;
  /** Deep-merged into every agent's config file (e.g. { probes: { intervalMs: 100 } }). */
  readonly agentSettings?: Record<string, unknown>;
  /** Address block 0..15; default: the first one no live lab holds. */
  readonly block?: number;
  readonly vxlanPort?: number;
  /** Keep the agents' config and log files after down() (they are under STATE_DIR/<prefix>). */
  readonly keepFiles?: boolean;
  /** Extra environment for the agent processes (e.g. KUBECONFIG for Kubernetes discovery). */
  readonly agentEnv?: Record<string, string>;
  /**
   * Cluster DNS (default true): two dnsmasq replicas behind a DNS Service VIP, every agent
   * checking them. false: no DNS servers, and the agents' DNS checks are off.
   */
  readonly dns?: boolean;
}

interface StateFile {
  prefix: string;
  block: number;
  pid: number;
  pidStart: string;
  started: string;
}

// ---------------------------------------------------------------------------------------------
// Commands

async function run(cmd: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err !== null)
        reject(
          Object.assign(
            new Error(`${cmd} ${args.join(' ')} failed: ${stderr.trim() || err.message}`, {
              cause: err,
            }),
            { stdout },
          ),
        );
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Best effort, synchronous: used by clean-up, which also runs from exit and signal handlers. */
function runSync(cmd: string, args: readonly string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: 20_000 });
  return r.status === 0 ? r.stdout : '';
}

/** `ip -n ns -batch -`: one process for many commands in one namespace. */
function ipBatch(ns: string | undefined, lines: readonly string[]): Promise<string> {
  const args = ns === undefined ? ['-batch', '-'] : ['-n', ns, '-batch', '-'];
  return run(bin('ip'), args, lines.join('\n') + '\n');
}

export function nsExec(ns: string, cmd: string, args: readonly string[]): Promise<string> {
  return run(bin('ip'), ['netns', 'exec', ns, cmd.startsWith('/') ? cmd : bin(cmd), ...args]);
}

export function nftApply(ns: string, script: string): Promise<string> {
  return run(bin('ip'), ['netns', 'exec', ns, bin('nft'), '-f', '-'], script);
}

const SYSTEM_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin'];

/**
 * Absolute path of a system tool. Never looked up on PATH: under npm scripts PATH starts with
 * node_modules/.bin, where e.g. `nft` is @vercel/nft's CLI, not nftables.
 */
export function sysBin(name: string): string | undefined {
  for (const d of SYSTEM_DIRS) {
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

function bin(name: string): string {
  const p = sysBin(name);
  if (p === undefined)
    throw new Error(`the network lab needs \`${name}\` (not found in ${SYSTEM_DIRS.join(':')})`);
  return p;
}

function hasCommand(name: string): boolean {
  return sysBin(name) !== undefined;
}

// ---------------------------------------------------------------------------------------------
// State files and clean-up of this and earlier (crashed) labs

function procStart(pid: number): string | undefined {
  try {
    // Field 22 (start time) survives the comm field containing spaces: split after the last ')'.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function alive(s: StateFile): boolean {
  return procStart(s.pid) === s.pidStart;
}

function readStates(): { file: string; state: StateFile }[] {
  let names: string[];
  try {
    names = fs.readdirSync(STATE_DIR).filter((n) => /^block-\d+\.json$/.test(n));
  } catch {
    return [];
  }
  const out: { file: string; state: StateFile }[] = [];
  for (const n of names) {
    const file = path.join(STATE_DIR, n);
    try {
      out.push({ file, state: JSON.parse(fs.readFileSync(file, 'utf8')) as StateFile });
    } catch {
      // Half-written by a process that died mid-write: nothing was created before it.
      fs.rmSync(file, { force: true });
    }
  }
  return out;
}

function labNamespaces(): string[] {
  return runSync(bin('ip'), ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => /^pml[0-9a-f]{4}-/.test(n));
}

function labRootLinks(): string[] {
  const out = runSync(bin('ip'), ['-o', 'link', 'show']);
  return [...out.matchAll(/^\d+: (pml[0-9a-f]{4}r)[@:]/gm)].map((m) => m[1]!);
}

/** Kills every process inside the prefix's namespaces, then removes namespaces, links, files. */
function teardownPrefix(prefix: string, keepFiles = false): void {
  const namespaces = labNamespaces().filter((n) => n.startsWith(`${prefix}-`));
  for (const ns of namespaces) {
    for (const pid of runSync(bin('ip'), ['netns', 'pids', ns]).split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  runSync(bin('ip'), ['link', 'del', `${prefix}r`]);
  // nft tables live inside the namespaces and go with them.
  if (namespaces.length > 0)
    runSync(
      bin('ip'),
      ['-force', '-batch', '-'],
      namespaces.map((n) => `netns del ${n}`).join('\n'),
    );
  for (const d of fs.existsSync('/etc/netns') ? fs.readdirSync('/etc/netns') : [])
    if (d.startsWith(`${prefix}-`)) fs.rmSync(path.join('/etc/netns', d), { recursive: true });
  if (!keepFiles) fs.rmSync(path.join(STATE_DIR, prefix), { recursive: true, force: true });
}

/**
 * Removes what labs whose process is gone left behind: their namespaces, root links and
 * files, and namespaces/links with a lab prefix that no live lab claims.
 */
export function reapStaleLabs(): string[] {
  // Namespaces and links first, state files second: a live lab writes its state file before it
  // creates anything, so whatever is listed here belongs to a state file read below.
  const namespaces = labNamespaces();
  const links = labRootLinks();
  const reaped: string[] = [];
  const livePrefixes = new Set<string>();
  for (const { file, state } of readStates()) {
    if (alive(state)) {
      livePrefixes.add(state.prefix);
      continue;
    }
    teardownPrefix(state.prefix);
    fs.rmSync(file, { force: true });
    reaped.push(state.prefix);
  }
  const orphans = new Set<string>();
  for (const n of namespaces) orphans.add(n.slice(0, 7));
  for (const l of links) orphans.add(l.slice(0, 7));
  for (const p of orphans) {
    if (livePrefixes.has(p) || reaped.includes(p)) continue;
    teardownPrefix(p);
    reaped.push(p);
  }
  return reaped;
}

/** Claims a free address block by creating its state file exclusively. */
function claimBlock(prefix: string, wanted: number | undefined): { block: number; file: string } {
  fs.mkdirSync(STATE_DIR, { recursive: true });
  const state = (block: number): StateFile => ({
    prefix,
    block,
    pid: process.pid,
    pidStart: procStart(process.pid) ?? '',
    started: new Date().toISOString(),
  });
  const candidates = wanted === undefined ? [...Array(BLOCKS).keys()] : [wanted];
  for (const b of candidates) {
    const file = path.join(STATE_DIR, `block-${b}.json`);
    try {
      fs.writeFileSync(file, JSON.stringify(state(b)), { flag: 'wx' });
      return { block: b, file };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  throw new Error(
    wanted === undefined
      ? `no free lab address block: ${BLOCKS} labs are running (see ${STATE_DIR})`
      : `lab address block ${wanted} is held by a running lab (see ${STATE_DIR})`,
  );
}

// Every lab of this process, torn down by the handlers below if the process ends abruptly.
const liveLabs = new Set<Lab>();
let handlersInstalled = false;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const downAll = (): void => {
    for (const lab of liveLabs) lab.downSync();
  };
  process.on('exit', downAll);
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.on(sig, () => {
      downAll();
      process.exit(code);
    });
  }
  process.on('uncaughtException', (err) => {
    downAll();
    // Alone, this listener would swallow the crash; with others (ava's), they report it.
    if (process.listenerCount('uncaughtException') === 1) {
      process.stderr.write(`${err.stack ?? String(err)}\n`);
      process.exit(1);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The lab

function merge(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v !== null &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      b !== null &&
      typeof b === 'object' &&
      !Array.isArray(b)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

export class Lab {
  readonly prefix: string;
  readonly block: number;
  readonly nodes: LabNode[] = [];
  readonly agents: LabAgent[] = [];
  readonly underlayNs: string;
  readonly rootLink: string;
  readonly rootIp: string;
  readonly underlayCidr: string;
  readonly clusterCidr: string;
  readonly vxlanPort: number;
  readonly dir: string;
  /** The DNS Service VIP (kube-dns' ClusterIP), DNAT'ed to the replicas on every node. */
  readonly dnsVip: string;
  readonly dnsReplicas: LabDnsReplica[] = [];
  /** What the replicas serve (absolute name without the trailing dot → IPv4). */
  readonly dnsRecords = new Map<string, string>();
  private readonly removedDnsNames = new Set<string>();
  private readonly stateFile: string;
  private readonly faults = new Map<number, { name: string; undo: () => Promise<void> }>();
  private faultSeq = 0;
  private isDown = false;
  /** TCP servers started in lab namespaces (serveTcp): killed on down(). */
  private readonly servers = new Set<ChildProcess>();
  private extraSettings: Record<string, unknown> = {};

  private constructor(
    prefix: string,
    claim: { block: number; file: string },
    private readonly opts: LabOptions,
  ) {
    this.prefix = prefix;
    this.block = claim.block;
    this.stateFile = claim.file;
    const u = 16 * claim.block;
    this.underlayNs = `${prefix}-u`;
    this.rootLink = `${prefix}r`;
    this.rootIp = `198.18.${u}.254`;
    this.underlayCidr = `198.18.${u}.0/24`;
    this.clusterCidr = `198.19.${u}.0/20`;
    this.vxlanPort = opts.vxlanPort ?? 4789;
    this.dir = path.join(STATE_DIR, prefix);
    this.dnsVip = `198.18.${u + 1}.10`;
  }

  get dnsEnabled(): boolean {
    return this.opts.dns ?? true;
  }

  /** Builds the network (and starts the agents unless agents: false). */
  static async up(opts: LabOptions = {}): Promise<Lab> {
    const nodes = opts.nodes ?? 3;
    const pods = opts.podsPerNode ?? 2;
    if (process.getuid?.() !== 0) throw new Error('the network lab needs root');
    for (const c of ['ip', 'nft', 'bridge'])
      if (!hasCommand(c)) throw new Error(`the network lab needs \`${c}\` (iproute2, nftables)`);
    if (opts.dns ?? true)
      for (const c of ['dnsmasq', 'conntrack'])
        if (!hasCommand(c))
          throw new Error(
            `the network lab's cluster DNS needs \`${c}\` (Debian packages dnsmasq-base, conntrack); or pass dns: false`,
          );
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES)
      throw new Error(`nodes: 1 to ${MAX_NODES}, got ${nodes}`);
    if (!Number.isInteger(pods) || pods < 1 || pods > 200)
      throw new Error(`podsPerNode: 1 to 200, got ${pods}`);
    reapStaleLabs();
    const prefix = `pml${randomBytes(2).toString('hex')}`;
    const lab = new Lab(prefix, claimBlock(prefix, opts.block), opts);
    installHandlers();
    liveLabs.add(lab);
    try {
      fs.mkdirSync(lab.dir, { recursive: true });
      await lab.build(nodes, pods);
      if (lab.dnsEnabled) await lab.buildDns();
      if (opts.agents ?? true) await lab.startAgents(opts.agentEnv);
    } catch (e) {
      lab.downSync();
      throw e;
    }
    return lab;
  }

  private async build(nodeCount: number, podsPerNode: number): Promise<void> {
    const u = 16 * this.block;
    for (let n = 1; n <= nodeCount; n++) {
      const s = u + n;
      const node: LabNode = {
        name: `node-${n}`,
        index: n,
        zone: n % 2 === 1 ? 'zone-a' : 'zone-b',
        ns: `${this.prefix}-n${n}`,
        ip: `198.18.${u}.${n}`,
        podSubnet: `198.19.${s}.0/24`,
        gateway: `198.19.${s}.1`,
        vtepIp: `198.19.${s}.0`,
        vtepMac: `0a:58:c6:13:${hex2(s)}:00`,
        pods: [],
      };
      for (let p = 1; p <= podsPerNode; p++)
        node.pods.push({
          name: `${node.name}-pod-${p}`,
          node,
          ns: `${node.ns}p${p}`,
          ip: `198.19.${s}.${p + 1}`,
        });
      this.nodes.push(node);
    }
    const allNs = [
      this.underlayNs,
      ...this.nodes.flatMap((n) => [n.ns, ...n.pods.map((p) => p.ns)]),
    ];
    await ipBatch(
      undefined,
      allNs.map((ns) => `netns add ${ns}`),
    );

    // The underlay: one bridge, a switch every node is plugged into.
    await ipBatch(this.underlayNs, [
      'link set lo up',
      `link add br0 mtu ${UNDERLAY_MTU} type bridge`,
      'link set br0 up',
    ]);

    await Promise.all(this.nodes.map((node) => this.buildNode(node)));
    await ipBatch(
      this.underlayNs,
      this.nodes.flatMap((n) => [`link set n${n.index} master br0`, `link set n${n.index} up`]),
    );
    await Promise.all(this.nodes.flatMap((node) => node.pods.map((pod) => this.buildPod(pod))));
    await Promise.all(this.nodes.map((node) => this.wireOverlay(node)));

    // The test process's own port on the underlay, with routes to the pod subnets via the nodes
    // (like a jump host on the node network): only to addresses this lab created.
    await ipBatch(undefined, [
      `link add ${this.rootLink} type veth peer name root netns ${this.underlayNs}`,
      `addr add ${this.rootIp}/24 dev ${this.rootLink} noprefixroute`,
      `link set ${this.rootLink} up`,
      `route add ${this.underlayCidr} dev ${this.rootLink} src ${this.rootIp} advmss ${ROOT_ADVMSS}`,
      ...this.nodes.map(
        (n) => `route add ${n.podSubnet} via ${n.ip} dev ${this.rootLink} advmss ${ROOT_ADVMSS}`,
      ),
    ]);
    await ipBatch(this.underlayNs, ['link set root master br0', 'link set root up']);
  }

  private async buildNode(node: LabNode): Promise<void> {
    await ipBatch(node.ns, [
      'link set lo up',
      `link add eth0 mtu ${UNDERLAY_MTU} type veth peer name n${node.index} netns ${this.underlayNs}`,
      `addr add ${node.ip}/24 dev eth0`,
      'link set eth0 up',
      // cni0: the bridge the node's pods hang off, their gateway.
      `link add cni0 mtu ${POD_MTU} type bridge`,
      `addr add ${node.gateway}/24 dev cni0`,
      'link set cni0 up',
      // flannel.1: flannel's vxlan backend, with learning off; flanneld programs FDB and
      // neighbour entries for every remote VTEP (wireOverlay does it here).
      `link add flannel.1 address ${node.vtepMac} mtu ${POD_MTU} type vxlan id 1 local ${node.ip} dev eth0 dstport ${this.vxlanPort} nolearning`,
      `addr add ${node.vtepIp}/32 dev flannel.1`,
      'link set flannel.1 up',
    ]);
    await nsExec(node.ns, 'sysctl', [
      '-q',
      '-w',
      'net.ipv4.ip_forward=1',
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
    ]);
    // flanneld's masquerade rules (ip-masq): pod traffic leaving the cluster CIDR takes the
    // node's address; host traffic to other nodes' pods takes flannel.1's address. So pod-to-host
    // traffic rides the underlay and host-to-pod traffic the overlay, both ways, as in flannel.
    await nftApply(
      node.ns,
      `table ip pmlab_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr ${this.clusterCidr} ip daddr ${this.clusterCidr} return
    ip saddr ${this.clusterCidr} ip daddr != 224.0.0.0/4 masquerade
    ip saddr != ${this.clusterCidr} ip daddr ${node.podSubnet} return
    ip saddr != ${this.clusterCidr} ip daddr ${this.clusterCidr} masquerade
  }
}
`,
    );
  }

  private async buildPod(pod: LabPod): Promise<void> {
    const idx = pod.node.pods.indexOf(pod) + 1;
    await ipBatch(pod.ns, [
      'link set lo up',
      `link add eth0 mtu ${POD_MTU} type veth peer name veth${idx} netns ${pod.node.ns}`,
      `addr add ${pod.ip}/24 dev eth0`,
      'link set eth0 up',
      `route add default via ${pod.node.gateway}`,
    ]);
    await ipBatch(pod.node.ns, [`link set veth${idx} master cni0`, `link set veth${idx} up`]);
  }

  private async wireOverlay(node: LabNode): Promise<void> {
    const remotes = this.nodes.filter((r) => r !== node);
    if (remotes.length === 0) return;
    await run(
      bin('bridge'),
      ['-n', node.ns, '-batch', '-'],
      remotes
        .map((r) => `fdb append ${r.vtepMac} dev flannel.1 dst ${r.ip} self permanent`)
        .join('\n') + '\n',
    );
    await ipBatch(
      node.ns,
      remotes.flatMap((r) => [
        `neigh replace ${r.vtepIp} lladdr ${r.vtepMac} dev flannel.1 nud permanent`,
        `route replace ${r.podSubnet} via ${r.vtepIp} dev flannel.1 onlink`,
      ]),
    );
  }

  // -------------------------------------------------------------------------------------------
  // Cluster DNS: dnsmasq replicas behind a Service VIP

  /**
   * Two DNS replicas (on node-1 and node-2; both on node-1 in a one-node lab), each dnsmasq in
   * a pod namespace of its own, and the DNS Service VIP DNAT'ed across them on every node.
   */
  async buildDns(): Promise<void> {
    const u = 16 * this.block;
    this.dnsRecords.set(DNS_SERVICE, `198.18.${u + 1}.1`);
    this.dnsRecords.set(`kube-dns.kube-system.svc.${DNS_DOMAIN}`, this.dnsVip);
    for (const pod of this.nodes.flatMap((n) => n.pods))
      this.dnsRecords.set(`${pod.name}.${DNS_HEADLESS}`, pod.ip);
    this.dnsRecords.set(DNS_EXTERNAL, `198.18.${u + 1}.80`);
    const hosts = [this.nodes[0]!, this.nodes[1] ?? this.nodes[0]!];
    hosts.forEach((node, i) => {
      const s = u + node.index;
      this.dnsReplicas.push({
        name: `coredns-${i + 1}`,
        node,
        ns: `${node.ns}d${i + 1}`,
        ip: `198.19.${s}.${253 - i}`,
        logFile: path.join(this.dir, `coredns-${i + 1}.log`),
        process: undefined,
      });
    });
    this.writeDnsHosts();
    await ipBatch(
      undefined,
      this.dnsReplicas.map((r) => `netns add ${r.ns}`),
    );
    for (const r of this.dnsReplicas) {
      const veth = `vethd${this.dnsReplicas.indexOf(r) + 1}`;
      await ipBatch(r.ns, [
        'link set lo up',
        `link add eth0 mtu ${POD_MTU} type veth peer name ${veth} netns ${r.node.ns}`,
        `addr add ${r.ip}/24 dev eth0`,
        'link set eth0 up',
        `route add default via ${r.node.gateway}`,
      ]);
      await ipBatch(r.node.ns, [`link set ${veth} master cni0`, `link set ${veth} up`]);
    }
    await Promise.all(this.nodes.map((n) => this.applyDnsService(n)));
    await Promise.all(this.dnsReplicas.map((r) => this.startDnsReplica(r)));
  }

  /**
   * The DNS Service the way kube-proxy's nftables mode programs it: the VIP's UDP and TCP port
   * 53 jump to a chain that picks an endpoint with `numgen random mod 2 vmap`, each endpoint
   * chain DNATs; hooked in prerouting (the node's pods) and output (the node itself). A route
   * for the service block makes the node's own sockets able to send to the VIP at all (a real
   * node has its default route); without the DNAT, packets to the VIP go nowhere.
   */
  private async applyDnsService(node: LabNode): Promise<void> {
    const u = 16 * this.block;
    await ipBatch(node.ns, [`route add 198.18.${u + 1}.0/24 dev eth0 src ${node.ip}`]);
    const eps = this.dnsReplicas;
    await nftApply(
      node.ns,
      `table ip pmlab_svc {
${eps.map((r, i) => `  chain endpoint-${i + 1} {\n    meta l4proto { tcp, udp } dnat to ${r.ip}\n  }`).join('\n')}
  chain svc-kube-dns {
    numgen random mod ${eps.length} vmap { ${eps.map((_, i) => `${i} : goto endpoint-${i + 1}`).join(', ')} }
  }
  chain services {
    ${this.dnsServiceRule()}
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump services
  }
  chain output {
    type nat hook output priority -100; policy accept;
    jump services
  }
  chain postrouting {
    type nat hook postrouting priority srcnat - 10; policy accept;
    # Hairpin: a pod DNAT'ed to a replica on its own bridge would get the reply straight from
    # the replica's address; masquerade it so the reply comes back through this node.
    ct status dnat ip saddr ${node.podSubnet} ip daddr ${node.podSubnet} masquerade
  }
}
`,
    );
  }

  private dnsServiceRule(): string {
    return `ip daddr ${this.dnsVip} meta l4proto { tcp, udp } th dport 53 goto svc-kube-dns`;
  }

  /** Names served, as a hosts file dnsmasq re-reads on SIGHUP. */
  private writeDnsHosts(): void {
    const lines = [...this.dnsRecords]
      .filter(([name]) => !this.removedDnsNames.has(name))
      .map(([name, ip]) => `${ip} ${name}`);
    fs.writeFileSync(path.join(this.dir, 'dns-hosts'), lines.join('\n') + '\n');
  }

  private async startDnsReplica(r: LabDnsReplica, timeoutMs = 10_000): Promise<void> {
    const log = fs.openSync(r.logFile, 'a');
    // Authoritative for the cluster domain and the "external" zone (--local: a name not in the
    // hosts file is NXDOMAIN, never forwarded); no upstream at all (--no-resolv, no --server).
    r.process = spawn(
      bin('ip'),
      [
        'netns',
        'exec',
        r.ns,
        bin('dnsmasq'),
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        '--no-resolv',
        '--no-hosts',
        '--no-poll',
        `--addn-hosts=${path.join(this.dir, 'dns-hosts')}`,
        `--local=/${DNS_DOMAIN}/`,
        `--local=/${DNS_EXTERNAL}/`,
        '--bind-interfaces',
        `--listen-address=${r.ip}`,
        // dnsmasq serves each TCP connection in a child process and stops accepting new ones
        // at 20 children (CoreDNS has no such limit and drops idle connections in seconds). A
        // child whose client's reset was lost waits out dnsmasq's 150 s child lifetime, so
        // under the lab's random loss the stuck children reached 20 within a minute and every
        // agent's TCP lookups to that replica timed out for minutes after the loss was gone:
        // PodmeshDNSFailureRatioHigh, rightly, in the phase after. A limit well above what a
        // fault phase can strand keeps the replica a CoreDNS-like server.
        '--max-tcp-connections=1000',
        '--port=53',
        '--user=root',
        '--pid-file=',
        '--log-facility=-',
      ],
      { stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    const p = r.process;
    const end = Date.now() + timeoutMs;
    // Ready when it listens on both transports (it binds before it logs "started").
    for (;;) {
      if (p.exitCode !== null || p.signalCode !== null)
        throw new Error(`dnsmasq ${r.name} exited:\n${fs.readFileSync(r.logFile, 'utf8')}`);
      const ss = await nsExec(r.ns, 'ss', ['-Hlntu', 'sport', '= :53']).catch(() => '');
      if (/^udp/m.test(ss) && /^tcp/m.test(ss)) return;
      if (Date.now() > end)
        throw new Error(`dnsmasq ${r.name} not listening after ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  private async stopDnsReplica(r: LabDnsReplica): Promise<void> {
    const p = r.process;
    r.process = undefined;
    if (p !== undefined && p.exitCode === null && p.signalCode === null)
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGKILL');
      });
    // dnsmasq forks a child per TCP connection, and a child outlives its killed parent holding
    // the listening sockets: a restarted replica would then fail to bind while `ss` still shows
    // port 53 open. Kill every dnsmasq of this replica, parent or child.
    const mark = `--listen-address=${r.ip}`;
    for (const pid of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      let cmd: string[];
      try {
        cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      } catch {
        continue;
      }
      if (cmd.includes(mark) && cmd.some((c) => c.endsWith('dnsmasq'))) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (let i = 0; i < 40; i++) {
      const ss = await nsExec(r.ns, 'ss', ['-Hlntu', 'sport', '= :53']).catch(() => '');
      if (ss.trim() === '') return;
      await sleep(50);
    }
  }

  dnsReplica(name: string): LabDnsReplica {
    const r = this.dnsReplicas.find((x) => x.name === name || x.node.name === name);
    if (r === undefined)
      throw new Error(
        `no DNS replica ${name}; replicas: ${this.dnsReplicas.map((x) => x.name).join(', ')}`,
      );
    return r;
  }

  /** The dns.* settings of an agent: its own resolv.conf (VIP, cluster search list). */
  private dnsConfig(a: LabAgent): Record<string, unknown> {
    if (!this.dnsEnabled) return { enabled: false };
    const resolvConf = path.join(this.dir, `${a.node.name}-${a.network}.resolv.conf`);
    // A pod in namespace "default", as kubelet writes it (ClusterFirst).
    fs.writeFileSync(
      resolvConf,
      [
        `nameserver ${this.dnsVip}`,
        `search default.svc.${DNS_DOMAIN} svc.${DNS_DOMAIN} ${DNS_DOMAIN}`,
        'options ndots:5',
        '',
      ].join('\n'),
    );
    return {
      enabled: true,
      resolvConf,
      port: 53,
      clusterDomain: DNS_DOMAIN,
      shortName: 'kubernetes.default',
      podName: `${a.node.pods[0]!.name}.${DNS_HEADLESS}`,
      externalName: DNS_EXTERNAL,
      tcp: true,
      intervalMs: 1000,
      timeoutMs: 800,
      replicas: this.dnsReplicas.map((r) => ({ address: r.ip, node: r.node.name })),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Agents

  private agentConfig(a: LabAgent): Record<string, unknown> {
    const base: Record<string, unknown> = {
      node: a.node.name,
      network: a.network,
      zone: a.node.zone,
      address: a.address,
      advertiseAddress: a.address,
      httpAddress: '0.0.0.0',
      httpPort: AGENT_PORTS.http,
      stampPort: AGENT_PORTS.stamp,
      tcpPort: AGENT_PORTS.tcp,
      logLevel: 'info',
      probes: {
        icmp: true,
        mtu: true,
        // A host-network agent's own MTU (1500) is larger than the overlay's (1450), and its
        // DF-marked ICMP mtu probes to pods on other nodes would fail locally with EMSGSIZE on a
        // healthy cluster; size them to the pod network like a pod agent's.
        ...(a.network === 'host' ? { mtuBytes: POD_MTU } : {}),
      },
      window: { seconds: 10 },
      shutdown: { drainMs: 0 },
      discovery: { mode: 'static' },
      // The lab's own DNS (or none): never the machine's /etc/resolv.conf.
      dns: this.dnsConfig(a),
      // No API server check unless a test gives one: never the VIP of a cluster the lab may run
      // in (KUBERNETES_SERVICE_HOST in the env the agents inherit).
      apiserver: { service: 'none' },
      peers: {
        limit: 64,
        static: this.agents.map((p) => ({
          node: p.node.name,
          network: p.network,
          zone: p.node.zone,
          address: p.address,
          stampPort: AGENT_PORTS.stamp,
          tcpPort: AGENT_PORTS.tcp,
          httpPort: AGENT_PORTS.http,
        })),
      },
    };
    return merge(merge(base, this.opts.agentSettings ?? {}), this.extraSettings);
  }

  /**
   * Starts the host and pod agents (Lab.up does unless `agents: false`). A test that needs
   * something from the built lab first (its root-side address, say) starts them itself.
   */
  /** Starts every agent; `extraSettings` is deep-merged into their config after agentSettings. */
  async startAgents(
    extraEnv: Record<string, string> = {},
    extraSettings: Record<string, unknown> = {},
  ): Promise<void> {
    this.extraSettings = extraSettings;
    for (const node of this.nodes) {
      const pod = node.pods[0]!;
      for (const [network, ns, address] of [
        ['host', node.ns, node.ip],
        ['pod', pod.ns, pod.ip],
      ] as const) {
        const base = `${node.name}-${network}`;
        this.agents.push({
          id: `${node.name}/${network}`,
          node,
          network,
          ns,
          address,
          url: `http://${address}:${AGENT_PORTS.http}`,
          configFile: path.join(this.dir, `${base}.yaml`),
          logFile: path.join(this.dir, `${base}.log`),
          process: undefined,
        });
      }
    }
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env))
      if (!k.startsWith('PODMESH_') && !k.startsWith('NODE_OPTIONS')) env[k] = v;
    Object.assign(env, extraEnv);
    for (const a of this.agents) {
      fs.writeFileSync(a.configFile, stringify(this.agentConfig(a)));
      const log = fs.openSync(a.logFile, 'a');
      // `ip netns exec` execs the command, so the child's pid is the agent's own.
      a.process = spawn(
        bin('ip'),
        [
          'netns',
          'exec',
          a.ns,
          process.execPath,
          '--import',
          'tsx',
          path.join(REPO, 'src/main.ts'),
          'agent',
          '--config',
          a.configFile,
        ],
        { cwd: REPO, env, stdio: ['ignore', log, log] },
      );
      fs.closeSync(log);
    }
    await Promise.all(this.agents.map((a) => this.waitReady(a)));
  }

  private async waitReady(a: LabAgent, timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      if (a.process?.exitCode !== null || a.process.signalCode !== null)
        throw new Error(`agent ${a.id} exited during start-up:\n${this.logTail(a)}`);
      try {
        const res = await fetch(`${a.url}/readyz`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > end)
        throw new Error(`agent ${a.id} not ready after ${timeoutMs} ms:\n${this.logTail(a)}`);
      await sleep(200);
    }
  }

  logTail(a: LabAgent, lines = 20): string {
    try {
      return fs.readFileSync(a.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  agent(id: string): LabAgent {
    const a = this.agents.find((x) => x.id === id);
    if (a === undefined)
      throw new Error(`no agent ${id}; agents: ${this.agents.map((x) => x.id).join(', ')}`);
    return a;
  }

  node(name: string): LabNode {
    const n = this.nodes.find((x) => x.name === name);
    if (n === undefined)
      throw new Error(`no node ${name}; nodes: ${this.nodes.map((x) => x.name).join(', ')}`);
    return n;
  }

  /** Namespace of a node ("node-1"), a pod ("node-1-pod-2") or an agent ("node-1/pod"). */
  nsOf(target: string): string {
    if (target.includes('/')) return this.agent(target).ns;
    const pod = this.nodes.flatMap((n) => n.pods).find((p) => p.name === target);
    return pod?.ns ?? this.node(target).ns;
  }

  /**
   * GET an agent's endpoint. Over the underlay from this process by default; `via: 'netns'`
   * asks from inside the agent's own namespace (127.0.0.1), which works while the agent is cut
   * off, e.g. during a partition of its node.
   */
  async get(a: LabAgent, urlPath: string, via: 'http' | 'netns' = 'http'): Promise<string> {
    if (via === 'http') {
      const res = await fetch(`${a.url}${urlPath}`, { signal: AbortSignal.timeout(3000) });
      if (!res.ok) throw new Error(`GET ${a.url}${urlPath}: ${res.status}`);
      return res.text();
    }
    const url = `http://127.0.0.1:${AGENT_PORTS.http}${urlPath}`;
    if ((hasCurl ??= hasCommand('curl')))
      return nsExec(a.ns, 'curl', ['-sf', '--max-time', '3', url]);
    return nsExec(a.ns, process.execPath, [
      '-e',
      `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => process.stdout.write(t))`,
    ]);
  }

  // -------------------------------------------------------------------------------------------
  // Faults: each returns its undo; heal() undoes all of them.

  private track(name: string, undo: () => Promise<void>): Undo {
    const id = ++this.faultSeq;
    this.faults.set(id, { name, undo });
    return async () => {
      const f = this.faults.get(id);
      if (f === undefined) return;
      this.faults.delete(id);
      await f.undo();
    };
  }

  activeFaults(): string[] {
    return [...this.faults.values()].map((f) => f.name);
  }

  private nftTable(): string {
    return `pmlab_f${this.faultSeq + 1}`;
  }

  /**
   * Random loss on the underlay between two nodes (nftables in the underlay switch): `oneWay`
   * drops only frames from `from` to `to`. Covers everything between the nodes: host traffic,
   * masqueraded pod-to-host traffic and VXLAN-encapsulated pod traffic; `overlay` only the
   * VXLAN-encapsulated traffic (to pods across the nodes).
   */
  async loss(
    from: string,
    to: string,
    percent: number,
    o: { oneWay?: boolean; overlay?: boolean } = {},
  ): Promise<Undo> {
    const a = this.node(from);
    const b = this.node(to);
    if (a === b) throw new Error('loss: two different nodes');
    if (!(percent > 0 && percent <= 100))
      throw new Error(`loss: percent in (0, 100], got ${percent}`);
    const table = this.nftTable();
    const bp = Math.round(percent * 100);
    // numgen's modulus bounds its values to 0..9999: 100% is a plain drop.
    const rule = (s: LabNode, d: LabNode): string =>
      `ip saddr ${s.ip} ip daddr ${d.ip} ${o.overlay === true ? `udp dport ${this.vxlanPort} ` : ''}${bp >= 10000 ? '' : `numgen random mod 10000 < ${bp} `}drop`;
    await nftApply(
      this.underlayNs,
      `table bridge ${table} {
  chain lab_forward {
    type filter hook forward priority 0; policy accept;
    ${rule(a, b)}
    ${o.oneWay === true ? '' : rule(b, a)}
  }
}
`,
    );
    return this.track(
      `loss ${percent}% ${a.name} ${o.oneWay === true ? '->' : '<->'} ${b.name}${o.overlay === true ? ' (overlay)' : ''}`,
      () => nftApply(this.underlayNs, `delete table bridge ${table}\n`).then(() => undefined),
    );
  }

  /** Pulls the node's cable: its port on the underlay switch goes down. */
  async partition(nodeName: string): Promise<Undo> {
    const n = this.node(nodeName);
    await ipBatch(this.underlayNs, [`link set n${n.index} down`]);
    return this.track(`partition ${n.name}`, () =>
      ipBatch(this.underlayNs, [`link set n${n.index} up`]).then(() => undefined),
    );
  }

  /**
   * A firewall on the node drops inbound VXLAN (UDP to the overlay port): pod traffic to and
   * from the node breaks, host traffic (node IP to node IP) does not.
   */
  async blockVxlan(nodeName: string): Promise<Undo> {
    const n = this.node(nodeName);
    const table = this.nftTable();
    await nftApply(
      n.ns,
      `table inet ${table} {
  chain lab_input {
    type filter hook input priority 0; policy accept;
    udp dport ${this.vxlanPort} drop
  }
}
`,
    );
    return this.track(`vxlan blocked on ${n.name} (udp/${this.vxlanPort})`, () =>
      nftApply(n.ns, `delete table inet ${table}\n`).then(() => undefined),
    );
  }

  /**
   * MTU black hole: the underlay switch's node ports get a smaller MTU than the nodes believe
   * (frames over it are dropped without a word, as by a switch), and IP fragments and ICMP
   * "fragmentation needed" are dropped on the way. Small packets pass, large ones vanish.
   */
  async mtuBlackHole(mtu = 1400): Promise<Undo> {
    if (!(mtu >= 576 && mtu < UNDERLAY_MTU)) throw new Error(`mtu: 576 to ${UNDERLAY_MTU - 1}`);
    const table = this.nftTable();
    const ports = this.nodes.map((n) => `n${n.index}`);
    await ipBatch(
      this.underlayNs,
      ports.map((p) => `link set ${p} mtu ${mtu}`),
    );
    await nftApply(
      this.underlayNs,
      `table bridge ${table} {
  chain lab_forward {
    type filter hook forward priority 0; policy accept;
    ip frag-off & 0x3fff != 0 drop
    icmp type destination-unreachable icmp code frag-needed drop
  }
}
`,
    );
    return this.track(`mtu black hole: underlay ${mtu}`, async () => {
      await nftApply(this.underlayNs, `delete table bridge ${table}\n`);
      await ipBatch(
        this.underlayNs,
        ports.map((p) => `link set ${p} mtu ${UNDERLAY_MTU}`),
      );
    });
  }

  /**
   * Blocks inbound TCP to `port` in one pod's (or node's, or agent's) namespace: `drop` (the
   * connect times out), `reject` with a TCP reset (the connect is refused) or `admin-prohibited`
   * (an ICMP administratively-prohibited: the connect fails at once with EHOSTUNREACH).
   */
  async blockTcpPort(
    target: string,
    port: number,
    mode: 'drop' | 'reject' | 'admin-prohibited',
  ): Promise<Undo> {
    const ns = this.nsOf(target);
    const table = this.nftTable();
    await nftApply(
      ns,
      `table inet ${table} {
  chain lab_input {
    type filter hook input priority 0; policy accept;
    tcp dport ${port} ${mode === 'drop' ? 'drop' : mode === 'reject' ? 'reject with tcp reset' : 'reject with icmpx type admin-prohibited'}
  }
}
`,
    );
    return this.track(`tcp/${port} ${mode} on ${target}`, () =>
      nftApply(ns, `delete table inet ${table}\n`).then(() => undefined),
    );
  }

  /**
   * Starts a plain TCP server on `port` in a pod's (or node's) namespace, accepting and
   * discarding: something for port targets to reach. Resolves once it listens; the returned
   * function stops it. down() stops any left running.
   */
  async serveTcp(target: string, port: number): Promise<() => Promise<void>> {
    const ns = this.nsOf(target);
    const script = `require('node:net').createServer((s) => { s.on('error', () => {}); s.resume(); }).listen(${port}, () => process.stdout.write('listening\\n'));`;
    const child = spawn(bin('ip'), ['netns', 'exec', ns, process.execPath, '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.servers.add(child);
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`tcp server on ${target}:${port}: not listening after 10 s: ${err}`)),
        10_000,
      );
      child.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('listening')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`tcp server on ${target}:${port} exited (${code}): ${err}`));
      });
    });
    return async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await gone;
      }
      this.servers.delete(child);
    };
  }

  /** A port that should stay closed starts accepting: a TCP server appears on it. */
  async openTcpPort(target: string, port: number): Promise<Undo> {
    const stop = await this.serveTcp(target, port);
    return this.track(`tcp/${port} now accepting on ${target}`, stop);
  }

  /** DNS replicas stop (dnsmasq killed; its pod stays, so it still sits behind the VIP). */
  async dnsReplicasDown(
    names: readonly string[] = this.dnsReplicas.map((r) => r.name),
  ): Promise<Undo> {
    this.needDns();
    const rs = names.map((n) => this.dnsReplica(n));
    await Promise.all(rs.map((r) => this.stopDnsReplica(r)));
    return this.track(`dns replica down: ${rs.map((r) => r.name).join(', ')}`, async () => {
      await Promise.all(rs.map((r) => this.startDnsReplica(r)));
    });
  }

  /**
   * The VIP's DNAT rule is removed on every node, and the VIP's conntrack entries flushed the
   * way kube-proxy does when a Service changes (an agent's long-lived UDP socket would
   * otherwise keep its old translation).
   */
  async dnsServiceBroken(): Promise<Undo> {
    this.needDns();
    await Promise.all(
      this.nodes.map(async (n) => {
        await nftApply(n.ns, 'flush chain ip pmlab_svc services\n');
        await this.flushVipConntrack(n);
      }),
    );
    return this.track('dns service VIP: DNAT removed', async () => {
      await Promise.all(
        this.nodes.map(async (n) => {
          await nftApply(n.ns, `add rule ip pmlab_svc services ${this.dnsServiceRule()}\n`);
          await this.flushVipConntrack(n);
        }),
      );
    });
  }

  private async flushVipConntrack(n: LabNode): Promise<void> {
    for (const proto of ['udp', 'tcp'])
      // Exit status 1 when nothing matched.
      await nsExec(n.ns, 'conntrack', ['-D', '-p', proto, '--orig-dst', this.dnsVip]).catch(
        () => undefined,
      );
  }

  /**
   * DNS (udp and tcp port 53) dropped going out of one node: its own sockets (output), what
   * it routes for its pods (forward) and what its pods send across its bridge to a replica on
   * it (bridge forward). Other nodes' traffic to a replica on this node is not affected.
   */
  async blockDns(nodeName: string): Promise<Undo> {
    this.needDns();
    const n = this.node(nodeName);
    const table = this.nftTable();
    await nftApply(
      n.ns,
      `table inet ${table} {
  chain lab_output {
    type filter hook output priority 0; policy accept;
    meta l4proto { tcp, udp } th dport 53 drop
  }
  chain lab_forward {
    type filter hook forward priority 0; policy accept;
    meta l4proto { tcp, udp } th dport 53 drop
  }
}
table bridge ${table} {
  chain lab_forward {
    type filter hook forward priority 0; policy accept;
    meta l4proto { tcp, udp } th dport 53 drop
  }
}
`,
    );
    return this.track(`dns port 53 blocked from ${n.name}`, () =>
      nftApply(n.ns, `delete table inet ${table}\ndelete table bridge ${table}\n`).then(
        () => undefined,
      ),
    );
  }

  /** A name vanishes from every replica (NXDOMAIN): the hosts file rewritten, SIGHUP re-reads. */
  async removeDnsName(name: string): Promise<Undo> {
    this.needDns();
    const fqdn = name.replace(/\.$/, '');
    if (!this.dnsRecords.has(fqdn))
      throw new Error(
        `removeDnsName: ${fqdn} is not served; names: ${[...this.dnsRecords.keys()].join(', ')}`,
      );
    this.removedDnsNames.add(fqdn);
    await this.reloadDns();
    return this.track(`dns name removed: ${fqdn}`, async () => {
      this.removedDnsNames.delete(fqdn);
      await this.reloadDns();
    });
  }

  private async reloadDns(): Promise<void> {
    this.writeDnsHosts();
    const file = path.join(this.dir, 'dns-hosts');
    const reads = (r: LabDnsReplica): number =>
      fs.readFileSync(r.logFile, 'utf8').split(`read ${file}`).length;
    const running = this.dnsReplicas.filter((r) => r.process !== undefined);
    const before = running.map(reads);
    for (const r of running) r.process?.kill('SIGHUP');
    // dnsmasq logs each re-read of the file: the change is in effect once it has.
    const end = Date.now() + 5000;
    while (running.some((r, i) => reads(r) <= before[i]!)) {
      if (Date.now() > end) throw new Error('dnsmasq did not re-read its hosts file');
      await sleep(20);
    }
  }

  private needDns(): void {
    if (!this.dnsEnabled) throw new Error('this lab has no DNS (dns: false)');
  }

  /** Undoes every active fault, newest first. */
  async heal(): Promise<void> {
    const all = [...this.faults.entries()].reverse();
    this.faults.clear();
    for (const [, f] of all) await f.undo();
  }

  // -------------------------------------------------------------------------------------------
  // Tools inside the lab

  /** iputils ping from a namespace; per-reply RTTs in ms. */
  async ping(
    fromTarget: string,
    to: string,
    o: {
      count?: number;
      intervalS?: number;
      size?: number;
      dontFragment?: boolean;
      waitS?: number;
    } = {},
  ): Promise<{ sent: number; received: number; rttsMs: number[]; output: string }> {
    const args = ['-n', '-c', String(o.count ?? 3), '-i', String(o.intervalS ?? 0.2)];
    args.push('-W', String(o.waitS ?? 1));
    if (o.size !== undefined) args.push('-s', String(o.size));
    if (o.dontFragment === true) args.push('-M', 'do');
    args.push(to);
    let output: string;
    try {
      output = await nsExec(this.nsOf(fromTarget), 'ping', args);
    } catch (e) {
      // ping exits 1 when replies are missing; the statistics are still on stdout.
      output = (e as { stdout?: string }).stdout ?? '';
    }
    const stats = /(\d+) packets transmitted, (\d+) received/.exec(output);
    const rttsMs = [...output.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
    return {
      sent: Number(stats?.[1] ?? 0),
      received: Number(stats?.[2] ?? 0),
      rttsMs,
      output,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Tear-down

  /** Stops the agents (SIGTERM, then SIGKILL) and removes everything the lab created. */
  async down(): Promise<void> {
    if (this.isDown) return;
    const running = this.agents.filter(
      (a) =>
        a.process !== undefined && a.process.exitCode === null && a.process.signalCode === null,
    );
    await Promise.all(
      running.map(
        (a) =>
          new Promise<void>((resolve) => {
            const p = a.process!;
            const timer = setTimeout(() => {
              p.kill('SIGKILL');
              resolve();
            }, 3000);
            p.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            p.kill('SIGTERM');
          }),
      ),
    );
    await Promise.all(this.dnsReplicas.map((r) => this.stopDnsReplica(r)));
    this.downSync();
  }

  /** Synchronous and idempotent, so exit and signal handlers can run it. */
  downSync(): void {
    if (this.isDown) return;
    this.isDown = true;
    for (const p of [...this.agents, ...this.dnsReplicas]
      .map((x) => x.process)
      .concat([...this.servers])) {
      try {
        p?.kill('SIGKILL');
      } catch {
        // gone
      }
    }
    teardownPrefix(this.prefix, this.opts.keepFiles === true);
    fs.rmSync(this.stateFile, { force: true });
    liveLabs.delete(this);
  }

  /** What of this lab still exists: namespaces, root links (empty after down()). */
  leftovers(): string[] {
    return [
      ...labNamespaces().filter((n) => n.startsWith(`${this.prefix}-`)),
      ...labRootLinks().filter((l) => l.startsWith(this.prefix)),
      ...(fs.existsSync(this.stateFile) ? [this.stateFile] : []),
    ];
  }
}

let hasCurl: boolean | undefined;

/** Namespaces and root links of every lab (any prefix) that exist now. */
export function allLabLeftovers(): string[] {
  return [...labNamespaces(), ...labRootLinks()];
}
