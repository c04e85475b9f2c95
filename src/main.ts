#!/usr/bin/env -S node --max-semi-space-size=1 --v8-pool-size=1
// podmesh's command line: `podmesh agent`, `podmesh demo`, and help that lists every setting
// with its default. Config problems are reported all at once and exit non-zero before any
// port is bound.

import { Command, Option } from 'commander';
import { pino, type Logger } from 'pino';
import { parseDemoFault, type DemoFault } from './api/demo-faults.ts';
import { ConfigError, loadConfig, type Config, type ConfigSources } from './config/load.ts';
import { SETTINGS, envName, flagName } from './config/settings.ts';
import { DIAGNOSE_EXIT, diagnose } from './diagnose.ts';
import { VERSION } from './version.ts';

const EXIT_CONFIG = 2;

function settingsHelp(): string {
  const rows = SETTINGS.map((s) => {
    const where = s.scalar ? `${flagName(s.key)} / ${envName(s.key)}` : 'config file only';
    const def = s.default === undefined ? '(none)' : JSON.stringify(s.default);
    return `  ${s.key}\n      ${s.help}\n      default: ${def}; set with: ${where}`;
  });
  return `\nSettings (config file key; flag / env var). Precedence: flag > env > file > default.\n${rows.join('\n')}\n`;
}

function addSettingFlags(cmd: Command): Command {
  cmd.addOption(new Option('-c, --config <file>', 'YAML config file (env PODMESH_CONFIG)'));
  for (const s of SETTINGS) {
    if (!s.scalar) continue;
    const def = s.default === undefined ? '' : ` (default: ${JSON.stringify(s.default)})`;
    cmd.addOption(new Option(`${flagName(s.key)} <value>`, `${s.help}${def}`).hideHelp());
  }
  cmd.addHelpText('after', settingsHelp());
  return cmd;
}

function sourcesFrom(cmd: Command): ConfigSources {
  const opts = cmd.opts<Record<string, string | undefined>>();
  const flags: Record<string, string> = {};
  for (const s of SETTINGS) {
    if (!s.scalar) continue;
    const attr = new Option(`${flagName(s.key)} <value>`).attributeName();
    const v = opts[attr];
    if (v !== undefined) flags[s.key] = v;
  }
  return { file: opts['config'] ?? process.env['PODMESH_CONFIG'], env: process.env, flags };
}

function makeLogger(level: string): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

