// docs/configuration.md, generated from the settings table so the page can't drift from code.

import { SETTINGS, envName, flagName } from './settings.ts';

export function renderConfigDoc(): string {
  const lines = [
    '# podmesh configuration',
    '',
    '<!-- Generated from src/config/settings.ts by `npm run docs`; a test keeps it in sync. -->',
    '',
    'Every setting can be written in a YAML file (`--config FILE` or `PODMESH_CONFIG`), nested by its dots (`probes.intervalMs` is `intervalMs:` under `probes:`). Scalars can also come from an env var or a flag. Precedence: flag > env > file > default.',
    '',
    'Validation is strict: an unknown key, an unknown `PODMESH_*` variable or a bad value stops podmesh with exit code 2 before it binds any port, and the message names the key, where the value came from and what is allowed. All problems are reported at once. (Env vars that Kubernetes injects for a Service named `podmesh…` are recognised and ignored.)',
    '',
    '| key | default | env / flag | meaning |',
    '| --- | --- | --- | --- |',
  ];
  for (const s of SETTINGS) {
    const def = s.default === undefined ? '—' : `\`${JSON.stringify(s.default)}\``;
    const where = s.scalar ? `\`${envName(s.key)}\`<br>\`${flagName(s.key)}\`` : 'file only';
    lines.push(`| \`${s.key}\` | ${def} | ${where} | ${s.help.replace(/\|/g, '\\|')} |`);
  }
  lines.push(
    '',
    '## Example',
    '',
    '```yaml',
    'node: node-1',
    'network: pod',
    'zone: eu-west-1a',
    'probes:',
    '  intervalMs: 1000',
    '  timeoutMs: 1000',
    'peers:',
    '  limit: 32',
    '  static:',
    '    - { node: node-2, network: pod, zone: eu-west-1b, address: 10.244.1.7 }',
    '    - { node: node-2, network: host, zone: eu-west-1b, address: 192.168.10.12 }',
    '```',
    '',
  );
  return lines.join('\n');
}
