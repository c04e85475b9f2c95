// The controller scale section's simulated agents (bench/controller-scale.ts), in a process of
// their own so the controller's CPU and memory are measured alone: every agent of a cluster
// answers GET /api/v1/results with its row (bench/controller-scale-rows.ts) on an address of
// its own in 127.1.0.0/16, as agents do on their Pod IPs, with the agent server's keep-alive
// timeout (src/server/limits.ts). The rows are built and serialised once, at start; the
// controller can't tell (it keeps nothing between rounds but what it derives from each row).
//
//   node --import tsx bench/controller-scale-agents.ts '{"agents":2000,"peers":32}'
//
// Prints {"type":"ready","ports":[...],"rowBytes":{...}} once every agent listens (ports[i]:
// agent i's port) and exits when stdin closes.

import http from 'node:http';
import { agentRowSchema } from '../src/api/agent-row.ts';
import { DEFAULT_HTTP_LIMITS } from '../src/server/limits.ts';
import { simAgent, simRow } from './controller-scale-rows.ts';
import { assertLoopback, exitWhenParentGoes, send } from './lib.ts';

export interface AgentsSpec {
  readonly agents: number;
  readonly peers: number;
}

export interface AgentsReady {
  readonly type: 'ready';
  readonly ports: number[];
  readonly rowBytes: { readonly min: number; readonly mean: number; readonly max: number };
  readonly peersPerRow: number;
  readonly resultsPerRow: number;
  readonly dnsPerRow: number;
  readonly portsPerRow: number;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as AgentsSpec;
  const now = Date.now();
  const bodies: Buffer[] = [];
  for (let i = 0; i < spec.agents; i++) {
    const row = simRow(i, spec.agents, spec.peers, now);
    // Every row the bench serves is checked against the agent's own declaration (strict where
    // the agent's test is: no undeclared field), so the controller sees valid rows only.
    if (i < 4 || i === spec.agents - 1) agentRowSchema.strict().parse(row);
    bodies.push(Buffer.from(JSON.stringify(row)));
  }
  const servers: http.Server[] = [];
  const ports: number[] = [];
  const serve = async (i: number): Promise<void> => {
    const body = bodies[i]!;
    const server = http.createServer({ keepAliveTimeout: DEFAULT_HTTP_LIMITS.keepAliveTimeoutMs });
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.url !== '/api/v1/results') {
        res.statusCode = 404;
        res.end();
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': body.length,
      });
      res.end(body);
    });
    const address = assertLoopback(simAgent(i).address);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, address, () => resolve());
    });
    servers[i] = server;
    const a = server.address();
    ports[i] = typeof a === 'object' && a !== null ? a.port : 0;
  };
  // 500 at a time: one by one, 10,000 listeners took two minutes to open.
  for (let i = 0; i < spec.agents; i += 500)
    await Promise.all(
      Array.from({ length: Math.min(500, spec.agents - i) }, (_, k) => serve(i + k)),
    );
  const sizes = bodies.map((b) => b.length);
  const first = simRow(0, spec.agents, spec.peers, now);
  const ready: AgentsReady = {
    type: 'ready',
    ports,
    rowBytes: {
      min: Math.min(...sizes),
      mean: sizes.reduce((a, b) => a + b, 0) / sizes.length,
      max: Math.max(...sizes),
    },
    peersPerRow: first.peers.length,
    resultsPerRow: first.peers.reduce((a, p) => a + p.results.length, 0),
    dnsPerRow: first.dns.length,
    portsPerRow: first.ports.length,
  };
  send({ ...ready });
  exitWhenParentGoes(undefined, async () => {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
    await Promise.resolve();
  });
}

void main().catch((e: unknown) => {
  process.stderr.write(`controller-scale-agents: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
