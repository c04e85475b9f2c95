// `tsx src/gen-plumbing-alerts.ts` (npm run alerts:plumbing): writes the PrometheusRule of the
// opt-in kustomize component deploy/components/plumbing-alerts from alerts/plumbing-rules.yaml,
// the one source of the plumbing alerts (promtool checks and tests it as it is). A separate
// file and component from the podmesh pack: these rules read kube-state-metrics, cAdvisor and
// CoreDNS, not podmesh, and need kube-prometheus-stack (or the same exporters) to mean anything.

import { readFileSync, writeFileSync } from 'node:fs';
import { format, resolveConfig } from 'prettier';
import { renderPrometheusRule } from './gen-alerts.ts';

export const PLUMBING_RULES_PATH = 'alerts/plumbing-rules.yaml';
export const PLUMBING_PROMETHEUS_RULE_PATH =
  'deploy/components/plumbing-alerts/prometheus-rule.yaml';

const HEADER = [
  '# Generated from alerts/plumbing-rules.yaml by `npm run alerts:plumbing`: edit that file, then',
  '# regenerate (test/alerts-plumbing.test.ts fails while the two differ). Needs the',
  '# prometheus-operator CRDs and the metrics of kube-prometheus-stack (kube-state-metrics, cAdvisor).',
  '',
].join('\n');

/** The PrometheusRule podmesh-plumbing for the rule file's text. */
export function renderPlumbingRule(rulesText: string): string {
  // The pack's renderer, renamed and with this file's header: the groups stay verbatim.
  const body = renderPrometheusRule(rulesText).replace(/^(#.*\n)+/, '');
  const renamed = body.replace(
    /\nmetadata:\n {2}name: podmesh\n/,
    '\nmetadata:\n  name: podmesh-plumbing\n',
  );
  if (renamed === body) throw new Error('unexpected PrometheusRule layout');
  return HEADER + renamed;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = new URL('../', import.meta.url);
  const out = new URL(PLUMBING_PROMETHEUS_RULE_PATH, root);
  const text = renderPlumbingRule(readFileSync(new URL(PLUMBING_RULES_PATH, root), 'utf8'));
  // Written as `npm run lint` (prettier --check) wants it; the test compares parsed YAML.
  const options = (await resolveConfig(out.pathname)) ?? {};
  writeFileSync(out, await format(text, { ...options, filepath: out.pathname }));
  process.stdout.write(`wrote ${PLUMBING_PROMETHEUS_RULE_PATH}\n`);
}