function fail(e: unknown): never {
  if (e instanceof ConfigError) {
    process.stderr.write(`podmesh: ${e.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  process.stderr.write(`podmesh: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}

function onSignals(stop: () => Promise<void>, log: Logger): void {
  let firstAt = 0;
  const handler = (sig: string): void => {
    // npm and shells often deliver one Ctrl-C twice (to the group and forwarded): only a
    // signal more than a second after the first one forces an immediate exit.
    if (firstAt !== 0) {
      if (Date.now() - firstAt < 1000) return;
      log.warn({ signal: sig }, 'second signal: exiting now');
      process.exit(1);
    }
    firstAt = Date.now();
    log.info({ signal: sig }, 'shutting down');
    stop().then(
      () => process.exit(0),
      (e: unknown) => {
        log.error({ err: e }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

/**
 * Loads the config (exit 2 on any problem, before anything binds), starts a long-running
 * role, and stops it gracefully on SIGTERM/SIGINT.
 */
async function runService(
  cmd: Command,
  role: string,
  start: (config: Config, log: Logger) => Promise<() => Promise<void>>,
): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(sourcesFrom(cmd));
  } catch (e) {
    fail(e);
  }
  const log = makeLogger(config.logLevel);
  try {
    onSignals(await start(config, log), log);
  } catch (e) {
    log.fatal({ err: e }, `${role} failed to start`);
    fail(e);
  }
}

const program = new Command('podmesh')
  .description(
    'Continuous network monitoring for Kubernetes: pod-to-pod loss and latency, with the reason when it breaks.',
  )
  .version(VERSION)
  .showHelpAfterError()
  .addHelpText('after', settingsHelp());

addSettingFlags(
  program
    .command('agent')
    .description(
      'Run a probe agent: answer probes, probe selected peers, serve /metrics and /api/v1/results.',
    ),
).action((_opts, cmd: Command) =>
  runService(cmd, 'agent', async (config, log) => {
    // Each command imports only what it runs (here and below): an agent never loads the
    // controller's triage or the demo, which would cost every agent Pod memory for nothing.
    const { Agent } = await import('./agent/agent.ts');
    const agent = await Agent.start({ config, log, version: VERSION });
    return () => agent.stop(config.shutdown.drainMs);
  }),
);

addSettingFlags(
  program
    .command('controller')
    .description(
      "Run the controller: watch agent Pods and Nodes (coverage), pull every agent's row, run triage, serve the web UI, /api/v1/matrix and /api/v1/findings.",
    ),
).action((_opts, cmd: Command) =>
  runService(cmd, 'controller', async (config, log) => {
    // Loaded here so the agent and the demo never pay for the Kubernetes client library.
    const { runController } = await import('./controller/run.ts');
    const running = await runController({ config, log, version: VERSION });
    return () => running.stop();
  }),
);

addSettingFlags(
  program
    .command('demo')
    .description(
      'Local demo, no cluster and no root: several agents on 127.0.x.x addresses probing each other.',
    )
    .addOption(
      new Option('--nodes <n>', 'demo nodes (each gets a pod and a host agent)').default('3'),
    )
    .addOption(
      new Option(
        '--base-port <port>',
        'HTTP port of every demo agent (STAMP is +2, TCP +3)',
      ).default('9860'),
    )
    .addOption(
      new Option('--controller-port <port>', 'port of the demo controller on 127.0.0.1').default(
        '9850',
      ),
    )
    .addOption(
      new Option(
        '--fault <fault>',
        'break the demo from the start (repeatable): NODE:loss=PERCENT (probes towards NODE lost), NODE:mtu (MTU-sized probes only), dns:NODE (that DNS replica answers SERVFAIL), port:demo-web (refused); later: POST /api/v1/demo/faults or the web UI',
      )
        .argParser((v: string, prev: string[]) => [...prev, v])
        .default([]),
    ),
).action(
  async (
    opts: { nodes: string; basePort: string; controllerPort: string; fault: string[] },
    cmd: Command,
  ) => {
    const nodes = Number(opts.nodes);
    const basePort = Number(opts.basePort);
    const controllerPort = Number(opts.controllerPort);
    if (!Number.isInteger(controllerPort) || controllerPort < 0 || controllerPort > 65535)
      fail(
        new ConfigError([
          `--controller-port: must be a port from 0 to 65535, got ${JSON.stringify(opts.controllerPort)}`,
        ]),
      );
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > 50)
      fail(
        new ConfigError([
          `--nodes: must be a whole number from 1 to 50, got ${JSON.stringify(opts.nodes)}`,
        ]),
      );
    if (!Number.isInteger(basePort) || basePort < 1 || basePort > 65532)
      fail(
        new ConfigError([
          `--base-port: must be a port from 1 to 65532, got ${JSON.stringify(opts.basePort)}`,
        ]),
      );
    const faults: DemoFault[] = [];
    const faultErrors: string[] = [];
    for (const text of opts.fault) {
      const f = parseDemoFault(text);
      if (typeof f === 'string') faultErrors.push(`--fault: ${f}`);
      else faults.push(f);
    }
    if (faultErrors.length > 0) fail(new ConfigError(faultErrors));
    const sources = sourcesFrom(cmd);
    let level = 'info';
    try {
      level = loadConfig(sources).logLevel;
    } catch (e) {
      fail(e);
    }
    const log = makeLogger(level === 'info' ? 'warn' : level);
    try {
      const { startDemo } = await import('./demo/demo.ts');
      const demo = await startDemo({
        nodes,
        httpPort: basePort,
        controllerPort,
        sources,
        log,
        faults,
      });
      const lines = [
        '',
        `podmesh ${VERSION} demo: ${demo.info.length} agents on ${nodes} nodes, probing each other over loopback`,
        '',
        ...demo.info.map(
          (a) =>
            `  ${`${a.node}/${a.network}`.padEnd(22)} ${a.url}/metrics   ${a.url}/api/v1/results`,
        ),
        '',
        `  web UI                 ${demo.controllerUrl}/   (live matrix, findings, DNS, ports)`,
        `  controller             ${demo.controllerUrl}/api/v1/matrix   ${demo.controllerUrl}/api/v1/findings   ${demo.controllerUrl}/metrics`,
        `  DNS                    ${demo.dnsServers.map((d) => `${d.address}:${d.port}`).join('  ')}   (VIP, then replicas)`,
        '',
        `Try:  open ${demo.controllerUrl}/ in a browser`,
        `      npm run podmesh -- diagnose --url ${demo.controllerUrl}`,
        `      curl -s ${demo.info[0]!.url}/metrics | grep podmesh_pair_loss_ratio`,
        `      curl -s ${demo.info[0]!.url}/metrics | grep podmesh_dns_requests_total`,
        `Break it (or use the web UI's fault menu; heal with {"faults":[]}):`,
        `      curl -s -H 'content-type: application/json' -d '{"faults":[{"kind":"loss","node":"demo-node-2","percent":30}]}' ${demo.controllerUrl}/api/v1/demo/faults`,
        ...(faults.length > 0
          ? [`Faults on: ${faults.map((f) => JSON.stringify(f)).join(' ')}`]
          : []),
        'Stop: Ctrl-C',
        '',
      ];
      process.stdout.write(lines.join('\n') + '\n');
      onSignals(() => demo.stop(), log);
    } catch (e) {
      log.fatal({ err: e }, 'demo failed to start');
      fail(e);
    }
  },
);

program
  .command('diagnose')
  .description(
    "Print the controller's current findings: what is wrong, the evidence, and the commands to confirm and fix it.",
  )
  .addOption(
    new Option('--url <url>', 'controller base URL')
      .env('PODMESH_CONTROLLER_URL')
      .default('http://127.0.0.1:9850'),
  )
  .addOption(new Option('--json', 'print the findings report as JSON'))
  .addOption(new Option('--timeout <ms>', 'HTTP timeout').default('5000'))
  .addOption(new Option('--no-color', 'plain text even on a terminal'))
  .addHelpText(
    'after',
    `\nExit status: ${DIAGNOSE_EXIT.healthy} no findings, ${DIAGNOSE_EXIT.findings} findings, ${DIAGNOSE_EXIT.usage} bad usage, ${DIAGNOSE_EXIT.unreachable} controller unreachable or not ready.\nIn a cluster: kubectl -n podmesh port-forward deploy/podmesh-controller 9850, then podmesh diagnose.\n`,
  )
  .action(async (opts: { url: string; json?: boolean; timeout: string; color: boolean }) => {
    const timeoutMs = Number(opts.timeout);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000)
      fail(
        new ConfigError([`--timeout: must be milliseconds from 1 to 600000, got ${opts.timeout}`]),
      );
    if (!/^https?:\/\/[^/]+/.test(opts.url))
      fail(
        new ConfigError([
          `--url: must be an http(s) URL such as http://127.0.0.1:9850, got ${opts.url}`,
        ]),
      );
    const r = await diagnose({
      url: opts.url,
      json: opts.json === true,
      timeoutMs,
      color: opts.color && process.stdout.isTTY,
    });
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    process.exitCode = r.code;
  });

program.parseAsync(process.argv).catch(fail);
